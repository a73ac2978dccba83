// VXLAN framing, RFC 7348 section 5: an 8-byte header (flags 0x08 = I bit, VNI in
// bytes 4..6) and an inner Ethernet frame, carried in UDP. Pure functions.
#pragma once
#include <cstddef>
#include <cstdint>

#include "counters.h"

namespace flatnet {

struct Vtep {
  uint32_t vni;
  uint8_t mac[6];
};

// Writes the 22-byte VXLAN + Ethernet prefix that precedes an inner IP packet.
void writeEncapPrefix(uint8_t* prefix, uint32_t vni, const uint8_t dstMac[6],
                      const uint8_t srcMac[6], uint16_t ethType);

// Validates a received VXLAN payload (p, len) for the local VTEP. On success
// returns true and sets *inner to the offset of the inner IP packet; otherwise
// sets *why to the drop reason.
bool decapsulate(const uint8_t* p, size_t len, const Vtep& local, size_t* inner, Drop* why);

}  // namespace flatnet
