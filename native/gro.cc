// TCP receive coalescing, the rules of Linux tcp_gro_receive (net/ipv4/tcp_offload.c)
// and wireguard-go's tun/offload_linux.go, for one pending flow at a time: segments
// of a bulk transfer arrive back to back in a batch, and any other packet ends the run
// (so the order of packets is kept).
#include "gro.h"

#include <cstring>

#include "checksum.h"
#include "packet.h"

namespace flatnet {
namespace {

constexpr size_t kMaxMerged = 0xffff;  // the IP length fields are 16-bit

// The TCP segment of a packet that coalescing may start or join, or null.
// Only plain headers: IPv4 without options or fragmentation, IPv6 without extension
// headers, flags exactly ACK or ACK|PSH, some payload.
const uint8_t* mergeableTcp(const uint8_t* pkt, size_t len, size_t* ipLen, size_t* tcpLen) {
  if (len < kIpv4HeaderLen + kTcpHeaderLen) return nullptr;
  uint8_t version = pkt[0] >> 4;
  if (version == 4) {
    if (pkt[0] != 0x45 || pkt[9] != kProtoTcp || (load16(pkt + 6) & 0x3fff)) return nullptr;
    *ipLen = kIpv4HeaderLen;
  } else if (version == 6) {
    if (pkt[6] != kProtoTcp) return nullptr;
    *ipLen = kIpv6HeaderLen;
  } else {
    return nullptr;
  }
  if (len < *ipLen + kTcpHeaderLen) return nullptr;
  const uint8_t* tcp = pkt + *ipLen;
  *tcpLen = size_t(tcp[12] >> 4) * 4;
  uint8_t flags = tcp[13];
  if (*tcpLen < kTcpHeaderLen || *ipLen + *tcpLen >= len) return nullptr;  // >=: no payload
  if (flags != kTcpAck && flags != (kTcpAck | kTcpPsh)) return nullptr;
  return tcp;
}

// The pseudo-header sum of a TCP segment of tcpLen bytes in packet ip.
uint32_t pseudoSum(const uint8_t* ip, size_t tcpLen) {
  bool v4 = ip[0] >> 4 == 4;
  return pseudoHeaderSum(v4 ? 4 : 6, ip + (v4 ? 12 : 8), ip + (v4 ? 16 : 24), kProtoTcp,
                         uint32_t(tcpLen));
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
  size_t ipLen, tcpLen;
  const uint8_t* tcp = mergeableTcp(pkt, len, &ipLen, &tcpLen);
  head_ = pkt;
  headLen_ = len;
  segments_ = 1;
  if (!tcp || tcp[13] & kTcpPsh) {  // PSH ends a run: nothing can follow it
    flush();
    return;
  }
  open_ = true;
  ipHeaderLen_ = ipLen;
  tcpHeaderLen_ = tcpLen;
  segSize_ = len - ipLen - tcpLen;
  nextSeq_ = load32(tcp + 4) + uint32_t(segSize_);
}

bool Coalescer::join(uint8_t* pkt, size_t len) {
  size_t ipLen, tcpLen;
  const uint8_t* tcp = mergeableTcp(pkt, len, &ipLen, &tcpLen);
  if (!tcp || ipLen != ipHeaderLen_ || tcpLen != tcpHeaderLen_) return false;
  size_t payload = len - ipLen - tcpLen;
  const uint8_t* headTcp = head_ + ipLen;
  if (payload > segSize_ || headLen_ + payload > kMaxMerged || load32(tcp + 4) != nextSeq_ ||
      !sameIp(head_, pkt) || !sameTcp(headTcp, tcp, tcpLen))
    return false;
  // The head is verified only once something joins it: alone it goes out unchanged
  // and the kernel checks it, merged its checksum field is overwritten.
  if (segments_ == 1 &&
      checksumFold(checksumPartial(headTcp, headLen_ - ipLen, pseudoSum(head_, headLen_ - ipLen))) !=
          0xffff) {
    stats_.badChecksum++;
    head_ = nullptr;  // dropped; pkt starts a new run
    open_ = false;
    return false;
  }
  uint8_t flags = tcp[13];
  // Sum the header before the copy: the moved payload may overwrite it.
  uint32_t sum = checksumPartial(tcp, tcpLen, pseudoSum(pkt, len - ipLen));
  sum = checksumCopy(head_ + headLen_, tcp + tcpLen, payload, sum);
  if (checksumFold(sum) != 0xffff) {
    stats_.badChecksum++;  // the copied bytes lie past headLen_: nothing to undo
    return true;
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
  if (segments_ > 1) {
    uint8_t* ip = head_;
    size_t tcpLen = headLen_ - ipHeaderLen_;
    if (ip[0] >> 4 == 4) {
      store16(ip + 2, uint16_t(headLen_));
      ipv4HeaderChecksum(ip, ipHeaderLen_);
    } else {
      store16(ip + 4, uint16_t(tcpLen));
    }
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented
    // (as tcp_v4_send_check); the kernel completes it from csumStart.
    store16(ip + ipHeaderLen_ + 16, checksumFold(pseudoSum(ip, tcpLen)));
    h.flags = kVnetNeedsCsum;
    h.gsoType = ip[0] >> 4 == 4 ? kGsoTcpv4 : kGsoTcpv6;
    h.hdrLen = uint16_t(ipHeaderLen_ + tcpHeaderLen_);
    h.gsoSize = uint16_t(segSize_);
    h.csumStart = uint16_t(ipHeaderLen_);
    h.csumOffset = 16;
  }
  writeHeader(head_ - sizeof(VnetHdr), h);
  emit_(ctx_, TunWrite{head_ - sizeof(VnetHdr), headLen_ + sizeof(VnetHdr)});
  head_ = nullptr;
  open_ = false;
}

}  // namespace flatnet
