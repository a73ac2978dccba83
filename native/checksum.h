// Internet checksum (RFC 1071) in the forms the packet path needs.
// Sums are carried unfolded in 32 (or 64) bits and folded once at the end.
#pragma once
#include <cstddef>
#include <cstdint>

namespace flatnet {

// Ones' complement sum of len bytes at p, added to sum. Bytes are taken as
// big-endian 16-bit words starting at p (an odd trailing byte is padded with zero).
// Unrolled; checked against checksumReference in tests.
uint32_t checksumPartial(const uint8_t* p, size_t len, uint32_t sum);

// The plain RFC 1071 loop, one 16-bit word at a time: the reference the fast one
// is tested and benchmarked against.
uint32_t checksumReference(const uint8_t* p, size_t len, uint32_t sum);

// Copies len bytes from src to dst and returns their ones' complement sum added
// to sum, in one pass. Safe when dst < src and the ranges overlap (forward copy),
// which is how the receive path compacts coalesced payloads in place.
uint32_t checksumCopy(uint8_t* dst, const uint8_t* src, size_t len, uint32_t sum);

// Folds a 32-bit sum to 16 bits (not complemented).
uint16_t checksumFold(uint32_t sum);

// The TCP/UDP pseudo-header sum for IPv4 (4-byte addresses) or IPv6 (16-byte).
uint32_t pseudoHeaderSum(uint8_t ipVersion, const uint8_t* src, const uint8_t* dst, uint8_t proto,
                         uint32_t transportLen);

// Recomputes the IPv4 header checksum in place (header of hlen bytes).
void ipv4HeaderChecksum(uint8_t* ip, size_t hlen);

}  // namespace flatnet
