// Software segmentation of TUN super-packets, what the kernel's tcp_gso_segment and
// __udp_gso_segment (net/ipv4/tcp_offload.c, udp_offload.c) would do. The packet comes
// from the TUN, so every length is checked against len before it is used.
#include "gso.h"

#include <algorithm>
#include <cstring>

#include "checksum.h"
#include "packet.h"

namespace flatnet {
namespace {

// The headers in front of the payload, as found in the packet itself: hdr.hdrLen is
// only a hint (virtio 1.1 section 5.1.6.2.1) and is not trusted.
struct Headers {
  uint8_t version;
  size_t ipLen;
  size_t l4Len;
};

GsoResult parseHeaders(uint8_t type, const uint8_t* pkt, size_t len, Headers* h) {
  if (len < kIpv4HeaderLen) return GsoResult::malformed;
  h->version = pkt[0] >> 4;
  uint8_t proto;
  if (h->version == 4) {
    if (type == kGsoTcpv6) return GsoResult::malformed;
    h->ipLen = size_t(pkt[0] & 0x0f) * 4;
    if (h->ipLen < kIpv4HeaderLen || h->ipLen > len) return GsoResult::malformed;
    // Total length 0 is how BIG TCP marks a super-packet over 64 KB; else it must be len.
    size_t total = load16(pkt + 2);
    if (total != 0 && total != len) return GsoResult::malformed;
    if (load16(pkt + 6) & 0x3fff) return GsoResult::malformed;  // a fragment has no L4 header
    proto = pkt[9];
  } else if (h->version == 6) {
    if (type == kGsoTcpv4 || len < kIpv6HeaderLen) return GsoResult::malformed;
    h->ipLen = kIpv6HeaderLen;
    size_t payload = load16(pkt + 4);
    if (payload != 0 && payload + kIpv6HeaderLen != len) return GsoResult::malformed;
    proto = pkt[6];
    // Extension headers are not walked: such a packet is valid, just not ours to split.
    if (proto != kProtoTcp && proto != kProtoUdp) return GsoResult::unsupported;
  } else {
    return GsoResult::malformed;
  }
  if (type == kGsoUdpL4) {
    if (proto != kProtoUdp || h->ipLen + kUdpHeaderLen > len) return GsoResult::malformed;
    h->l4Len = kUdpHeaderLen;
    return GsoResult::ok;
  }
  if (proto != kProtoTcp || h->ipLen + kTcpHeaderLen > len) return GsoResult::malformed;
  h->l4Len = size_t(pkt[h->ipLen + 12] >> 4) * 4;  // TCP data offset
  if (h->l4Len < kTcpHeaderLen || h->ipLen + h->l4Len > len) return GsoResult::malformed;
  return GsoResult::ok;
}

GsoResult copyWhole(const VnetHdr& hdr, const uint8_t* pkt, size_t len, uint8_t* out, size_t outCap,
                    size_t headroom, uint16_t* sizes, size_t maxSegments, size_t* count) {
  if (len == 0 || len > 0xffff) return GsoResult::malformed;  // not an IP packet
  if (maxSegments < 1) return GsoResult::tooManySegments;
  if (headroom + len > outCap) return GsoResult::noRoom;
  std::memcpy(out + headroom, pkt, len);
  if ((hdr.flags & kVnetNeedsCsum) && !completeChecksum(hdr, out + headroom, len))
    return GsoResult::malformed;
  sizes[0] = uint16_t(len);
  *count = 1;
  return GsoResult::ok;
}

}  // namespace

GsoResult gsoSplit(const VnetHdr& hdr, const uint8_t* pkt, size_t len, uint8_t* out, size_t outCap,
                   size_t headroom, uint16_t* sizes, size_t maxSegments, size_t* count) {
  *count = 0;
  uint8_t type = hdr.gsoType & ~kGsoEcn;  // ECN only says CWR may be set: handled below
  if (type == kGsoNone)
    return copyWhole(hdr, pkt, len, out, outCap, headroom, sizes, maxSegments, count);
  if (type != kGsoTcpv4 && type != kGsoTcpv6 && type != kGsoUdpL4) return GsoResult::unsupported;
  if (hdr.gsoSize == 0) return GsoResult::malformed;
  Headers h;
  if (GsoResult r = parseHeaders(type, pkt, len, &h); r != GsoResult::ok) return r;

  bool tcp = type != kGsoUdpL4;
  size_t hdrs = h.ipLen + h.l4Len, payload = len - hdrs, seg = hdr.gsoSize;
  if (hdrs + std::min(seg, payload) > 0xffff) return GsoResult::malformed;
  size_t n = payload == 0 ? 1 : (payload + seg - 1) / seg;
  if (n > maxSegments) return GsoResult::tooManySegments;
  if (n * (headroom + hdrs) + payload > outCap) return GsoResult::noRoom;

  const uint8_t* l4In = pkt + h.ipLen;
  uint16_t id0 = h.version == 4 ? load16(pkt + 4) : 0;
  uint32_t seq0 = tcp ? load32(l4In + 4) : 0;
  uint8_t flags0 = tcp ? l4In[13] : 0;
  size_t csumField = checksumOffset(tcp ? kProtoTcp : kProtoUdp);
  // The address part of the pseudo-header is the same for every segment.
  const uint8_t* srcAddr = pkt + (h.version == 4 ? 12 : 8);
  const uint8_t* dstAddr = srcAddr + (h.version == 4 ? 4 : 16);
  uint32_t addrSum = pseudoHeaderSum(h.version, srcAddr, dstAddr, tcp ? kProtoTcp : kProtoUdp, 0);

  const uint8_t* data = pkt + hdrs;
  size_t left = payload;
  for (size_t i = 0; i < n; i++) {
    size_t pl = std::min(seg, left);
    size_t l4Total = h.l4Len + pl;
    uint8_t* ip = out + headroom;
    uint8_t* l4 = ip + h.ipLen;
    std::memcpy(ip, pkt, hdrs);
    if (h.version == 4) {
      store16(ip + 2, uint16_t(h.ipLen + l4Total));
      store16(ip + 4, uint16_t(id0 + i));  // as inet_gso_segment numbers them
      ipv4HeaderChecksum(ip, h.ipLen);
    } else {
      store16(ip + 4, uint16_t(l4Total));
    }
    if (tcp) {
      store32(l4 + 4, seq0 + uint32_t(i * seg));
      uint8_t flags = flags0;
      if (i + 1 < n) flags &= uint8_t(~(kTcpFin | kTcpPsh));
      if (i > 0) flags &= uint8_t(~kTcpCwr);
      l4[13] = flags;
    } else {
      store16(l4 + 4, uint16_t(l4Total));
    }
    store16(l4 + csumField, 0);
    uint32_t sum = checksumCopy(l4 + h.l4Len, data, pl, addrSum + uint32_t(l4Total));
    uint16_t c = uint16_t(~checksumFold(checksumPartial(l4, h.l4Len, sum)));
    if (!tcp && c == 0) c = 0xffff;  // UDP: 0 means "no checksum" (RFC 768)
    store16(l4 + csumField, c);
    sizes[i] = uint16_t(hdrs + pl);
    data += pl;
    left -= pl;
    out += headroom + hdrs + pl;
  }
  *count = n;
  return GsoResult::ok;
}

bool completeChecksum(const VnetHdr& hdr, uint8_t* pkt, size_t len) {
  size_t start = hdr.csumStart, field = start + hdr.csumOffset;
  if (start > len || field + 2 > len) return false;
  uint16_t c = uint16_t(~checksumFold(checksumPartial(pkt + start, len - start, 0)));
  // As skb_checksum_help (net/core/dev.c): never store 0, which UDP reads as "none".
  store16(pkt + field, c ? c : 0xffff);
  return true;
}

}  // namespace flatnet
