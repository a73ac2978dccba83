// libFuzzer target: a hostile datagram at the WireGuard port, as the receive path will admit it
// (wg_admit.h): the header and receiver index checked, the message opened by its session (tag,
// replay window, lifetime), then the opened packet held to the source and destination rules.
// Random bytes never pass the tag, so half the inputs are sealed first with the peer's keys: the
// fuzzer then controls the opened packet (and, through its counter byte, the replay window).
// Input: [mode: 1 byte] [counter skip: 1 byte] [bytes]. mode even: bytes are the datagram; odd:
// bytes are a packet that node n2 seals and sends.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fib.h"
#include "fuzz_common.h"
#include "packet.h"
#include "wg_admit.h"
#include "wg_session.h"

using namespace flatnet;

namespace {

// This node owns 10.244.1.0/24 and fd00:1::/64; n2 10.244.2.0/24 and fd00:2::/64; n3 10.244.3.0/24.
Fib* makeFib() {
  auto* fib = new Fib();
  fib->setLocal({prefix4(10, 244, 1, 0, 24), prefix6(0xfd, 0x00, 0x00, 0x01, 64)});
  Peer n2;
  n2.name = "n2";
  n2.address = addr4(192, 168, 77, 2);
  fib->setPeer(n2, {prefix4(10, 244, 2, 0, 24), prefix6(0xfd, 0x00, 0x00, 0x02, 64)});
  Peer n3;
  n3.name = "n3";
  n3.address = addr4(192, 168, 77, 3);
  fib->setPeer(n3, {prefix4(10, 244, 3, 0, 24)});
  return fib;
}

PeerCounters* nodeOf(const Fib& fib, const char* name) {
  const Peer* p = fib.peerNamed(name);
  return p ? p->counters.get() : nullptr;
}

WgSessionKeys keys(uint8_t send, uint8_t receive) {
  WgSessionKeys k;
  std::memset(k.send, send, sizeof k.send);
  std::memset(k.receive, receive, sizeof k.receive);
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fib* fib = makeFib();
  static PeerCounters* n2 = nodeOf(*fib, "n2");
  // Ours (index 7, n2's initiation answered) and n2's side of it. Both live across inputs, as a
  // session does across datagrams: the replay window fills and slides.
  static WgSession* ours = new WgSession(7, 9, keys(1, 2), false, 0);
  static WgSession* theirs = new WgSession(9, 7, keys(2, 1), true, 0);
  static WgReceiver receiver{ours, n2};
  if (size < 2 || size > 65535) return 0;
  uint8_t mode = data[0], skip = data[1];
  data += 2;
  size -= 2;
  std::vector<uint8_t> msg;
  if (mode & 1) {
    for (uint8_t i = 0; i < skip % 4; i++) {  // counters left out: later ones arrive first
      std::vector<uint8_t> unused(WgSession::messageLength(0, 1420));
      theirs->seal(unused.data(), 0, 1420, 0);
    }
    msg.resize(WgSession::messageLength(size, 1420));
    if (size > 0) std::memcpy(msg.data() + kWgTransportHeader, data, size);
    size_t n = theirs->seal(msg.data(), size, 1420, 0);
    if (n == 0) std::abort();  // a confirmed, fresh initiator always seals
    msg.resize(n);
  } else {
    msg.assign(data, data + size);  // an exact-size heap copy: ASan sees any read past it
  }
  IpView ip;
  const WgReceiver* by = nullptr;
  auto find = [](uint32_t index) { return index == 7 ? &receiver : nullptr; };
  int64_t now = int64_t(skip) * 1'000'000'000;  // up to 255 s: past Reject-After-Time too
  WgVerdict v = admitWg(*fib, find, msg.data(), msg.size(), now, &ip, &by);
  if (v == WgVerdict::packet) {
    // What reaches the TUN lies inside the opened message and is n2's pod to one of ours.
    const uint8_t* p = msg.data() + kWgTransportHeader;
    if (by != &receiver || ip.totalLen == 0 ||
        ip.totalLen > msg.size() - kWgTransportHeader - kWgTag || ip.src < p || ip.dst < p ||
        !fib->isLocal(ip.version, ip.dst))
      std::abort();
  }
  if ((mode & 1) && now < kWgRejectAfterNs && v != WgVerdict::packet && v != WgVerdict::keepalive &&
      v != WgVerdict::badInnerIp && v != WgVerdict::spoofedSource && v != WgVerdict::foreignDest &&
      v != WgVerdict::replay)
    std::abort();  // a message n2 sealed, in its lifetime, opens (or is a reorder past the window)
  return 0;
}
