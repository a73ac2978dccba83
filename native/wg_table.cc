// WireGuard's shared state (wg_table.h says what and why).
#include "wg_table.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "le.h"

namespace flatnet {

namespace {

// The same address (either family), whatever the ports.
bool sameHost(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                     &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, sizeof(in6_addr)) == 0;
}

}  // namespace

size_t WgPeerState::seal(uint8_t* msg, size_t len, size_t mtu, int64_t nowNs) {
  for (const std::atomic<WgSession*>* s : {&current, &previous})
    if (WgSession* session = s->load(std::memory_order_acquire))
      if (size_t n = session->seal(msg, len, mtu, nowNs)) return n;
  mark(kWgWantsSession);
  return 0;
}

bool WgStaged::push(const uint8_t* pkt, size_t len, std::atomic<size_t>* total, size_t maxTotal) {
  if (len > kMaxPacket) return false;
  std::lock_guard<std::mutex> hold(lock_);
  if (packets_.size() >= kPerPeer) return false;
  if (total->fetch_add(1, std::memory_order_relaxed) >= maxTotal) {
    total->fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  packets_.emplace_back(pkt, pkt + len);
  count_.store(packets_.size(), std::memory_order_relaxed);
  return true;
}

std::vector<std::vector<uint8_t>> WgStaged::take(std::atomic<size_t>* total) {
  std::lock_guard<std::mutex> hold(lock_);
  total->fetch_sub(packets_.size(), std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  return std::exchange(packets_, {});
}

WgTable::WgTable()
    : slots_(new std::atomic<const WgReceiver*>[kSlots]), queue_(new WgHandshake[kQueued]) {
  for (uint32_t i = 0; i < kSlots; i++) slots_[i].store(nullptr, std::memory_order_relaxed);
}

bool WgTable::pushHandshake(const uint8_t* p, size_t n, const sockaddr_storage& from) {
  if (n > sizeof(WgHandshake::data)) return false;
  std::lock_guard<std::mutex> hold(queueLock_);
  if (count_ == kQueued) return false;
  size_t fromSource = 0;
  for (size_t i = 0; i < count_; i++)
    if (sameHost(queue_[(head_ + i) % kQueued].from, from) && ++fromSource == kQueuedPerSource)
      return false;
  WgHandshake& h = queue_[(head_ + count_++) % kQueued];
  std::memcpy(h.data, p, n);
  h.len = uint16_t(n);
  h.from = from;
  return true;
}

size_t WgTable::popHandshakes(std::vector<WgHandshake>* out, size_t max) {
  std::lock_guard<std::mutex> hold(queueLock_);
  size_t n = std::min(max, count_);
  for (size_t i = 0; i < n; i++) out->push_back(queue_[(head_ + i) % kQueued]);
  head_ = (head_ + n) % kQueued;
  count_ -= n;
  return n;
}

void WgTable::install(std::unique_ptr<WgSession> session, const std::shared_ptr<WgPeerState>& peer,
                      const std::shared_ptr<PeerCounters>& node) {
  std::lock_guard<std::mutex> hold(writerLock_);
  installLocked(std::move(session), peer, node);
}

void WgTable::installLocked(std::unique_ptr<WgSession> session,
                            const std::shared_ptr<WgPeerState>& peer,
                            const std::shared_ptr<PeerCounters>& node) {
  uint32_t index = session->localIndex();
  retireLocked(index);  // a slot holds one session: the control plane never reuses a live index
  auto in = std::make_shared<Installed>();
  in->session = std::move(session);
  in->peer = peer;
  in->node = node;
  in->receiver = WgReceiver{in->session.get(), node.get(), peer.get()};
  WgSession* older = peer->current.exchange(in->session.get());
  peer->previous.store(older);
  slots_[index & (kSlots - 1)].store(&in->receiver, std::memory_order_release);
  installed_[index] = std::move(in);
}

void WgTable::retire(uint32_t localIndex) {
  std::lock_guard<std::mutex> hold(writerLock_);
  retireLocked(localIndex);
}

void WgTable::retireLocked(uint32_t localIndex) {
  auto it = installed_.find(localIndex);
  if (it == installed_.end()) return;
  Installed& in = *it->second;
  WgSession* s = in.session.get();
  for (std::atomic<WgSession*>* p : {&in.peer->current, &in.peer->previous}) {
    WgSession* expected = s;
    p->compare_exchange_strong(expected, nullptr);
  }
  // Only if the slot still holds this session: a newer one may have taken it already.
  const WgReceiver* mine = &in.receiver;
  slots_[localIndex & (kSlots - 1)].compare_exchange_strong(mine, nullptr,
                                                            std::memory_order_release);
  retired_.push_back(std::move(it->second));
  installed_.erase(it);
}

// The state's layout: a count (32 bits, little-endian), then per session its local index (32
// bits) and WgSession::kStateBytes.
constexpr size_t kHandedRecord = 4 + WgSession::kStateBytes;

std::vector<uint8_t> WgTable::exportState() {
  std::lock_guard<std::mutex> hold(writerLock_);
  std::vector<uint8_t> out(4 + installed_.size() * kHandedRecord);
  putLe32(out.data(), uint32_t(installed_.size()));
  uint8_t* p = out.data() + 4;
  for (const auto& [index, in] : installed_) {
    putLe32(p, index);
    in->session->saveState(p + 4);
    p += kHandedRecord;
  }
  return out;
}

void WgTable::hand(std::unique_ptr<WgSession> session, const std::shared_ptr<WgPeerState>& peer,
                   const std::shared_ptr<PeerCounters>& node) {
  std::lock_guard<std::mutex> hold(writerLock_);
  handed_.push_back(Handed{std::move(session), peer, node});
}

void WgTable::applyHanded(const uint8_t* state, size_t len) {
  std::lock_guard<std::mutex> hold(writerLock_);
  std::unordered_map<uint32_t, const uint8_t*> byIndex;
  if (len >= 4) {
    size_t n = le32(state);
    if (n <= (len - 4) / kHandedRecord) {
      for (size_t i = 0; i < n; i++) {
        const uint8_t* r = state + 4 + i * kHandedRecord;
        byIndex[le32(r)] = r + 4;
      }
    }
  }
  for (Handed& h : handed_) {
    auto it = byIndex.find(h.session->localIndex());
    if (it == byIndex.end()) continue;
    h.session->loadState(it->second);
    applied_.push_back(h.session->localIndex());
    installLocked(std::move(h.session), h.peer, h.node);
  }
  handed_.clear();
}

std::vector<uint32_t> WgTable::takeApplied() {
  std::lock_guard<std::mutex> hold(writerLock_);
  handed_.clear();  // none applied: the predecessor passed no state (it died, or spoke version 1)
  return std::exchange(applied_, {});
}

}  // namespace flatnet
