// Segmentation of the super-packets a TUN with TUNSETOFFLOAD hands us (TSO/USO),
// and completion of checksums it left to us (NEEDS_CSUM). Pure functions over
// buffers: no syscalls, tested without root.
#pragma once
#include <cstddef>
#include <cstdint>

#include "vnet_hdr.h"

namespace flatnet {

enum class GsoResult {
  ok,
  malformed,    // headers do not parse, or the vnet header contradicts the packet
  unsupported,  // a gso type flatnet does not segment (e.g. legacy UFO)
  tooManySegments,
  noRoom,  // output buffer too small
};

// Splits the packet (pkt, len: an IP packet without the vnet header) described by
// hdr into segments laid out back to back in out: each segment i occupies
// headroom + sizes[i] bytes, its IP packet starting headroom bytes in. headroom is
// left untouched for the caller's encapsulation headers. Every segment gets a
// complete, valid IP header checksum (IPv4) and transport checksum; TCP segments get
// consecutive sequence numbers, IPv4 IDs counting up from the original's, FIN/PSH only
// on the last and CWR only on the first. All segments but the last have the same
// size, so the result can go out as one UDP GSO send.
//
// A packet with gsoType none is copied as one segment, its checksum completed when
// hdr.flags has NEEDS_CSUM. *count receives the number of segments (<= maxSegments).
GsoResult gsoSplit(const VnetHdr& hdr, const uint8_t* pkt, size_t len, uint8_t* out, size_t outCap,
                   size_t headroom, uint16_t* sizes, size_t maxSegments, size_t* count);

// Completes a NEEDS_CSUM checksum in place: sums from csumStart to the end (the
// field already holds the pseudo-header sum) and stores the complement at
// csumStart + csumOffset. Returns false if the offsets fall outside the packet.
bool completeChecksum(const VnetHdr& hdr, uint8_t* pkt, size_t len);

}  // namespace flatnet
