#include "worker.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "admit.h"
#include "clock.h"
#include "dataplane.h"
#include "gso.h"
#include "partial_checksum.h"
#include "tun.h"
#include "udp.h"
#include "vnet_hdr.h"
#include "vxlan.h"
#include "wg_admit.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // include/uapi/linux/udp.h
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace flatnet {

namespace {
constexpr size_t kMaxIpPacket = 65535;
// The largest UDP payload one GSO send may carry: the whole train is built as a
// single IP packet before it is segmented (ip_append_data's 64 KB limit).
constexpr size_t kMaxGsoPayload = 65507;
constexpr size_t kMaxGsoSegments = 64;  // UDP_MAX_SEGMENTS in older kernels
// Segments one super-packet may become: 64 KB at an MSS down to 256 bytes.
constexpr size_t kMaxSplit = 256;
constexpr size_t kControlLen = CMSG_SPACE(sizeof(uint16_t));
constexpr size_t kRxControlLen = CMSG_SPACE(sizeof(int));
// Encapsulation prefix minus the vnet header: where a TUN read lands so that the
// IP packet starts exactly kEncapPrefixLen into the slot.
constexpr size_t kReadOffset = kEncapPrefixLen - sizeof(VnetHdr);
// WireGuard seals in place: its 16-byte header goes where VXLAN's prefix would, its padding
// (to 16) and tag after the packet, so every packet keeps this much room behind it.
constexpr size_t kWgTailRoom = 32;
static_assert(kEncapPrefixLen >= kWgTransportHeader, "the header is written before the packet");
// A super-packet's segments for a WireGuard peer are split this far apart: the header before
// each, and the previous segment's padding and tag.
constexpr size_t kWgSplitHeadroom = kWgTransportHeader + kWgTailRoom;
constexpr uint16_t kWgOverhead = kWgTransportHeader + kWgTag;
}  // namespace

// The room one TUN read needs: the largest packet, behind its encapsulation prefix.
constexpr size_t kTxSlotSize = kEncapPrefixLen + kMaxIpPacket + 64;
static_assert(kTxSlotSize - kEncapPrefixLen - kMaxIpPacket >= kWgTailRoom);
// The room one super-packet's split needs: every segment gains its own headers and prefix.
constexpr size_t kTxOutSize = kMaxIpPacket + kMaxSplit * (kEncapPrefixLen + 128);
// A transmit batch packs its reads, and the trains split from them, one after the
// other into two arenas, each read taking the bytes it got; the batch ends when the
// next read might not fit. Few super-packets per batch keep what bulk traffic touches
// in the CPU's L2 cache along the whole copy chain (TUN read, split, sendmmsg;
// recvmmsg, coalesce, TUN write), which 32 of them did not (docs/performance.md).
// Small packets still fill a batch of 32.
constexpr size_t kTxSupersPerBatch = 4;
constexpr size_t kTxReadArena = kTxSupersPerBatch * kTxSlotSize;
constexpr size_t kTxOutArena = kTxSupersPerBatch * kTxOutSize;
constexpr size_t align64(size_t n) { return (n + 63) & ~size_t(63); }
// With UDP GRO one message can hold a 64 KB train of up to 64 datagrams. After a
// batch that held a train the next one takes kRxTrainMessages (still more datagrams
// per call than 32 single ones), so bulk traffic keeps its slots in L2 too. Single
// datagrams (a kernel vxlan peer's arrive unmerged on a veth underlay) keep the full
// batch: each touches only the first page of its slot, and fewer per call was slower.
constexpr size_t kRxTrainMessages = 8;
size_t rxSlotSize(bool gro) { return gro ? kMaxIpPacket + 1 : kEncapPrefixLen + kMaxIpPacket + 64; }

// A receive batch can take a train in any slot (the traffic changes between calls).
size_t packetMemoryPerWorker(const DataplaneOptions& o) {
  size_t receive = size_t(o.batch) * rxSlotSize(false);
  return kTxReadArena + (o.offloads ? kTxOutArena : kTxOutSize) + receive * (o.wgPort ? 2 : 1);
}

// ---- transmit ----

TransmitLoop::TransmitLoop(LoopSpec spec) : dp_(spec.dp), queue_(spec.queue) {
  size_t batch = size_t(dp_.options().batch);
  slots_.allocate(kTxReadArena);
  if (dp_.tun().vnetHdr) outs_.allocate(kTxOutArena);
  sizes_.resize(kMaxSplit);
  size_t maxMessages = batch * (dp_.tun().vnetHdr ? kMaxSplit : 1);
  messages_.reserve(maxMessages);
  mmsg_.resize(maxMessages);
  iov_.resize(maxMessages);
  control_.resize(maxMessages * kControlLen);
}

int TransmitLoop::fd() const { return dp_.tun().fds[size_t(queue_)]; }

bool TransmitLoop::runBatch(const Fib& fib) {
  WorkerCounters& c = dp_.txCounters(queue_);
  size_t batch = size_t(dp_.options().batch), reads = 0, used = 0;
  bool vnet = dp_.tun().vnetHdr;
  outUsed_ = 0;
  pureAcks_ = 0;
  if (dp_.wg_) nowNs_ = monotonicNs();
  for (; reads < batch && used + kTxSlotSize <= kTxReadArena &&
         (!vnet || outUsed_ + kTxOutSize <= kTxOutArena);
       reads++) {
    uint8_t* slot = slots_.at(used);
    uint8_t* at = slot + (vnet ? kReadOffset : kEncapPrefixLen);
    ssize_t n = read(fd(), at, kTxSlotSize - (at - slot));
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        // The device went away under us (deleted by someone else): report it and
        // do not spin on a descriptor that stays readable; the control plane heals.
        dp_.tunError_.store(errno, std::memory_order_relaxed);
        usleep(20000);
      }
      break;
    }
    c.syscalls.add(1);
    encapsulate(fib, slot, size_t(n));
    // Room for a WireGuard tag after the packet, only where a peer may be sealed to.
    used += align64(size_t(at - slot) + size_t(n) + (dp_.wg_ ? kWgTailRoom : 0));
  }
  if (reads) c.batches.add(1);
  flush();
  return reads > 0;
}

