#include "fib.h"

#include <algorithm>
#include <cstring>

namespace flatnet {

void maskAddress(uint8_t family, uint8_t* bytes, uint8_t length) {
  size_t total = family == 4 ? 4 : 16;
  for (size_t i = 0; i < total; i++) {
    int keep = int(length) - int(i * 8);
    if (keep >= 8) continue;
    bytes[i] &= keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
  }
}

bool prefixContains(const Prefix& p, uint8_t version, const uint8_t* addr) {
  if (p.addr.family != version) return false;
  uint8_t masked[16];
  std::memcpy(masked, addr, version == 4 ? 4 : 16);
  maskAddress(version, masked, p.length);
  return std::memcmp(masked, p.addr.bytes, version == 4 ? 4 : 16) == 0;
}

static FibKey makeKey(uint8_t version, const uint8_t* addr, uint8_t length) {
  uint8_t b[16] = {};
  std::memcpy(b, addr, version == 4 ? 4 : 16);
  maskAddress(version, b, length);
  FibKey k{};
  if (version == 4) {
    k.lo = load32(b);
  } else {
    std::memcpy(&k.hi, b, 8);
    std::memcpy(&k.lo, b + 8, 8);
  }
  k.lengthAndFamily = uint32_t(length) << 8 | version;
  return k;
}

static FibKey addressKey(const IpAddr& a) {
  return makeKey(a.family, a.bytes, a.family == 4 ? 32 : 128);
}

static int familyIndex(uint8_t version) { return version == 4 ? 0 : 1; }

Fib::Fib()
    : lengths_(std::make_unique<Lengths>()), local_(std::make_unique<std::vector<Prefix>>()) {}

const Peer* Fib::lookup(uint8_t version, const uint8_t* addr) const {
  const Lengths* l = lengths_.get();
  int f = familyIndex(version);
  for (int i = 0; i < l->count[f]; i++)
    if (const Peer* p = routes_.index.find(makeKey(version, addr, l->of[f][i]))) return p;
  return nullptr;
}

const Peer* Fib::peerByAddress(const IpAddr& a) const {
  return byAddress_.index.find(addressKey(a));
}

bool Fib::isLocal(uint8_t version, const uint8_t* addr) const {
  for (const Prefix& p : *local_.get())
    if (prefixContains(p, version, addr)) return true;
  return false;
}

void Fib::setPeer(Peer peer, const std::vector<Prefix>& cidrs) {
  auto [it, added] = entries_.try_emplace(peer.name);
  Entry& e = it->second;
  peer.counters = added ? std::make_shared<PeerCounters>() : e.peer->counters;
  if (peer.encryption == Peer::Encryption::wireguard)
    peer.wg = !added && e.peer->wg ? e.peer->wg : std::make_shared<WgPeerState>();
  std::vector<FibKey> routes;
  for (const Prefix& p : cidrs) {
    FibKey k = makeKey(p.addr.family, p.addr.bytes, p.length);
    if (std::find(routes.begin(), routes.end(), k) == routes.end()) routes.push_back(k);
  }
  FibKey address = addressKey(peer.address);
  std::unique_ptr<const Peer> old =
      std::exchange(e.peer, std::make_unique<const Peer>(std::move(peer)));
  // Claim the new keys before releasing the old, so the index never lacks the peer.
  // Each key changes atomically; a lookup probing two keys while the peer moves
  // between them (a CIDR change: in Kubernetes a node's is fixed) may miss it once.
  for (const FibKey& k : routes) countLength(k, claim(&routes_, k, &e));
  claim(&byAddress_, address, &e);
  for (const FibKey& k : e.routes)
    if (std::find(routes.begin(), routes.end(), k) == routes.end())
      countLength(k, release(&routes_, k, &e));
  if (old && !(e.address == address)) release(&byAddress_, e.address, &e);
  e.routes = std::move(routes);
  e.address = address;
  if (old) retired_.emplace_back(std::move(old));
}

void Fib::removePeer(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  for (const FibKey& k : e.routes) countLength(k, release(&routes_, k, &e));
  release(&byAddress_, e.address, &e);
  retired_.emplace_back(std::move(e.peer));
  entries_.erase(it);
}

void Fib::setLocal(std::vector<Prefix> local) {
  local_.replace(std::make_unique<std::vector<Prefix>>(std::move(local)), &retired_);
}

int Fib::claim(Claimed* c, const FibKey& k, const Entry* e) {
  std::vector<const Entry*>& claimants = c->claims[k];
  if (std::find(claimants.begin(), claimants.end(), e) == claimants.end()) claimants.push_back(e);
  return c->index.set(k, claimants.back()->peer.get(), &retired_) ? 1 : 0;
}

int Fib::release(Claimed* c, const FibKey& k, const Entry* e) {
  auto it = c->claims.find(k);
  std::vector<const Entry*>& claimants = it->second;
  claimants.erase(std::find(claimants.begin(), claimants.end(), e));
  if (!claimants.empty()) return c->index.set(k, claimants.back()->peer.get(), &retired_), 0;
  c->claims.erase(it);
  c->index.remove(k, &retired_);
  return -1;
}

// The published lengths change only when a length gains its first route or loses its last.
void Fib::countLength(const FibKey& k, int delta) {
  uint32_t& use = lengthUse_[familyIndex(uint8_t(k.lengthAndFamily))][k.lengthAndFamily >> 8];
  bool had = use > 0;
  use += delta;
  if (had == (use > 0)) return;
  auto next = std::make_unique<Lengths>();
  for (int f = 0; f < 2; f++)
    for (int length = 128; length >= 0; length--)
      if (lengthUse_[f][length]) next->of[f][next->count[f]++] = uint8_t(length);
  lengths_.replace(std::move(next), &retired_);
}

}  // namespace flatnet
