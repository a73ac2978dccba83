#include "partial_checksum.h"

#include "checksum.h"

namespace flatnet {

size_t partialChecksumField(const uint8_t* ip, const IpView& v) {
  if (v.fragment || (v.proto != kProtoTcp && v.proto != kProtoUdp)) return 0;
  size_t l4Len = v.totalLen - v.headerLen;
  if (l4Len < (v.proto == kProtoTcp ? kTcpHeaderLen : kUdpHeaderLen)) return 0;
  size_t field = checksumOffset(v.proto);
  uint16_t stored = load16(ip + v.headerLen + field);
  if (v.proto == kProtoUdp && v.version == 4 && stored == 0) return 0;  // RFC 768: no checksum
  uint32_t pseudo = pseudoHeaderSum(v.version, v.src, v.dst, v.proto, uint32_t(l4Len));
  return stored == checksumFold(pseudo) ? field : 0;
}

VnetHdr partialChecksumHeader(const uint8_t* ip, const IpView& v, size_t field, size_t mtu) {
  VnetHdr h{};
  h.flags = kVnetNeedsCsum;
  h.csumStart = uint16_t(v.headerLen);
  h.csumOffset = uint16_t(field);
  if (v.proto != kProtoTcp || v.totalLen <= mtu) return h;
  // partialChecksumField saw a whole TCP header: its data offset byte is in the packet.
  size_t tcpLen = size_t(ip[v.headerLen + 12] >> 4) * 4;
  if (tcpLen >= kTcpHeaderLen && mtu > v.headerLen + tcpLen && v.headerLen + tcpLen <= v.totalLen) {
    h.gsoType = v.version == 4 ? kGsoTcpv4 : kGsoTcpv6;
    h.hdrLen = uint16_t(v.headerLen + tcpLen);
    h.gsoSize = uint16_t(mtu - v.headerLen - tcpLen);
  }
  return h;
}

void finishChecksum(uint8_t* ip, const IpView& v, size_t field) {
  uint8_t* l4 = ip + v.headerLen;
  uint16_t c = uint16_t(~checksumFold(checksumPartial(l4, v.totalLen - v.headerLen, 0)));
  if (c == 0 && v.proto == kProtoUdp) c = 0xffff;  // RFC 768: 0 would mean "none"
  store16(l4 + field, c);
}

}  // namespace flatnet
