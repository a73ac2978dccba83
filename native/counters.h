// Counters the packet path keeps, read by the control plane. Each counter has a
// single writer thread, so increments are plain relaxed load+store (no locked
// instruction per packet); readers may see a value a few packets old.
#pragma once
#include <atomic>
#include <cstdint>

namespace flatnet {

struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Why a packet was dropped. The names (kDropNames) are what metrics and logs show.
enum Drop : int {
  // receive path: UDP datagram -> TUN
  kDropTooShort,  // shorter than VXLAN + Ethernet + minimal IP
  kDropBadFlags,  // VXLAN I flag not set (RFC 7348 section 5)
  kDropWrongVni,
  kDropUnknownPeer,    // outer source is not a known peer VTEP
  kDropWrongDstMac,    // inner Ethernet destination is not this VTEP (nor broadcast)
  kDropNotIp,          // inner ethertype neither IPv4 nor IPv6
  kDropBadInnerIp,     // inner IP header malformed
  kDropSpoofedSource,  // inner source outside the sending peer's pod CIDRs
  kDropForeignDest,    // inner destination outside this node's pod CIDRs
  kDropBadChecksum,    // inner TCP checksum wrong (found while coalescing)
  kDropTunWrite,       // the TUN refused the write
  kDropUnencrypted,    // VXLAN from a peer that WireGuard seals (or strict refuses in clear)
  // receive path, WireGuard (wg_admit.h; its source, destination and inner IP checks
  // count as VXLAN's above)
  kDropWgBadMessage,    // an unknown type, reserved bytes set, or a length its type cannot have
  kDropWgUnknownIndex,  // no session of ours has the receiver index
  kDropWgExpired,       // the session is past Reject-After-Time
  kDropWgReplay,        // a counter already taken, or older than the window
  kDropWgDecrypt,       // the tag does not verify: wrong key or tampering
  kDropWgBacklog,       // handshake messages came faster than the control plane takes them
  // transmit path: TUN -> UDP datagram
  kDropNoRoute,       // destination in no peer's pod CIDR
  kDropBadTunPacket,  // malformed packet or vnet header from the TUN
  kDropSendError,     // sendmmsg failed (peer unreachable, buffer, EMSGSIZE)
  kDropWgNoSession,   // WireGuard peer with no session that may send yet (one is asked for)
  kDropWgBlocked,     // encryption strict, and the peer published no key
  kDropCount
};

inline constexpr const char* kDropNames[kDropCount] = {
    "too_short",           "bad_flags",        "wrong_vni",    "unknown_peer",
    "wrong_dst_mac",       "not_ip",           "bad_inner_ip", "spoofed_source",
    "foreign_destination", "bad_checksum",     "tun_write",    "unencrypted",
    "wg_bad_message",      "wg_unknown_index", "wg_expired",   "wg_replay",
    "wg_decrypt",          "wg_backlog",       "no_route",     "bad_tun_packet",
    "send_error",          "wg_no_session",    "wg_blocked"};

// Per-queue totals, each written by one thread. Padded so two never share a cache line.
struct alignas(64) WorkerCounters {
  Counter packets, bytes;  // inner packets forwarded (after segmentation / before coalescing)
  Counter batches;         // wakeups that moved at least one packet
  Counter syscalls;        // read/write/sendmmsg/recvmmsg calls that moved packets
  Counter coalesced;  // packets sent or written with an earlier one (tx: joined a UDP GSO train,
                      // rx: GRO)
  Counter partialChecksums;  // rx: inner checksums the sender left for an offload
                             // (partial_checksum.h), finished
  Counter drops[kDropCount];
};

// A counter more than one thread adds to: an atomic add (once per message, not per byte).
struct SharedCounter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Per-peer traffic: transmit loops write tx, receive loops rx; with a worker per
// CPU several of each, so these are shared.
struct PeerCounters {
  alignas(64) SharedCounter txPackets, txBytes;
  alignas(64) SharedCounter rxPackets, rxBytes;
};

}  // namespace flatnet
