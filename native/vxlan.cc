#include "vxlan.h"

#include <cstring>

#include "packet.h"

namespace flatnet {

void writeEncapPrefix(uint8_t* p, uint32_t vni, const uint8_t dstMac[6], const uint8_t srcMac[6],
                      uint16_t ethType) {
  store32(p, 0x08000000);  // flags: I bit; the other 24 bits are reserved (zero)
  store32(p + 4, vni << 8);
  std::memcpy(p + 8, dstMac, 6);
  std::memcpy(p + 14, srcMac, 6);
  store16(p + 20, ethType);
}

bool decapsulate(const uint8_t* p, size_t len, const Vtep& local, size_t* inner, Drop* why) {
  // The smallest thing worth parsing: the prefix plus one IPv4 header.
  if (len < kEncapPrefixLen + kIpv4HeaderLen) return *why = kDropTooShort, false;
  // RFC 7348: the I flag must be set; other flag bits are reserved and ignored on receipt.
  if (!(p[0] & 0x08)) return *why = kDropBadFlags, false;
  if ((load32(p + 4) >> 8) != local.vni) return *why = kDropWrongVni, false;
  const uint8_t* dst = p + kVxlanHeaderLen;
  // Group bit set = broadcast/multicast: accepted like the kernel's vxlan device
  // would; unicast must be addressed to this VTEP.
  if (!(dst[0] & 1) && std::memcmp(dst, local.mac, 6) != 0) return *why = kDropWrongDstMac, false;
  uint16_t type = load16(p + kVxlanHeaderLen + 12);
  if (type != kEthTypeIpv4 && type != kEthTypeIpv6) return *why = kDropNotIp, false;
  *inner = kEncapPrefixLen;
  return true;
}

}  // namespace flatnet
