// libFuzzer target: the receive path over one hostile UDP message, as
// ReceiveLoop::receiveMessage (worker.cc) runs it: the message is split at the
// UDP GRO size, each datagram goes through admit() (decapsulate, parseIp, source
// and destination checked in the fib), and what passes is coalesced (gro.cc) into
// TUN writes.
// Input: [gsoSize: 2 bytes BE (0 = whole message)] [sender: 1 byte] [message].
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "admit.h"
#include "fib.h"
#include "fuzz_common.h"
#include "gro.h"
#include "packet.h"
#include "vxlan.h"

using namespace flatnet;

namespace {

const Vtep kLocal{1, {0x02, 0, 0, 0, 0, 0x01}};

// This node owns 10.244.1.0/24 and fd00:1::/64; n2 (192.168.77.2) 10.244.2.0/24 and
// fd00:2::/64; n3 (192.168.77.3, over IPv6 underlay 2001:db8::3) 10.244.3.0/24.
Fib* makeFib() {
  auto* fib = new Fib();
  fib->setLocal({prefix4(10, 244, 1, 0, 24), prefix6(0xfd, 0x00, 0x00, 0x01, 64)});
  Peer n2;
  n2.name = "n2";
  n2.address = addr4(192, 168, 77, 2);
  std::memcpy(n2.mac, "\x02\x00\x00\x00\x00\x02", 6);
  fib->setPeer(n2, {prefix4(10, 244, 2, 0, 24), prefix6(0xfd, 0x00, 0x00, 0x02, 64)});
  Peer n3;
  n3.name = "n3";
  n3.address = addr6(0x20, 0x01, 0x0d, 0xb8, 3);
  std::memcpy(n3.mac, "\x02\x00\x00\x00\x00\x03", 6);
  fib->setPeer(n3, {prefix4(10, 244, 3, 0, 24),
                    prefix4(10, 244, 3, 128, 25)});  // a second prefix length to probe
  return fib;
}

struct Sink {
  const uint8_t* begin;
  const uint8_t* end;
};

void emit(void* ctx, const TunWrite& w) { checkTunWrite(*static_cast<Sink*>(ctx), w); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fib* fib = makeFib();
  if (size < 3) return 0;
  size_t gsoSize = load16(data);
  uint8_t sender = data[2];
  data += 3;
  size = size - 3;
  // An exact-size heap copy, so ASan sees any read past the datagram.
  std::vector<uint8_t> buf(data, data + size);
  IpAddr from = sender % 3 == 0   ? addr4(192, 168, 77, 2)
                : sender % 3 == 1 ? addr6(0x20, 0x01, 0x0d, 0xb8, 3)
                                  : addr4(192, 168, 77, 99);
  Sink sink{buf.data(), buf.data() + buf.size()};
  Coalescer coalescer(&emit, &sink);
  // The receive loop's own per-message code (admit.h), empty and unknown-sender cases included.
  admitMessage(
      *fib, from, kLocal, buf.data(), size, gsoSize,
      [&](const Peer&, uint8_t* pkt, const IpView& ip) {
        if (pkt < buf.data() || pkt + ip.totalLen > buf.data() + size || ip.headerLen > ip.totalLen)
          abort();
        flowHash(pkt, ip);
        coalescer.add(pkt, ip.totalLen);
      },
      [&](Drop why, size_t count) {
        if (why < 0 || why >= kDropCount || count == 0) abort();
      });
  coalescer.flush();
  return 0;
}
