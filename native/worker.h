// The two packet loops. Each owns its buffers (allocated once, at start) and runs
// one batch per wakeup against the table the Dataplane hands it.
//   TransmitLoop: TUN read -> route -> segment -> encapsulate -> sendmmsg (UDP GSO)
//   ReceiveLoop:  recvmmsg (UDP GRO) -> validate -> decapsulate -> coalesce -> TUN write
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "fib.h"
#include "gro.h"
#include "vnet_hdr.h"

namespace flatnet {

class Dataplane;
struct DataplaneOptions;

// Packet memory, left uninitialised: glibc serves allocations this large with mmap,
// whose pages take memory only once a packet is written to them. A worker's 2.8 MB
// of arenas and receive slots mostly sits empty (a ping uses one page of each), so
// an idle worker costs what its traffic touched (vector would zero it all up front).
class PacketMemory {
 public:
  void allocate(size_t bytes) { bytes_.reset(new uint8_t[bytes]); }
  uint8_t* at(size_t offset) { return bytes_.get() + offset; }

 private:
  std::unique_ptr<uint8_t[]> bytes_;
};

// What a loop is built from: its data plane and the queue it serves (which TUN
// queue and receive socket it uses and which counters it keeps). Loops are built in
// place from it: a ReceiveLoop must not move, its Coalescer points back at it.
struct LoopSpec {
  Dataplane& dp;
  int queue;
};

// The packet buffers one transmit and one receive loop allocate, the most they touch
// under load (a per-cpu worker holds both; the pipeline's two threads one each).
size_t packetMemoryPerWorker(const DataplaneOptions& options);

class TransmitLoop {
 public:
  explicit TransmitLoop(LoopSpec spec);
  int fd() const;
  // Reads until the TUN is empty or the batch is full, then sends. Returns
  // whether anything was read.
  bool runBatch(const Fib& fib);
  // Pure TCP ACKs the last batch sent.
  size_t pureAcks() const { return pureAcks_; }

 private:
  // Where a datagram goes: the socket it is sent from, and to which address.
  struct Route {
    const Peer* peer;
    int fd;
    const sockaddr_storage* to;
    socklen_t toLen;
    uint16_t overhead;  // bytes a datagram has beyond its inner packet (padding aside)
  };
  struct Message {    // one sendmmsg entry: a datagram or a GSO train
    size_t iovFirst;  // its buffers: iov_[iovFirst, iovFirst + iovCount)
    size_t iovCount;
    size_t len;        // bytes over all its buffers
    uint16_t gsoSize;  // 0 = a single datagram
    uint16_t segments;
    uint32_t innerBytes;
    bool open;  // datagrams of exactly gsoSize may still join it
    Route route;
  };
  void encapsulate(const Fib& fib, uint8_t* slot, size_t n);
  // A WireGuard peer's packet: sealed in place (one message per segment of a super-packet).
  void seal(const Route& r, const VnetHdr& hdr, uint8_t* pkt, size_t n);
  void queue(const Route& r, uint8_t* data, size_t len, uint16_t gsoSize, uint16_t segments,
             uint32_t innerBytes);
  bool join(const Route& r, uint8_t* data, size_t len, uint32_t innerBytes);
  void queueOrJoin(const Route& r, uint8_t* data, size_t len, uint32_t innerBytes) {
    if (!join(r, data, len, innerBytes)) queue(r, data, len, 0, 1, innerBytes);
  }
  void flush();
  void sendRun(size_t first, size_t count);
  void sendOneByOne(const Message& m);

  Dataplane& dp_;
  int queue_;
  int64_t nowNs_ = 0;   // CLOCK_MONOTONIC at the batch's start (WireGuard's session ages)
  PacketMemory slots_;  // the batch's reads, packed
  PacketMemory outs_;   // the trains split from them (offload mode), packed
  size_t outUsed_ = 0;  // bytes of outs_ this batch has taken
  size_t pureAcks_ = 0;
  std::vector<uint16_t> sizes_;
  std::vector<Message> messages_;
  std::vector<mmsghdr> mmsg_;
  std::vector<iovec> iov_;        // the queued messages' buffers, in order
  std::vector<uint8_t> control_;  // one UDP_SEGMENT cmsg per message
};

class ReceiveLoop {
 public:
  // wg: the loop of the WireGuard socket (WgReceiveLoop), else VXLAN's.
  explicit ReceiveLoop(LoopSpec spec, bool wg = false);
  ReceiveLoop(const ReceiveLoop&) = delete;
  ReceiveLoop& operator=(const ReceiveLoop&) = delete;
  int fd() const;
  // One recvmmsg and its deliveries. Returns whether anything was received.
  bool runBatch(const Fib& fib);

 private:
  void receiveMessage(const Fib& fib, uint8_t* buf, size_t len, const sockaddr_storage& from,
                      size_t gsoSize);
  void receiveWg(const Fib& fib, uint8_t* buf, size_t len, const sockaddr_storage& from,
                 size_t gsoSize);
  // An admitted inner packet from the node counted by node: to the coalescer, or the TUN.
  void deliver(PeerCounters& node, uint8_t* pkt, const IpView& ip);
  static void emit(void* self, const TunWrite& w);
  void writeSegments(const VnetHdr& h, const uint8_t* pkt, size_t len);
  int tunFd() const;

  Dataplane& dp_;
  int queue_;
  bool wg_;
  int64_t nowNs_ = 0;
  size_t slotSize_ = 0;
  size_t take_ = 0;  // messages the next recvmmsg takes (fewer after a GRO train)
  PacketMemory slots_;
  std::vector<sockaddr_storage> from_;
  std::vector<mmsghdr> mmsg_;
  std::vector<iovec> iov_;
  std::vector<uint8_t> control_;
  Coalescer coalescer_;
  Coalescer::Stats seen_;  // what was already added to the counters
  PacketMemory split_;     // no vnet header: a received super-packet's segments
  std::vector<uint16_t> splitSizes_;
};

// The receive loop of the WireGuard socket: transport messages opened in place, then delivered
// as VXLAN's are; handshake messages queued for the control plane. A type of its own, so that a
// thread's loops are distinct types (Dataplane::run); with WireGuard off it has no descriptor
// and allocates nothing.
class WgReceiveLoop : public ReceiveLoop {
 public:
  explicit WgReceiveLoop(LoopSpec spec) : ReceiveLoop(spec, true) {}
};

}  // namespace flatnet
