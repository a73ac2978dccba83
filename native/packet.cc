// IP header validation and the flow hash that picks a send socket (outer source port).
#include "packet.h"

namespace flatnet {

bool parseIp(const uint8_t* p, size_t len, IpView* v) {
  if (len < 1) return false;
  switch (p[0] >> 4) {
    case 4: {  // RFC 791 section 3.1
      size_t hlen = size_t(p[0] & 0x0f) * 4;
      if (len < kIpv4HeaderLen || hlen < kIpv4HeaderLen || hlen > len) return false;
      size_t total = load16(p + 2);
      if (total < hlen || total > len) return false;
      v->version = 4;
      v->headerLen = hlen;
      v->totalLen = total;
      v->proto = p[9];
      v->src = p + 12;
      v->dst = p + 16;
      v->fragment = (load16(p + 6) & 0x3fff) != 0;  // MF flag or a fragment offset
      return true;
    }
    case 6: {  // RFC 8200 section 3
      if (len < kIpv6HeaderLen) return false;
      size_t total = kIpv6HeaderLen + load16(p + 4);
      if (total > len) return false;
      v->version = 6;
      v->headerLen = kIpv6HeaderLen;
      v->totalLen = total;
      v->proto = p[6];
      v->src = p + 8;
      v->dst = p + 24;
      v->fragment = false;
      return true;
    }
    default:
      return false;
  }
}

namespace {

// MurmurHash3's 32-bit block mix and finalizer: a few multiplies per word, and
// every input bit reaches every output bit, so flows spread evenly over sockets.
inline uint32_t mix(uint32_t h, uint32_t k) {
  k *= 0xcc9e2d51;
  k = (k << 15) | (k >> 17);
  k *= 0x1b873593;
  h ^= k;
  h = (h << 13) | (h >> 19);
  return h * 5 + 0xe6546b64;
}

inline uint32_t finish(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  return h ^ (h >> 16);
}

inline uint32_t word(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

}  // namespace

bool isPureTcpAck(const uint8_t* ip, const IpView& v) {
  if (v.proto != kProtoTcp || v.fragment || v.headerLen + kTcpHeaderLen > v.totalLen) return false;
  const uint8_t* tcp = ip + v.headerLen;
  uint8_t flags = tcp[13];
  return v.totalLen == v.headerLen + size_t(tcp[12] >> 4) * 4 && (flags & kTcpAck) &&
         !(flags & (kTcpSyn | kTcpFin | kTcpRst));
}

uint32_t flowHash(const uint8_t* ip, const IpView& v) {
  size_t addrLen = v.version == 6 ? 16 : 4;  // the IPv6 flow label is not hashed
  uint32_t h = v.proto;
  for (size_t i = 0; i < addrLen; i += 4) h = mix(mix(h, word(v.src + i)), word(v.dst + i));
  // Ports only where they are present: a non-first fragment starts with payload.
  if ((v.proto == kProtoTcp || v.proto == kProtoUdp) && !v.fragment &&
      v.headerLen + 4 <= v.totalLen)
    h = mix(h, word(ip + v.headerLen));
  return finish(h ^ uint32_t(addrLen));
}

}  // namespace flatnet