// Routes the packet read into slot (n bytes as read) and queues its datagrams.
void TransmitLoop::encapsulate(const Fib& fib, uint8_t* slot, size_t n) {
  WorkerCounters& c = dp_.txCounters(queue_);
  VnetHdr hdr{};
  if (dp_.tun().vnetHdr) {
    if (n < sizeof hdr) return c.drops[kDropBadTunPacket].add(1);
    std::memcpy(&hdr, slot + kReadOffset, sizeof hdr);
    n -= sizeof hdr;
  }
  uint8_t* pkt = slot + kEncapPrefixLen;
  IpView ip;
  if (!parseIp(pkt, n, &ip)) return c.drops[kDropBadTunPacket].add(1);
  const Peer* peer = fib.lookup(ip.version, ip.dst);
  if (!peer) return c.drops[kDropNoRoute].add(1);
  if (peer->encryption == Peer::Encryption::wireguard) {
    pureAcks_ += isPureTcpAck(pkt, ip);
    return seal(Route{peer, dp_.wgFd(queue_), &peer->wgSockaddr, peer->wgSockaddrLen, kWgOverhead},
                hdr, pkt, n);
  }
  if (peer->encryption == Peer::Encryption::blocked) return c.drops[kDropWgBlocked].add(1);
  int socket = int(flowHash(pkt, ip) % dp_.txFds_.size());
  Route route{peer, dp_.txFds_[size_t(socket)], &peer->sockaddr, peer->sockaddrLen,
              uint16_t(kEncapPrefixLen)};
  const Vtep& vtep = dp_.options().vtep;
  uint16_t ethType = ip.version == 4 ? kEthTypeIpv4 : kEthTypeIpv6;

  if ((hdr.gsoType & ~kGsoEcn) == kGsoNone) {
    // The common small packet: encapsulated in place, no copy.
    pureAcks_ += isPureTcpAck(pkt, ip);
    if ((hdr.flags & kVnetNeedsCsum) && !completeChecksum(hdr, pkt, n))
      return c.drops[kDropBadTunPacket].add(1);
    writeEncapPrefix(slot, vtep.vni, peer->mac, vtep.mac, ethType);
    return queueOrJoin(route, slot, kEncapPrefixLen + n, uint32_t(n));
  }

  uint8_t* const first = outs_.at(outUsed_);
  uint8_t* out = first;
  size_t count = 0;
  if (gsoSplit(hdr, pkt, n, out, kTxOutSize, kEncapPrefixLen, sizes_.data(), kMaxSplit, &count) !=
      GsoResult::ok)
    return c.drops[kDropBadTunPacket].add(1);
  // Chop the equal-size train into GSO sends the kernel accepts (<= 64 segments,
  // <= 64 KB); without UDP GSO every segment is its own message.
  bool gso = dp_.gsoOn_.load(std::memory_order_relaxed);
  size_t i = 0;
  while (i < count) {
    uint8_t* start = out;
    size_t bytes = 0, inner = 0, segs = 0;
    size_t segLen = kEncapPrefixLen + sizes_[i];
    do {
      writeEncapPrefix(out, vtep.vni, peer->mac, vtep.mac, ethType);
      out += kEncapPrefixLen + sizes_[i];
      bytes += kEncapPrefixLen + sizes_[i];
      inner += sizes_[i];
      segs++;
      i++;
    } while (gso && i < count && segs < kMaxGsoSegments &&
             bytes + kEncapPrefixLen + sizes_[i] <= kMaxGsoPayload &&
             kEncapPrefixLen + sizes_[i - 1] == segLen);
    queue(route, start, bytes, segs > 1 ? uint16_t(segLen) : 0, uint16_t(segs), uint32_t(inner));
  }
  outUsed_ += align64(size_t(out - first));  // the walk above ends past the train
}

