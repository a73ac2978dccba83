// WireGuard's state that the packet threads share with the control plane: per peer node, the
// sessions its traffic is sealed with and what the data path saw since the control plane last
// looked (its timers need it, whitepaper 6.2-6.5); per local index, the session a received
// message is opened with; and the handshake messages received, queued for the control plane
// (src/wireguard/, which runs the handshake). The control plane's one thread writes; the packet
// threads read without locks, and what they may hold is freed after a grace period (qsbr.h).
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "counters.h"
#include "qsbr.h"
#include "wg_session.h"

namespace flatnet {

// What the data path saw for a peer: bits of WgPeerState::activity.
enum WgActivity : uint32_t {
  kWgDataSent = 1,      // a packet was sealed to it
  kWgDataReceived = 2,  // a packet from it was opened
  kWgAnyReceived = 4,   // any authenticated message (keepalives too)
  kWgWantsSession = 8,  // a packet to it found no session that may send
};

// Packets that found no session, kept until one may send (whitepaper 6.2: a handshake is started
// and the packet queued, not lost): a connection's first packet does not wait for its sender's
// retransmission. Bounded per peer and across all peers.
class WgStaged {
 public:
  static constexpr size_t kPerPeer = 16;
  // A TUN packet at any MTU flatnet sets, or a segment of a super-packet; no super-packet whole.
  static constexpr size_t kMaxPacket = 1 << 12;
  // Copies the packet in; false when a bound says no (it is then dropped).
  bool push(const uint8_t* pkt, size_t len, std::atomic<size_t>* total, size_t maxTotal);
  // Takes every packet, oldest first.
  std::vector<std::vector<uint8_t>> take(std::atomic<size_t>* total);
  bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }

 private:
  std::mutex lock_;
  std::vector<std::vector<uint8_t>> packets_;
  std::atomic<size_t> count_{0};
};

// One per peer node, shared by every version of its Peer (as its counters are).
struct WgPeerState {
  // The newest session and the one before (whitepaper 5.4.6: a responder may not send on a
  // new session before the initiator's first message, and packets in flight still use the old).
  std::atomic<WgSession*> current{nullptr}, previous{nullptr};
  std::atomic<uint32_t> activity{0};
  WgStaged staged;
  // Sets bits unless set already: a reader's load, not a write, on every packet after the first.
  void mark(uint32_t bits) {
    if ((activity.load(std::memory_order_relaxed) & bits) != bits)
      activity.fetch_or(bits, std::memory_order_relaxed);
  }
  // Seals the packet at msg + kWgTransportHeader (len bytes) with the newest session that may
  // send: the message's length, or 0 (marked kWgWantsSession) when none may.
  size_t seal(uint8_t* msg, size_t len, size_t mtu, int64_t nowNs);
  bool maySend(int64_t nowNs) const {
    for (const std::atomic<WgSession*>* s : {&current, &previous})
      if (WgSession* session = s->load(std::memory_order_acquire))
        if (session->maySend(nowNs)) return true;
    return false;
  }
};

// A session as the receive path finds it by its local index, with the node it belongs to: the
// node's PeerCounters, shared by every version of the peer (sameNode's identity), and its state.
struct WgReceiver {
  WgSession* session;
  PeerCounters* node;
  WgPeerState* peer = nullptr;
};

// A handshake message as received, for the control plane.
struct WgHandshake {
  uint8_t data[148];  // the longest: an initiation
  uint16_t len = 0;
  sockaddr_storage from{};
};

class WgTable {
 public:
  // Local indexes name their slot in their low 16 bits (src/wireguard/index-table.ts picks
  // them so): a lookup is one load, with no hashing and no lock.
  static constexpr uint32_t kSlots = 1u << 16;
  static constexpr size_t kQueued = 256;  // handshake messages waiting for the control plane
  // One source address holds at most this many of them: a flood from one host (by address, not
  // port, which a sender picks freely) cannot keep every other peer's handshake out. A node
  // sends a few a second; the control plane takes 64 every 20 ms. Spoofed sources are answered
  // by the control plane's cookies under load (whitepaper 5.3), not here.
  static constexpr size_t kQueuedPerSource = 16;
  static constexpr size_t kStagedTotal = 1024;  // packets staged over all peers (4 MB at most)

