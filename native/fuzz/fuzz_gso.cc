// libFuzzer target: a super-packet from the TUN with a hostile virtio_net_hdr,
// as TransmitLoop::encapsulate (worker.cc) handles it: parseIp first, then either
// completeChecksum in place (GSO none) or gsoSplit into the worker's output train.
// Input: [VnetHdr: 10 bytes] [outCap selector: 1 byte] [IP packet].
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "gso.h"
#include "packet.h"

using namespace flatnet;

namespace {
// As worker.cc sizes them.
constexpr size_t kMaxIpPacket = 65535;
constexpr size_t kMaxSplit = 256;
constexpr size_t kWorkerOut = kMaxIpPacket + kMaxSplit * (kEncapPrefixLen + 128);
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(VnetHdr) + 1) return 0;
  VnetHdr hdr;
  std::memcpy(&hdr, data, sizeof hdr);
  uint8_t capMode = data[sizeof hdr];
  data += sizeof hdr + 1;
  size -= sizeof hdr + 1;
  if (size > kMaxIpPacket) return 0;  // a TUN read is never larger
  std::vector<uint8_t> pkt(data, data + size);
  IpView ip;
  if (!parseIp(pkt.data(), pkt.size(), &ip)) return 0;  // bad_tun_packet before gsoSplit

  if ((hdr.gsoType & ~kGsoEcn) == kGsoNone && (hdr.flags & kVnetNeedsCsum)) {
    std::vector<uint8_t> copy = pkt;
    completeChecksum(hdr, copy.data(), copy.size());
  }
  // Mostly the worker's buffer; sometimes a small one, to reach noRoom.
  size_t outCap = capMode < 200 ? kWorkerOut : size_t(capMode) * 64;
  std::vector<uint8_t> out(outCap);
  std::vector<uint16_t> sizes(kMaxSplit);
  size_t count = 0;
  GsoResult r = gsoSplit(hdr, pkt.data(), pkt.size(), out.data(), out.size(), kEncapPrefixLen,
                         sizes.data(), kMaxSplit, &count);
  if (r != GsoResult::ok) {
    if (count != 0) abort();
    return 0;
  }
  if (count == 0 || count > kMaxSplit) abort();
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    at += kEncapPrefixLen;
    if (at + sizes[i] > outCap) abort();
    const uint8_t* seg = out.data() + at;
    IpView s;
    // Segments of a split are complete IP packets of exactly their size.
    if ((hdr.gsoType & ~kGsoEcn) != kGsoNone &&
        (!parseIp(seg, sizes[i], &s) || s.totalLen != sizes[i] || s.version != ip.version ||
         !transportChecksumOk(seg, s) ||
         (s.version == 4 && checksumFold(checksumPartial(seg, s.headerLen, 0)) != 0xffff)))
      abort();
    at += sizes[i];
  }
  return 0;
}