// Whitepaper 5.4.6: each packet is its own transport message. A super-packet is segmented
// first, kWgSplitHeadroom apart, and each segment sealed where it lies: segments of one size
// seal to messages of one size, which go out as a UDP GSO train (a buffer each, as join makes).
void TransmitLoop::seal(const Route& r, const VnetHdr& hdr, uint8_t* pkt, size_t n) {
  WorkerCounters& c = dp_.txCounters(queue_);
  WgPeerState& wg = *r.peer->wg;
  size_t mtu = dp_.options().mtu ? dp_.options().mtu : kMaxIpPacket;
  if ((hdr.gsoType & ~kGsoEcn) == kGsoNone) {
    if ((hdr.flags & kVnetNeedsCsum) && !completeChecksum(hdr, pkt, n))
      return c.drops[kDropBadTunPacket].add(1);
    uint8_t* msg = pkt - kWgTransportHeader;
    size_t len = wg.seal(msg, n, mtu, nowNs_);
    if (!len) {
      if (!dp_.wg_->stage(wg, pkt, n)) c.drops[kDropWgNoSession].add(1);
      return;
    }
    wg.mark(kWgDataSent);
    return queueOrJoin(r, msg, len, uint32_t(n));
  }
  uint8_t* const first = outs_.at(outUsed_);
  size_t count = 0;
  if (gsoSplit(hdr, pkt, n, first, kTxOutSize - kWgTailRoom, kWgSplitHeadroom, sizes_.data(),
               kMaxSplit, &count) != GsoResult::ok)
    return c.drops[kDropBadTunPacket].add(1);
  uint8_t* at = first;
  for (size_t i = 0; i < count; at += kWgSplitHeadroom + sizes_[i++]) {
    uint8_t* msg = at + kWgSplitHeadroom - kWgTransportHeader;
    size_t len = wg.seal(msg, sizes_[i], mtu, nowNs_);
    if (len) {
      queueOrJoin(r, msg, len, sizes_[i]);
    } else if (!dp_.wg_->stage(wg, msg + kWgTransportHeader, sizes_[i])) {
      c.drops[kDropWgNoSession].add(1);
    }
  }
  if (count) wg.mark(kWgDataSent);
  outUsed_ += align64(size_t(at - first) + kWgTailRoom);
}

void TransmitLoop::queue(const Route& r, uint8_t* data, size_t len, uint16_t gsoSize,
                         uint16_t segments, uint32_t innerBytes) {
  size_t iov = messages_.empty() ? 0 : messages_.back().iovFirst + messages_.back().iovCount;
  iov_[iov] = iovec{data, len};
  // Only a lone datagram can grow into a train: a segmented one is closed already.
  bool open = segments == 1 && dp_.gsoOn_.load(std::memory_order_relaxed);
  messages_.push_back(Message{iov, 1, len, gsoSize, segments, innerBytes, open, r});
}

