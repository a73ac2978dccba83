// Helpers shared by the libFuzzer targets: table entries and a check that every
// TUN write the coalescer makes lies inside the buffer it was given and carries
// a consistent IP packet. A broken invariant aborts, which libFuzzer reports.
#pragma once
#include <cstdlib>
#include <cstring>
#include <vector>

#include "checksum.h"
#include "fib.h"
#include "gro.h"
#include "gso.h"
#include "packet.h"
#include "vnet_hdr.h"

namespace flatnet {

inline IpAddr addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddr x;
  x.family = 4;
  x.bytes[0] = a, x.bytes[1] = b, x.bytes[2] = c, x.bytes[3] = d;
  return x;
}

// 2001:db8::<last> or fdXX:XXXX:: style: the first four bytes given, the last byte last.
inline IpAddr addr6(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t last) {
  IpAddr x;
  x.family = 6;
  x.bytes[0] = a, x.bytes[1] = b, x.bytes[2] = c, x.bytes[3] = d, x.bytes[15] = last;
  return x;
}

inline Prefix prefix4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t len) {
  Prefix p{addr4(a, b, c, d), len};
  maskAddress(4, p.addr.bytes, len);
  return p;
}

inline Prefix prefix6(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t len) {
  Prefix p{addr6(a, b, c, d, 0), len};
  maskAddress(6, p.addr.bytes, len);
  return p;
}

// Whether the TCP/UDP checksum of the packet ip describes verifies (sum over the
// pseudo-header and the segment folds to 0xffff).
inline bool transportChecksumOk(const uint8_t* pkt, const IpView& ip) {
  size_t l4 = ip.totalLen - ip.headerLen;
  uint32_t pseudo = pseudoHeaderSum(ip.version, ip.src, ip.dst, ip.proto, uint32_t(l4));
  return checksumFold(checksumPartial(pkt + ip.headerLen, l4, pseudo)) == 0xffff;
}

template <class Sink>
void checkTunWrite(const Sink& s, const TunWrite& w) {
  if (w.data < s.begin || w.len < sizeof(VnetHdr) || w.data + w.len > s.end) abort();
  VnetHdr h;
  std::memcpy(&h, w.data, sizeof h);
  const uint8_t* pkt = w.data + sizeof h;
  size_t len = w.len - sizeof h;
  // Touch every byte (ASan) and keep the sum live.
  volatile uint16_t sum = checksumFold(checksumPartial(pkt, len, 0));
  (void)sum;
  if (h.gsoType == kGsoNone) return;
  // A merged packet: its IP header must describe exactly what is written, and the
  // checksum offsets must fall inside it.
  IpView ip;
  if (!parseIp(pkt, len, &ip) || ip.totalLen != len) abort();
  if (h.csumStart != ip.headerLen || h.csumStart + h.csumOffset + 2 > len) abort();
  if (h.gsoSize == 0 || h.hdrLen > len) abort();
  // A UDP train's length field covers the whole train, as the kernel's GSO expects.
  if (h.gsoType == kGsoUdpL4 && load16(pkt + ip.headerLen + 4) != len - ip.headerLen) abort();
  // Every merged segment's checksum was verified, so the completed whole must verify:
  // finish it as the kernel would (from csumStart) and check with the pseudo-header.
  std::vector<uint8_t> copy(pkt, pkt + len);
  if (!completeChecksum(h, copy.data(), len)) abort();
  if (!transportChecksumOk(copy.data(), ip)) abort();
  if (ip.version == 4 && checksumFold(checksumPartial(copy.data(), ip.headerLen, 0)) != 0xffff)
    abort();
}

}  // namespace flatnet
