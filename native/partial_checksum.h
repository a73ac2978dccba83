// Inner checksums a sender left for an offload to finish. The kernel marks such a
// packet CHECKSUM_PARTIAL and puts the folded pseudo-header sum in the TCP or UDP
// checksum field (tcp_v4_send_check, udp4_hwcsum); a NIC completes it on the wire, but
// over a veth, or between VMs on virtio-net, the packet arrives as it was left. A
// kernel vxlan peer on such an underlay encapsulates it so (vxlan's device takes
// NETIF_F_HW_CSUM), and a TUN write of it with a plain header is dropped by the kernel.
#pragma once
#include <cstddef>
#include <cstdint>

#include "packet.h"
#include "vnet_hdr.h"

namespace flatnet {

// The offset of ip's TCP or UDP checksum field from the start of its transport
// header when that field holds the partial form, else 0 (also for fragments, IPv6
// extension headers, and IPv4 UDP without a checksum). A complete checksum that
// happens to equal the form is finished to the same value, so this cannot damage one.
size_t partialChecksumField(const uint8_t* ip, const IpView& v);

// The vnet header that hands such a packet to the kernel to finish (NEEDS_CSUM at the
// field). Over a veth the sender's TCP super-packets also arrive whole, the kernel
// passing its GSO skb through to our socket (no UDP_GRO size is reported for it): a
// TCP packet longer than mtu gets GSO TCPV4/TCPV6 with the largest segment that fits,
// which is how the kernel would have cut it.
VnetHdr partialChecksumHeader(const uint8_t* ip, const IpView& v, size_t field, size_t mtu);

// Completes the checksum in place, as skb_checksum_help (net/core/dev.c) would: the
// sum of the transport header and payload, the field's pseudo-header sum included.
void finishChecksum(uint8_t* ip, const IpView& v, size_t field);

}  // namespace flatnet