// Small packets of one flow (UDP, or a stream of ACKs) encapsulate to datagrams of one
// size for one peer: the previous message takes this one as a further UDP GSO
// segment, a buffer of its own in the same send, so the kernel builds one skb for the
// run instead of one per packet. A shorter datagram ends the train, as GSO requires.
bool TransmitLoop::join(const Route& r, uint8_t* data, size_t len, uint32_t innerBytes) {
  if (messages_.empty()) return false;
  Message& m = messages_.back();
  size_t segLen = m.iovCount == 1 ? m.len : m.gsoSize;
  if (!m.open || m.route.peer != r.peer || m.route.fd != r.fd || len > segLen ||
      m.segments >= kMaxGsoSegments || m.len + len > kMaxGsoPayload)
    return false;
  iov_[m.iovFirst + m.iovCount++] = iovec{data, len};
  m.gsoSize = uint16_t(segLen);
  m.len += len;
  m.segments++;
  m.innerBytes += innerBytes;
  if (len < segLen) m.open = false;
  dp_.txCounters(queue_).coalesced.add(1);
  return true;
}

// Sends what the batch queued: consecutive messages for the same socket go out in
// one sendmmsg.
void TransmitLoop::flush() {
  size_t first = 0;
  for (size_t i = 1; i <= messages_.size(); i++) {
    if (i == messages_.size() || messages_[i].route.fd != messages_[first].route.fd) {
      sendRun(first, i - first);
      first = i;
    }
  }
  messages_.clear();
}

void TransmitLoop::sendRun(size_t first, size_t count) {
  WorkerCounters& c = dp_.txCounters(queue_);
  for (size_t k = 0; k < count; k++) {
    const Message& m = messages_[first + k];
    mmsghdr& h = mmsg_[k];
    h = mmsghdr{};
    h.msg_hdr.msg_iov = &iov_[m.iovFirst];
    h.msg_hdr.msg_iovlen = m.iovCount;
    h.msg_hdr.msg_name = const_cast<sockaddr_storage*>(m.route.to);
    h.msg_hdr.msg_namelen = m.route.toLen;
    if (m.gsoSize) {
      uint8_t* ctl = &control_[k * kControlLen];
      std::memset(ctl, 0, kControlLen);
      h.msg_hdr.msg_control = ctl;
      h.msg_hdr.msg_controllen = kControlLen;
      cmsghdr* cm = CMSG_FIRSTHDR(&h.msg_hdr);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      std::memcpy(CMSG_DATA(cm), &m.gsoSize, sizeof(uint16_t));
    }
  }
  int fd = messages_[first].route.fd;
  size_t done = 0;
  while (done < count) {
    int sent = sendmmsg(fd, &mmsg_[done], unsigned(count - done), 0);
    c.syscalls.add(1);
    if (sent < 0) {
      if (errno == EINTR) continue;
      // WireGuard's socket is non-blocking (it receives too): wait for room, as the blocking
      // VXLAN senders do, so a full buffer slows the sender rather than dropping its packets.
      pollfd room{fd, POLLOUT, 0};
      if (errno == EAGAIN && poll(&room, 1, 100) > 0) continue;
      const Message& m = messages_[first + done];
      if (m.gsoSize && errno == EIO) {
        // The egress device cannot checksum a GSO train (wireguard-go sees the
        // same): stop using UDP GSO for good and resend this one segment by segment.
        dp_.gsoErrno_.store(EIO, std::memory_order_relaxed);
        dp_.gsoOn_.store(false, std::memory_order_relaxed);
        sendOneByOne(m);
      } else {
        c.drops[kDropSendError].add(m.segments);
      }
      done++;
      continue;
    }
    for (int k = 0; k < sent; k++) {
      const Message& m = messages_[first + done + k];
      m.route.peer->counters->txPackets.add(m.segments);
      m.route.peer->counters->txBytes.add(m.innerBytes);
      c.packets.add(m.segments);
      c.bytes.add(m.innerBytes);
    }
    done += size_t(sent);
  }
}

// The fallback for a GSO train the kernel refused: one datagram per segment. A
// train is one buffer cut every gsoSize bytes (segmented), or a buffer per datagram
// (joined); this walks both.
void TransmitLoop::sendOneByOne(const Message& m) {
  WorkerCounters& c = dp_.txCounters(queue_);
  int fd = m.route.fd;
  for (size_t b = 0; b < m.iovCount; b++) {
    const iovec& buf = iov_[m.iovFirst + b];
    auto* data = static_cast<uint8_t*>(buf.iov_base);
    for (size_t off = 0; off < buf.iov_len; off += m.gsoSize) {
      size_t len = std::min<size_t>(m.gsoSize, buf.iov_len - off);
      if (sendto(fd, data + off, len, 0, reinterpret_cast<const sockaddr*>(m.route.to),
                 m.route.toLen) < 0) {
        c.drops[kDropSendError].add(1);
        continue;
      }
      m.route.peer->counters->txPackets.add(1);
      m.route.peer->counters->txBytes.add(len - m.route.overhead);
      c.packets.add(1);
      c.bytes.add(len - m.route.overhead);
    }
  }
}

