// libFuzzer target: the Coalescer over a hostile batch of inner packets laid out
// as the receive loop lays them (each behind a 22-byte VXLAN + Ethernet prefix, in
// one buffer, possibly with trailing padding), each passed with its IP total
// length after parseIp succeeded, as ReceiveLoop::receiveMessage does; once
// merging TCP only and once UDP as well.
// Input: records of [length: 2 bytes BE] [that many bytes]; a length with the top
// bit set also flushes before the packet (a message boundary).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "gro.h"
#include "packet.h"

using namespace flatnet;

namespace {
struct Sink {
  const uint8_t* begin;
  const uint8_t* end;
  size_t writes = 0;
};
void emit(void* ctx, const TunWrite& w) {
  auto* s = static_cast<Sink*>(ctx);
  checkTunWrite(*s, w);
  s->writes++;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct Rec {
    size_t at, len;
    bool flush;
  };
  std::vector<Rec> recs;
  std::vector<uint8_t> buf;
  size_t i = 0;
  while (i + 2 <= size) {
    uint16_t word = load16(data + i);
    size_t len = std::min<size_t>(word & 0x7fff, size - i - 2);
    buf.insert(buf.end(), kEncapPrefixLen, 0xee);
    recs.push_back(Rec{buf.size(), len, (word & 0x8000) != 0});
    buf.insert(buf.end(), data + i + 2, data + i + 2 + len);
    i += 2 + len;
  }
  if (recs.empty()) return 0;
  // Both ways the receive loop runs it: TCP only, and UDP too (a TUN with USO); without
  // an MTU and with one (a partial TCP super-packet is then cut at it).
  for (int variant = 0; variant < 4; variant++) {
    bool udp = variant & 1;
    size_t mtu = variant & 2 ? 1280 : 0;
    std::vector<uint8_t> copy(buf);  // coalescing rewrites the buffer in place
    copy.shrink_to_fit();
    Sink sink{copy.data(), copy.data() + copy.size()};
    Coalescer c(&emit, &sink, udp, mtu);
    size_t added = 0;
    for (const Rec& r : recs) {
      if (r.flush) c.flush();
      uint8_t* pkt = copy.data() + r.at;
      IpView ip;
      if (!parseIp(pkt, r.len, &ip)) continue;
      c.add(pkt, ip.totalLen);
      added++;
    }
    c.flush();
    // Every packet added is written, merged into another or dropped for its checksum.
    if (sink.writes + c.stats().merged + c.stats().badChecksum != added) abort();
  }
  return 0;
}
