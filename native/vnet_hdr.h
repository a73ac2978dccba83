// The virtio-net header that precedes every packet on a TUN opened with IFF_VNET_HDR.
// Layout from include/uapi/linux/virtio_net.h (struct virtio_net_hdr, 10 bytes).
// TUN uses the host's byte order for the 16-bit fields unless TUNSETVNETBE is set;
// flatnet runs on little-endian hosts only (checked at build time below).
#pragma once
#include <cstdint>

namespace flatnet {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vnet header fields are host-endian");

struct VnetHdr {
  uint8_t flags;
  uint8_t gsoType;
  uint16_t hdrLen;
  uint16_t gsoSize;
  uint16_t csumStart;
  uint16_t csumOffset;
} __attribute__((packed));
static_assert(sizeof(VnetHdr) == 10, "struct virtio_net_hdr is 10 bytes");

constexpr uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kVnetDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
constexpr uint8_t kGsoNone = 0;        // VIRTIO_NET_HDR_GSO_NONE
constexpr uint8_t kGsoTcpv4 = 1;       // VIRTIO_NET_HDR_GSO_TCPV4
constexpr uint8_t kGsoTcpv6 = 4;       // VIRTIO_NET_HDR_GSO_TCPV6
constexpr uint8_t kGsoUdpL4 = 5;       // VIRTIO_NET_HDR_GSO_UDP_L4 (Linux 6.2+ headers)
constexpr uint8_t kGsoEcn = 0x80;      // VIRTIO_NET_HDR_GSO_ECN

}  // namespace flatnet
