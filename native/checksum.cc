// Internet checksum, RFC 1071. The fast paths sum little-endian 64-bit loads and
// byte-swap the folded result at the end: ones' complement addition commutes with
// swapping the bytes of every word (RFC 1071 section 2(B)), so the result equals
// the big-endian word sum of the reference loop.
#include "checksum.h"

#include <cstring>

// x86-64: the two bulk loops are also built for AVX2, the build picked when the
// addon loads (an ifunc): the same C++ vectorizes 32 bytes wide. No AVX-512 build
// (x86-64-v4): it was slower than AVX2 (docs/performance.md).
#if defined(__x86_64__)
#define FLATNET_WIDE __attribute__((target_clones("avx2", "default")))
#else
#define FLATNET_WIDE
#endif

namespace flatnet {
namespace {

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // memcpy: no alignment assumption, compiles to one mov
  return v;
}

// Folds a 64-bit little-endian partial sum to 16 bits, end-around carry kept, so a
// non-zero sum never folds to zero (same as the reference), then back to network order.
inline uint32_t foldSwapped(uint64_t s) {
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  uint32_t t = uint32_t(s);
  t = (t & 0xffff) + (t >> 16);
  t = (t & 0xffff) + (t >> 16);
  return __builtin_bswap16(uint16_t(t));
}

// Adds a 16-bit network-order partial sum to a caller's 32-bit one with end-around carry.
inline uint32_t addCarry(uint32_t sum, uint32_t v) {
  uint64_t s = uint64_t(sum) + v;
  return uint32_t((s & 0xffffffff) + (s >> 32));
}

// Each 64-bit word is split into 32-bit halves added to 64-bit accumulators: no
// carry to track for 2^32 words, and the compiler vectorizes the loop (paddq).
inline uint64_t sumWord(uint64_t v) { return (v & 0xffffffff) + (v >> 32); }

// The tail (< 8 bytes), zero-padded: a little-endian load keeps every byte at its
// offset's parity, so an odd last byte lands as the high byte of a padded word.
// Loaded 4/2/1 bytes at a time: a byte-wise memcpy into a stack word would stall
// store forwarding on the 64-bit reload.
inline uint64_t tailWord(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  unsigned shift = 0;
  if (n & 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    v = w;
    p += 4;
    shift = 32;
  }
  if (n & 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    v |= uint64_t(w) << shift;
    p += 2;
    shift += 16;
  }
  if (n & 1) v |= uint64_t(*p) << shift;
  return v;
}

// Stores the low n (< 8) bytes of v at p, the inverse of tailWord.
inline void storeTail(uint8_t* p, uint64_t v, size_t n) {
  if (n & 4) {
    uint32_t w = uint32_t(v);
    std::memcpy(p, &w, 4);
    p += 4;
    v >>= 32;
  }
  if (n & 2) {
    uint16_t w = uint16_t(v);
    std::memcpy(p, &w, 2);
    p += 2;
    v >>= 16;
  }
  if (n & 1) *p = uint8_t(v);
}

}  // namespace

FLATNET_WIDE uint32_t checksumPartial(const uint8_t* p, size_t len, uint32_t sum) {
  uint64_t a = 0, b = 0, c = 0, d = 0;  // four chains keep the adders busy
  for (; len >= 32; p += 32, len -= 32) {
    a += sumWord(load64(p));
    b += sumWord(load64(p + 8));
    c += sumWord(load64(p + 16));
    d += sumWord(load64(p + 24));
  }
  for (; len >= 8; p += 8, len -= 8) a += sumWord(load64(p));
  a += sumWord(tailWord(p, len));
  // Each accumulator is < 2^35 per 2^32 bytes: no overflow for any buffer that fits.
  return addCarry(sum, foldSwapped(sumWord(a) + sumWord(b) + sumWord(c) + sumWord(d)));
}

uint32_t checksumReference(const uint8_t* p, size_t len, uint32_t sum) {
  uint64_t s = sum;
  for (; len >= 2; p += 2, len -= 2) s += uint32_t(p[0] << 8 | p[1]);
  if (len) s += uint32_t(p[0] << 8);
  while (s >> 32) s = (s & 0xffffffff) + (s >> 32);
  return uint32_t(s);
}

FLATNET_WIDE uint32_t checksumCopy(uint8_t* dst, const uint8_t* src, size_t len, uint32_t sum) {
  // Every word is loaded before it is stored and the walk goes upwards, so with
  // dst < src a store only ever lands on source bytes already read.
  uint64_t a = 0, b = 0;
  for (; len >= 16; src += 16, dst += 16, len -= 16) {
    uint64_t v0 = load64(src), v1 = load64(src + 8);
    std::memcpy(dst, &v0, 8);
    std::memcpy(dst + 8, &v1, 8);
    a += sumWord(v0);
    b += sumWord(v1);
  }
  for (; len >= 8; src += 8, dst += 8, len -= 8) {
    uint64_t v = load64(src);
    std::memcpy(dst, &v, 8);
    a += sumWord(v);
  }
  uint64_t v = tailWord(src, len);
  storeTail(dst, v, len);
  a += sumWord(v);
  return addCarry(sum, foldSwapped(sumWord(a) + sumWord(b)));
}

uint16_t checksumFold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

uint32_t pseudoHeaderSum(uint8_t ipVersion, const uint8_t* src, const uint8_t* dst, uint8_t proto,
                         uint32_t transportLen) {
  // RFC 793 section 3.1 (IPv4), RFC 8200 section 8.1 (IPv6: 32-bit length).
  size_t n = ipVersion == 6 ? 16 : 4;
  uint32_t s = proto + (transportLen >> 16) + (transportLen & 0xffff);
  for (size_t i = 0; i < n; i += 2)
    s += uint32_t(src[i] << 8 | src[i + 1]) + uint32_t(dst[i] << 8 | dst[i + 1]);
  return s;  // at most 16 words + 3: no 32-bit overflow
}

void ipv4HeaderChecksum(uint8_t* ip, size_t hlen) {
  ip[10] = ip[11] = 0;
  uint16_t c = uint16_t(~checksumFold(checksumPartial(ip, hlen, 0)));
  ip[10] = uint8_t(c >> 8);
  ip[11] = uint8_t(c);
}

}  // namespace flatnet
