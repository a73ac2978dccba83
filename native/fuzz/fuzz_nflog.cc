// libFuzzer target: parseNflogPacket over hostile NFULNL_MSG_PACKET attributes, as the
// kernel would hand them to the NFLOG reader (net/netfilter/nfnetlink_log.c builds them).
// Input: [family selector: 1 byte] [attributes]; the parser must never read past the end
// and must return ports only for a transport header inside the copy.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nflog.h"

using namespace flatnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t family = data[0] & 1 ? 10 : 2;  // AF_INET6, AF_INET
  // A copy of exactly the input's length, so ASan catches a read one byte past it.
  std::vector<uint8_t> attrs(data + 1, data + size);
  NflogRecord r;
  if (parseNflogPacket(family, attrs.data(), attrs.size(), &r)) {
    if (r.family != 4 && r.family != 6) abort();
    if (r.prefix[sizeof r.prefix - 1] != 0) abort();
  }
  return 0;
}