// ---- receive ----

// UDP datagrams merge only into a TUN that took USO: the kernel that accepts
// TUN_F_USO4/6 (Linux 6.2) is the one that takes GSO_UDP_L4 writes, from the same
// change; before it a write of one fails with EINVAL.
ReceiveLoop::ReceiveLoop(LoopSpec spec, bool wg)
    : dp_(spec.dp),
      queue_(spec.queue),
      wg_(wg),
      coalescer_(&ReceiveLoop::emit, this, (spec.dp.tun().offloads & kTunUso4) != 0,
                 spec.dp.options().mtu) {
  if (fd() < 0) return;  // WireGuard off: never runs
  size_t batch = size_t(dp_.options().batch);
  take_ = batch;
  slotSize_ = rxSlotSize(dp_.udpGroOn());
  slots_.allocate(batch * slotSize_);
  from_.resize(batch);
  mmsg_.resize(batch);
  iov_.resize(batch);
  control_.resize(batch * kRxControlLen);
  if (!dp_.tun().vnetHdr) {
    split_.allocate(kTxOutSize);
    splitSizes_.resize(kMaxSplit);
  }
}

int ReceiveLoop::fd() const { return wg_ ? dp_.wgFd(queue_) : dp_.rxFds_[size_t(queue_)]; }
int ReceiveLoop::tunFd() const { return dp_.tun().fds[size_t(queue_)]; }

bool ReceiveLoop::runBatch(const Fib& fib) {
  if (fd() < 0) return false;
  WorkerCounters& c = dp_.rxCounters(queue_);
  size_t batch = take_;
  for (size_t k = 0; k < batch; k++) {
    iov_[k] = iovec{slots_.at(k * slotSize_), slotSize_};
    mmsghdr& h = mmsg_[k];
    h = mmsghdr{};
    h.msg_hdr.msg_iov = &iov_[k];
    h.msg_hdr.msg_iovlen = 1;
    h.msg_hdr.msg_name = &from_[k];
    h.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    h.msg_hdr.msg_control = &control_[k * kRxControlLen];
    h.msg_hdr.msg_controllen = kRxControlLen;
  }
  int got = recvmmsg(fd(), mmsg_.data(), unsigned(batch), MSG_DONTWAIT, nullptr);
  if (got <= 0) return false;
  c.syscalls.add(1);
  c.batches.add(1);
  bool train = false;
  if (wg_) nowNs_ = monotonicNs();
  for (int k = 0; k < got; k++) {
    msghdr& mh = mmsg_[k].msg_hdr;
    size_t len = mmsg_[k].msg_len, gsoSize = len;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int size;
        std::memcpy(&size, CMSG_DATA(cm), sizeof size);
        if (size > 0) gsoSize = size_t(size);
      }
    train |= gsoSize < len;
    if (wg_)
      receiveWg(fib, slots_.at(k * slotSize_), len, from_[k], gsoSize);
    else
      receiveMessage(fib, slots_.at(k * slotSize_), len, from_[k], gsoSize);
  }
  take_ = train ? std::min(mmsg_.size(), kRxTrainMessages) : mmsg_.size();
  if (dp_.tun().vnetHdr) {
    // Coalescing runs across the whole batch: the slots are one buffer, in receive
    // order, so segments of a flow that arrived as separate datagrams (a peer
    // without UDP GSO, such as the kernel's vxlan on a NIC without tunnel offload)
    // still merge into one TUN write.
    coalescer_.flush();
    const Coalescer::Stats& s = coalescer_.stats();
    c.drops[kDropBadChecksum].add(s.badChecksum - seen_.badChecksum);
    c.coalesced.add(s.merged - seen_.merged);
    c.partialChecksums.add(s.partial - seen_.partial);
    seen_ = s;
  }
  return true;
}

// Validates and delivers every datagram of one received message (several when the
// kernel coalesced them with UDP GRO; they then share source and size).
void ReceiveLoop::receiveMessage(const Fib& fib, uint8_t* buf, size_t len,
                                 const sockaddr_storage& from, size_t gsoSize) {
  WorkerCounters& c = dp_.rxCounters(queue_);
  admitMessage(
      fib, fromSockaddr(from), dp_.options().vtep, buf, len, gsoSize,
      [&](const Peer& peer, uint8_t* pkt, const IpView& ip) { deliver(*peer.counters, pkt, ip); },
      [&](Drop why, size_t count) { c.drops[why].add(count); });
}

