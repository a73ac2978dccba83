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

Fib::Key Fib::makeKey(uint8_t version, const uint8_t* addr, uint8_t length) {
  uint8_t b[16] = {};
  std::memcpy(b, addr, version == 4 ? 4 : 16);
  maskAddress(version, b, length);
  Key k{};
  if (version == 4) {
    k.lo = load32(b);
  } else {
    std::memcpy(&k.hi, b, 8);
    std::memcpy(&k.lo, b + 8, 8);
  }
  k.lengthAndFamily = uint32_t(length) << 8 | version;
  return k;
}

size_t Fib::addPeer(Peer peer) {
  byAddress_[makeKey(peer.address.family, peer.address.bytes, peer.address.family == 4 ? 32 : 128)] =
      peers_.size();
  peers_.push_back(std::move(peer));
  return peers_.size() - 1;
}

void Fib::addRoute(const Prefix& prefix, size_t peer) {
  uint8_t family = prefix.addr.family;
  routes_[makeKey(family, prefix.addr.bytes, prefix.length)] = peer;
  auto& lengths = family == 4 ? lengths4_ : lengths6_;
  if (std::find(lengths.begin(), lengths.end(), prefix.length) == lengths.end()) {
    lengths.push_back(prefix.length);
    std::sort(lengths.begin(), lengths.end(), std::greater<uint8_t>());
  }
}

const Peer* Fib::lookup(uint8_t version, const uint8_t* addr) const {
  for (uint8_t length : version == 4 ? lengths4_ : lengths6_) {
    auto it = routes_.find(makeKey(version, addr, length));
    if (it != routes_.end()) return &peers_[it->second];
  }
  return nullptr;
}

const Peer* Fib::peerByAddress(const IpAddr& a) const {
  auto it = byAddress_.find(makeKey(a.family, a.bytes, a.family == 4 ? 32 : 128));
  return it == byAddress_.end() ? nullptr : &peers_[it->second];
}

bool Fib::isLocal(uint8_t version, const uint8_t* addr) const {
  for (const Prefix& p : local_)
    if (prefixContains(p, version, addr)) return true;
  return false;
}

}  // namespace flatnet
