// Admission of a received VXLAN datagram: everything the receive path checks
// before an inner packet may reach the TUN, as one pure function (tested and
// fuzzed without sockets).
#pragma once
#include <cstddef>
#include <cstdint>

#include "counters.h"
#include "fib.h"
#include "packet.h"
#include "vxlan.h"

namespace flatnet {

// p/n: one datagram's UDP payload, sent by the peer `from` (already known by its
// outer source address). On success returns true with *ip describing the inner
// packet at p + kEncapPrefixLen (ip->totalLen trims any Ethernet padding);
// otherwise sets *why.
bool admit(const Fib& fib, const Peer& from, const Vtep& local, const uint8_t* p, size_t n, IpView* ip,
           Drop* why);

}  // namespace flatnet