// Every WireGuard message of one received message (several with UDP GRO, of one size). The
// outer source is not checked: a session's keys say who sent it (whitepaper 2.1, roaming).
void ReceiveLoop::receiveWg(const Fib& fib, uint8_t* buf, size_t len, const sockaddr_storage& from,
                            size_t gsoSize) {
  WorkerCounters& c = dp_.rxCounters(queue_);
  WgTable& wg = *dp_.wg_;
  auto find = [&](uint32_t index) { return wg.find(index); };
  for (size_t off = 0; off < len; off += gsoSize) {
    uint8_t* p = buf + off;
    size_t n = std::min(gsoSize, len - off);
    IpView ip;
    const WgReceiver* by = nullptr;
    WgVerdict v = admitWg(fib, find, p, n, nowNs_, &ip, &by);
    switch (v) {
      case WgVerdict::packet:
        by->peer->mark(kWgDataReceived | kWgAnyReceived);
        deliver(*by->node, p + kWgTransportHeader, ip);
        break;
      case WgVerdict::keepalive:
        by->peer->mark(kWgAnyReceived);
        break;
      case WgVerdict::handshake:
        if (!wg.pushHandshake(p, n, from)) c.drops[kDropWgBacklog].add(1);
        break;
      case WgVerdict::unknownIndex: {
        c.drops[kDropWgUnknownIndex].add(1);
        // From a WireGuard peer's address, this node lost the session the peer still uses (a
        // restart, a handover): ask for a new one rather than wait until the peer's own timers
        // (Keepalive-Timeout + Rekey-Timeout, 15 s) give up on it. The control plane's timers
        // pace the initiations, so a forged message costs at most one every Rekey-Timeout.
        const Peer* peer = fib.peerByAddress(fromSockaddr(from));
        if (peer && peer->wg) peer->wg->mark(kWgWantsSession);
        break;
      }
      default:
        c.drops[wgDropOf(v)].add(1);
    }
  }
}

void ReceiveLoop::deliver(PeerCounters& node, uint8_t* pkt, const IpView& ip) {
  WorkerCounters& c = dp_.rxCounters(queue_);
  node.rxPackets.add(1);
  node.rxBytes.add(ip.totalLen);
  c.packets.add(1);
  c.bytes.add(ip.totalLen);
  if (dp_.tun().vnetHdr) {
    coalescer_.add(pkt, ip.totalLen);  // trims any Ethernet padding
    return;
  }
  // No vnet header to hand a partial checksum to the kernel with: finish it here,
  // and cut a super-packet as the kernel would have.
  if (size_t field = partialChecksumField(pkt, ip)) {
    c.partialChecksums.add(1);
    VnetHdr h = partialChecksumHeader(pkt, ip, field, dp_.options().mtu);
    if (h.gsoType != kGsoNone) return writeSegments(h, pkt, ip.totalLen);
    finishChecksum(pkt, ip, field);
  }
  if (write(tunFd(), pkt, ip.totalLen) < 0) {
    c.drops[kDropTunWrite].add(1);
  } else {
    c.syscalls.add(1);
  }
}

// A partial TCP super-packet for a TUN without a vnet header: segmented here.
void ReceiveLoop::writeSegments(const VnetHdr& h, const uint8_t* pkt, size_t len) {
  WorkerCounters& c = dp_.rxCounters(queue_);
  size_t count = 0;
  if (gsoSplit(h, pkt, len, split_.at(0), kTxOutSize, 0, splitSizes_.data(), kMaxSplit, &count) !=
      GsoResult::ok)
    return c.drops[kDropBadInnerIp].add(1);
  const uint8_t* seg = split_.at(0);
  for (size_t i = 0; i < count; seg += splitSizes_[i++]) {
    if (write(tunFd(), seg, splitSizes_[i]) < 0)
      c.drops[kDropTunWrite].add(1);
    else
      c.syscalls.add(1);
  }
}

void ReceiveLoop::emit(void* self, const TunWrite& w) {
  auto* loop = static_cast<ReceiveLoop*>(self);
  WorkerCounters& c = loop->dp_.rxCounters(loop->queue_);
  if (write(loop->tunFd(), w.data, w.len) < 0)
    c.drops[kDropTunWrite].add(1);
  else
    c.syscalls.add(1);
}

}  // namespace flatnet
