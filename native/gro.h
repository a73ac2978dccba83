// Coalescing of received TCP segments (and, where the TUN takes USO, UDP datagrams)
// back into one super-packet per TUN write, the inverse of gso.h (as Linux GRO and
// wireguard-go do). Pure: it rewrites buffers and reports writes through a callback.
#pragma once
#include <cstddef>
#include <cstdint>

#include "vnet_hdr.h"

namespace flatnet {

// One packet handed to the TUN: data starts with a VnetHdr, then the IP packet.
struct TunWrite {
  uint8_t* data;
  size_t len;
};

// Feed it the inner IP packets of one received buffer, in order. Each packet
// must have at least sizeof(VnetHdr) writable bytes in front of it that belong
// to the caller (flatnet's encapsulation prefix), and packets of one batch must
// lie in one buffer at increasing addresses: consecutive segments of a TCP flow
// are merged by moving their payloads down behind the first one, in place,
// verifying each segment's TCP checksum on the way (a bad one is dropped and
// counted, never merged). A segment is merged only when the flow, ack, flags (ACK,
// PSH on the last only), options and IP header fields match, its sequence number
// follows on, and every segment but the last has the first one's payload size;
// the merged packet stays under 64 KB.
//
// With udp on, datagrams of one UDP flow (same addresses, ports and IP header
// fields) merge the same way into a GSO_UDP_L4 packet: all but the last carry the
// first one's payload size, at most 64 of them (what Linux UDP GRO builds). A
// tunnelled small-packet flow then costs one TUN write per 64 datagrams instead of
// one each; the kernel cuts it back into the same datagrams before the socket.
//
// What is written: a merged packet gets a vnet header with NEEDS_CSUM, the
// pseudo-header sum in its checksum field and gso TCPV4/TCPV6/UDP_L4; a packet whose
// sender left its checksum partial (partial_checksum.h) gets NEEDS_CSUM alone, so the
// kernel finishes it as it would have on the sender's NIC; any other packet gets an
// all-zero header and is passed unchanged (the kernel checks it). Partial segments
// merge like complete ones: only a checksum in neither form counts as bad.
class Coalescer {
 public:
  struct Stats {
    uint64_t merged = 0;       // segments appended to an earlier one
    uint64_t badChecksum = 0;  // segments dropped for a wrong TCP checksum
    uint64_t partial = 0;      // packets and segments whose checksum the sender left partial
  };
  using Emit = void (*)(void* ctx, const TunWrite& w);

  // mtu: the TUN's, which a partial TCP super-packet is cut to (0: never cut).
  Coalescer(Emit emit, void* ctx, bool udp = false, size_t mtu = 0)
      : emit_(emit), ctx_(ctx), udp_(udp), mtu_(mtu) {}
  // pkt points at an IP packet of len bytes (already validated by the caller:
  // parseIp succeeded and len equals the IP total length).
  void add(uint8_t* pkt, size_t len);
  // Emits whatever is pending. Call at the end of each received buffer.
  void flush();
  const Stats& stats() const { return stats_; }

 private:
  Emit emit_;
  void* ctx_;
  bool udp_;
  size_t mtu_;
  Stats stats_;
  // The packet being grown; null when none is pending.
  uint8_t* head_ = nullptr;
  size_t headLen_ = 0;
  // Set while head_ is a segment that more segments may still join.
  bool open_ = false;
  uint8_t proto_ = 0;  // of the open head: kProtoTcp or kProtoUdp
  // segments_ == 1: the head's own checksum is not verified yet.
  size_t ipHeaderLen_ = 0, l4HeaderLen_ = 0, segSize_ = 0, segments_ = 0;
  uint32_t nextSeq_ = 0;      // TCP only
  bool headPartial_ = false;  // the head's checksum was found in the partial form

  // Appends pkt to the open head, or drops it for a bad checksum (both return true);
  // false when it does not belong to the run.
  bool join(uint8_t* pkt, size_t len);
};

}  // namespace flatnet
