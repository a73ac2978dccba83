// Receive coalescing, the rules of Linux tcp_gro_receive (net/ipv4/tcp_offload.c),
// udp_gro_receive_segment (net/ipv4/udp_offload.c) and wireguard-go's
// tun/offload_linux.go, for one pending flow at a time: segments of a bulk transfer
// arrive back to back in a batch, and any other packet ends the run (so the order of
// packets is kept).
#include "gro.h"

#include <cstring>

#include "checksum.h"
#include "packet.h"
#include "partial_checksum.h"

namespace flatnet {
namespace {

constexpr size_t kMaxMerged = 0xffff;   // the IP length fields are 16-bit
constexpr size_t kMaxUdpSegments = 64;  // UDP_GRO_CNT_MAX: no more than the kernel's own GRO

// The transport header of a packet that coalescing may start or join, or null;
// *proto says which. Only plain headers: IPv4 without options or fragmentation,
// IPv6 without extension headers, some payload. TCP: flags exactly ACK or ACK|PSH.
// UDP (when udp): a length field that matches the packet.
const uint8_t* mergeable(const uint8_t* pkt, size_t len, bool udp, size_t* ipLen, size_t* l4Len,
                         uint8_t* proto) {
  if (len < kIpv4HeaderLen + kUdpHeaderLen) return nullptr;
  uint8_t version = pkt[0] >> 4;
  if (version == 4) {
    if (pkt[0] != 0x45 || (load16(pkt + 6) & 0x3fff)) return nullptr;
    *ipLen = kIpv4HeaderLen;
    *proto = pkt[9];
  } else if (version == 6) {
    *ipLen = kIpv6HeaderLen;
    *proto = pkt[6];
  } else {
    return nullptr;
  }
  const uint8_t* l4 = pkt + *ipLen;
  if (*proto == kProtoUdp && udp) {
    *l4Len = kUdpHeaderLen;
    if (len <= *ipLen + kUdpHeaderLen || load16(l4 + 4) != len - *ipLen) return nullptr;
    return l4;
  }
  if (*proto != kProtoTcp || len < *ipLen + kTcpHeaderLen) return nullptr;
  *l4Len = size_t(l4[12] >> 4) * 4;
  uint8_t flags = l4[13];
  if (*l4Len < kTcpHeaderLen || *ipLen + *l4Len >= len) return nullptr;  // >=: no payload
  if (flags != kTcpAck && flags != (kTcpAck | kTcpPsh)) return nullptr;
  return l4;
}

// The pseudo-header sum of a transport segment of l4Len bytes in packet ip.
uint32_t pseudoSum(const uint8_t* ip, uint8_t proto, size_t l4Len) {
  bool v4 = ip[0] >> 4 == 4;
  return pseudoHeaderSum(v4 ? 4 : 6, ip + (v4 ? 12 : 8), ip + (v4 ? 16 : 24), proto,
                         uint32_t(l4Len));
}

// IPv4 UDP may go without a checksum (0): there is nothing to verify.
bool unchecked(const uint8_t* ip, uint8_t proto, const uint8_t* l4) {
  return proto == kProtoUdp && ip[0] >> 4 == 4 && load16(l4 + 6) == 0;
}

// Same IP flow and the header fields Linux inet_gro_receive / ipv6_gro_receive
// require to match: IPv4 TOS, TTL, DF; IPv6 version/class/flow label and hop limit.
bool sameIp(const uint8_t* a, const uint8_t* b) {
  if (a[0] >> 4 == 4)
    return a[0] == b[0] && a[1] == b[1] && a[8] == b[8] && ((a[6] ^ b[6]) & 0x40) == 0 &&
           std::memcmp(a + 12, b + 12, 8) == 0;
  return std::memcmp(a, b, 4) == 0 && a[7] == b[7] && std::memcmp(a + 8, b + 8, 32) == 0;
}

// Ports, ack, data offset, window and options equal (tcp_gro_receive's flush rules).
bool sameTcp(const uint8_t* a, const uint8_t* b, size_t tcpLen) {
  return std::memcmp(a, b, 4) == 0 && std::memcmp(a + 8, b + 8, 5) == 0 &&
         load16(a + 14) == load16(b + 14) &&
         std::memcmp(a + kTcpHeaderLen, b + kTcpHeaderLen, tcpLen - kTcpHeaderLen) == 0;
}

void writeHeader(uint8_t* at, const VnetHdr& h) { std::memcpy(at, &h, sizeof h); }

}  // namespace

void Coalescer::add(uint8_t* pkt, size_t len) {
  if (open_ && join(pkt, len)) return;
  flush();
  size_t ipLen, l4Len;
  uint8_t proto;
  const uint8_t* l4 = mergeable(pkt, len, udp_, &ipLen, &l4Len, &proto);
  head_ = pkt;
  headLen_ = len;
  segments_ = 1;
  headPartial_ = false;
  if (!l4 || (proto == kProtoTcp && l4[13] & kTcpPsh)) {  // PSH ends a run: nothing can follow it
    flush();
    return;
  }
  open_ = true;
  proto_ = proto;
  ipHeaderLen_ = ipLen;
  l4HeaderLen_ = l4Len;
  segSize_ = len - ipLen - l4Len;
  if (proto == kProtoTcp) nextSeq_ = load32(l4 + 4) + uint32_t(segSize_);
}

bool Coalescer::join(uint8_t* pkt, size_t len) {
  size_t ipLen, l4Len;
  uint8_t proto;
  const uint8_t* l4 = mergeable(pkt, len, udp_, &ipLen, &l4Len, &proto);
  if (!l4 || proto != proto_ || ipLen != ipHeaderLen_ || l4Len != l4HeaderLen_) return false;
  size_t payload = len - ipLen - l4Len;
  const uint8_t* headL4 = head_ + ipLen;
  if (payload > segSize_ || headLen_ + payload > kMaxMerged || !sameIp(head_, pkt)) return false;
  bool tcp = proto == kProtoTcp;
  if (tcp ? load32(l4 + 4) != nextSeq_ || !sameTcp(headL4, l4, l4Len)
          : std::memcmp(headL4, l4, 4) != 0 || segments_ >= kMaxUdpSegments)
    return false;
  // The head is verified only once something joins it: alone it goes out unchanged
  // and the kernel checks it, merged its checksum field is overwritten.
  if (segments_ == 1 && !unchecked(head_, proto, headL4)) {
    uint32_t pseudo = pseudoSum(head_, proto, headLen_ - ipLen);
    bool ok = checksumFold(checksumPartial(headL4, headLen_ - ipLen, pseudo)) == 0xffff;
    // Counted by flush, once, whatever joins it.
    headPartial_ = !ok && load16(headL4 + checksumOffset(proto)) == checksumFold(pseudo);
    if (!ok && !headPartial_) {
      stats_.badChecksum++;
      head_ = nullptr;  // dropped; pkt starts a new run
      open_ = false;
      return false;
    }
  }
  uint8_t flags = tcp ? l4[13] : 0;
  bool verify = !unchecked(pkt, proto, l4);
  // Read the header before the copy: the moved payload may overwrite it.
  uint32_t pseudo = pseudoSum(pkt, proto, len - ipLen);
  uint16_t stored = load16(l4 + checksumOffset(proto));
  uint32_t sum = checksumPartial(l4, l4Len, pseudo);
  sum = checksumCopy(head_ + headLen_, l4 + l4Len, payload, sum);
  if (verify && checksumFold(sum) != 0xffff) {
    // The copied bytes lie past headLen_: a dropped segment leaves nothing to undo.
    if (stored != checksumFold(pseudo)) return stats_.badChecksum++, true;
    stats_.partial++;
  }
  headLen_ += payload;
  nextSeq_ += uint32_t(payload);
  segments_++;
  stats_.merged++;
  if (flags & kTcpPsh) head_[ipLen + 13] |= kTcpPsh;
  // A short segment or PSH is the end of a burst.
  if (flags & kTcpPsh || payload < segSize_) open_ = false;
  return true;
}

void Coalescer::flush() {
  if (!head_) return;
  VnetHdr h{};  // all zero: no offload, the kernel checks the packet as it is
  IpView v;
  size_t field;
  if (segments_ == 1 && parseIp(head_, headLen_, &v) && (field = partialChecksumField(head_, v))) {
    stats_.partial++;
    h = partialChecksumHeader(head_, v, field, mtu_);  // CHECKSUM_PARTIAL, as the sender left it
  } else if (segments_ > 1) {
    stats_.partial += headPartial_;
    uint8_t* ip = head_;
    bool v4 = ip[0] >> 4 == 4;
    size_t l4Len = headLen_ - ipHeaderLen_;
    if (v4) {
      store16(ip + 2, uint16_t(headLen_));
      ipv4HeaderChecksum(ip, ipHeaderLen_);
    } else {
      store16(ip + 4, uint16_t(l4Len));
    }
    // UDP: the length of the whole train, as udp_send_skb leaves a GSO send.
    if (proto_ == kProtoUdp) store16(ip + ipHeaderLen_ + 4, uint16_t(l4Len));
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented
    // (as tcp_v4_send_check); the kernel completes it from csumStart.
    store16(ip + ipHeaderLen_ + checksumOffset(proto_), checksumFold(pseudoSum(ip, proto_, l4Len)));
    h.flags = kVnetNeedsCsum;
    h.gsoType = proto_ == kProtoUdp ? kGsoUdpL4 : v4 ? kGsoTcpv4 : kGsoTcpv6;
    h.hdrLen = uint16_t(ipHeaderLen_ + l4HeaderLen_);
    h.gsoSize = uint16_t(segSize_);
    h.csumStart = uint16_t(ipHeaderLen_);
    h.csumOffset = uint16_t(checksumOffset(proto_));
  }
  writeHeader(head_ - sizeof(VnetHdr), h);
  emit_(ctx_, TunWrite{head_ - sizeof(VnetHdr), headLen_ + sizeof(VnetHdr)});
  head_ = nullptr;
  open_ = false;
}

}  // namespace flatnet
