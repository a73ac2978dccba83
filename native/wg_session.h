// A WireGuard transport session as the packet threads use it (whitepaper 5.4.6): the two keys a
// handshake derived, the send counter every thread draws from, and the receive side's replay
// window. Sealing and opening happen in place, in the packet's own buffer (its header room
// before it, its padding and tag after), with the ChaCha20-Poly1305 of the OpenSSL the node
// binary exports. The handshake that makes a session is TypeScript's (src/wireguard/).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "le.h"

namespace flatnet {

constexpr size_t kWgTransportHeader = 16;  // type 4, receiver index, 64-bit counter
constexpr size_t kWgTag = 16;              // Poly1305
constexpr uint8_t kWgTransportType = 4;
// Whitepaper 6.1: Reject-After-Messages = 2^64 - 2^13 - 1; no counter at or past it is used.
constexpr uint64_t kWgRejectAfterMessages = ~uint64_t(0) - (uint64_t(1) << 13);
constexpr int64_t kWgRejectAfterNs = 180'000'000'000;  // Reject-After-Time, 180 s

// RFC 6479's bitmap with the whitepaper's window of 2,048: a counter is accepted once, and only
// when newer than the greatest seen or at most 2,047 behind it. One block more than the window
// needs, so sliding clears whole blocks and never the oldest ones still in the window.
class ReplayWindow {
 public:
  static constexpr uint64_t kWindow = 2048;
  // Whether counter would be accepted, recording nothing (checked before the costlier opening).
  bool check(uint64_t counter) const;
  // Records counter once its message authenticated; false (nothing recorded) if check fails.
  bool accept(uint64_t counter);
  // Its state as bytes, for a handover's successor (the greatest counter and the bitmap).
  static constexpr size_t kStateBytes = 8 * (kWindow / 64 + 2);
  void saveState(uint8_t* out) const;
  void loadState(const uint8_t* in);

 private:
  static constexpr uint64_t kBits = 64;
  static constexpr uint64_t kBlocks = kWindow / kBits + 1;
  uint64_t blocks_[kBlocks] = {};
  uint64_t next_ = 0;  // the greatest counter accepted + 1; 0: none yet
};

// The receiver index of a transport message (whitepaper 5.4.6: little-endian, after the type).
inline uint32_t wgReceiverIndex(const uint8_t* msg) { return le32(msg + 4); }

struct WgSessionKeys {
  uint8_t send[32];
  uint8_t receive[32];
};

enum class WgOpen { ok, length, type, index, expired, replay, decrypt };

class WgSession {
 public:
  // createdNs: CLOCK_MONOTONIC when the handshake completed. initiator: may send at once; a
  // responder waits for the initiator's first message (key confirmation, whitepaper 5.4.5).
  WgSession(uint32_t localIndex, uint32_t remoteIndex, const WgSessionKeys& keys, bool initiator,
            int64_t createdNs);
  WgSession(const WgSession&) = delete;
  WgSession& operator=(const WgSession&) = delete;
  ~WgSession();

  uint32_t localIndex() const { return localIndex_; }
  // Bytes a packet of len takes as a message: header, padding to 16 (never past mtu), tag.
  static size_t messageLength(size_t len, size_t mtu);
  // The packet is at msg + kWgTransportHeader, len bytes, with room for messageLength after msg.
  // Seals it there: the message's length, or 0 when this side may not send (unconfirmed,
  // expired at nowNs, counters spent) or OpenSSL failed.
  size_t seal(uint8_t* msg, size_t len, size_t mtu, int64_t nowNs);
  // Opens a message addressed to this session in place: the padded packet at msg +
  // kWgTransportHeader, *packetLen bytes (0: a keepalive). The counter is checked before the
  // decryption and recorded only after it, so a forged message cannot move the window.
  WgOpen open(uint8_t* msg, size_t len, int64_t nowNs, size_t* packetLen);
  uint64_t sent() const { return sendCounter_.load(std::memory_order_relaxed); }
  // What a handover's successor needs beyond the keys, as bytes: when the handshake completed,
  // the next send counter, whether it may send, the replay window. Saved with the packet
  // threads joined, loaded before the successor's run (never while a thread uses it).
  static constexpr size_t kStateBytes = 8 + 8 + 1 + ReplayWindow::kStateBytes;
  void saveState(uint8_t* out);
  void loadState(const uint8_t* in);
  // Whether seal would find this side allowed to send at nowNs (confirmed, alive, counters left).
  bool maySend(int64_t nowNs) const {
    return confirmed_.load(std::memory_order_acquire) && !expired(nowNs) &&
           sent() < kWgRejectAfterMessages;
  }

 private:
  bool expired(int64_t nowNs) const { return nowNs - createdNs_ >= kWgRejectAfterNs; }

  const uint32_t localIndex_, remoteIndex_;
  // Unique for the process's life (never an address, which a later session may reuse): the
  // thread's cipher contexts remember whose key they hold by it.
  const uint64_t id_;
  WgSessionKeys keys_;
  int64_t createdNs_;  // set once, or by loadState before the session is installed
  std::atomic<bool> confirmed_;
  // Drawn with fetch_add by every sending thread: a counter (a nonce) is never used twice.
  std::atomic<uint64_t> sendCounter_{0};
  std::mutex replayLock_;  // receive threads of several CPUs may open one session's messages
  ReplayWindow replay_;
};

}  // namespace flatnet