  WgTable();

  // Readers: any thread, inside a read section.
  const WgReceiver* find(uint32_t localIndex) const {
    const WgReceiver* r = slots_[localIndex & (kSlots - 1)].load(std::memory_order_acquire);
    return r && r->session->localIndex() == localIndex ? r : nullptr;
  }
  // Queues a handshake message for the control plane; false (dropped) when the queue is full
  // or its source holds kQueuedPerSource of it.
  bool pushHandshake(const uint8_t* p, size_t n, const sockaddr_storage& from);
  // Keeps a packet for peer until a session may send it; false when the bounds say no.
  bool stage(WgPeerState& peer, const uint8_t* pkt, size_t len) {
    return peer.staged.push(pkt, len, &staged_, kStagedTotal);
  }
  // The writer: peer's staged packets, once a session may send them (none taken otherwise).
  std::vector<std::vector<uint8_t>> unstage(WgPeerState& peer) {
    return peer.staged.take(&staged_);
  }

  // The writer: the control plane's thread (and, once, a successor's first packet thread in
  // applyHanded, before any packet moves; writerLock_ orders the two).
  // Makes session the peer's newest (the newest so far becomes the one before; the one
  // before that is retired). node: the peer's counters, which admission checks sources by.
  void install(std::unique_ptr<WgSession> session, const std::shared_ptr<WgPeerState>& peer,
               const std::shared_ptr<PeerCounters>& node);
  // The session with this local index is used no more.
  void retire(uint32_t localIndex);
  size_t popHandshakes(std::vector<WgHandshake>* out, size_t max);
  Retired takeRetired() {
    std::lock_guard<std::mutex> hold(writerLock_);
    return std::exchange(retired_, {});
  }

  // A handover. The predecessor, its packet threads joined: every installed session's state
  // (WgSession::saveState) by local index. The successor, before its threads run: sessions the
  // predecessor's control plane had (their keys), kept aside by hand(); applyHanded, called
  // with the predecessor's exportState() once its threads stopped, installs those it has state
  // for, in the order handed, and forgets the rest (without their counters, a session could
  // repeat a nonce). takeApplied: the local indexes applyHanded installed.
  std::vector<uint8_t> exportState();
  static constexpr size_t kMaxStateBytes = 4 + kSlots * (4 + WgSession::kStateBytes);
  void hand(std::unique_ptr<WgSession> session, const std::shared_ptr<WgPeerState>& peer,
            const std::shared_ptr<PeerCounters>& node);
  void applyHanded(const uint8_t* state, size_t len);
  std::vector<uint32_t> takeApplied();

 private:
  struct Installed {
    std::unique_ptr<WgSession> session;
    std::shared_ptr<WgPeerState> peer;
    std::shared_ptr<PeerCounters> node;
    WgReceiver receiver;
  };
  struct Handed {
    std::unique_ptr<WgSession> session;
    std::shared_ptr<WgPeerState> peer;
    std::shared_ptr<PeerCounters> node;
  };
  void installLocked(std::unique_ptr<WgSession> session, const std::shared_ptr<WgPeerState>& peer,
                     const std::shared_ptr<PeerCounters>& node);
  void retireLocked(uint32_t localIndex);

  std::mutex writerLock_;
  std::unique_ptr<std::atomic<const WgReceiver*>[]> slots_;
  std::unordered_map<uint32_t, std::shared_ptr<Installed>> installed_;
  std::vector<Handed> handed_;
  std::vector<uint32_t> applied_;
  Retired retired_;
  std::mutex queueLock_;
  std::unique_ptr<WgHandshake[]> queue_;
  size_t head_ = 0, count_ = 0;
  std::atomic<size_t> staged_{0};
};

}  // namespace flatnet
