// Packet layouts and byte-order helpers shared by every stage of the packet path.
// Parsing works on raw byte pointers (no struct casts): buffers from the TUN or a
// socket carry no alignment guarantee.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace flatnet {

inline uint16_t load16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t load32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

constexpr size_t kEthHeaderLen = 14;
constexpr size_t kVxlanHeaderLen = 8;
constexpr size_t kIpv4HeaderLen = 20;  // without options
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kUdpHeaderLen = 8;
constexpr size_t kTcpHeaderLen = 20;  // without options
// What flatnet prepends to an inner IP packet inside the outer UDP payload.
constexpr size_t kEncapPrefixLen = kVxlanHeaderLen + kEthHeaderLen;

constexpr uint16_t kEthTypeIpv4 = 0x0800;
constexpr uint16_t kEthTypeIpv6 = 0x86dd;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
// Where the checksum field is in a TCP or UDP header.
constexpr size_t checksumOffset(uint8_t proto) { return proto == kProtoTcp ? 16 : 6; }

// TCP flag bits (byte 13 of the TCP header).
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10,
                  kTcpUrg = 0x20, kTcpEce = 0x40, kTcpCwr = 0x80;

// An IP address of either family, as stored in tables: IPv4 in the first 4 bytes.
struct IpAddr {
  uint8_t family = 0;  // 4 or 6; 0 = unset
  uint8_t bytes[16] = {};
  bool operator==(const IpAddr& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, family == 4 ? 4 : 16) == 0;
  }
};

// The parts of an inner IP packet the fast path needs, found by parseIp().
struct IpView {
  uint8_t version = 0;           // 4 or 6
  size_t headerLen = 0;          // IPv4 IHL*4, or 40 for IPv6 (extension headers are not walked)
  size_t totalLen = 0;           // from the header; never more than the buffer
  uint8_t proto = 0;             // IPv4 protocol / IPv6 next header
  const uint8_t* src = nullptr;  // 4 or 16 bytes
  const uint8_t* dst = nullptr;
  bool fragment = false;  // IPv4 MF set or offset != 0
};

// Validates the IP header at p (len bytes available) and fills v.
// Returns false for anything malformed: short, bad version, IHL < 5, total length
// larger than the buffer or smaller than the header.
bool parseIp(const uint8_t* p, size_t len, IpView* v);

// Whether the packet (ip, parsed as v) is a pure TCP ACK: no payload, ACK set, no
// SYN, FIN or RST. A stream of them is what the receiving end of a bulk transfer sends.
bool isPureTcpAck(const uint8_t* ip, const IpView& v);

// A 32-bit hash of the inner flow (ip, parsed as v: addresses, protocol and, for
// unfragmented TCP/UDP, ports). Same flow, same value, in both encapsulation paths.
uint32_t flowHash(const uint8_t* ip, const IpView& v);

}  // namespace flatnet
