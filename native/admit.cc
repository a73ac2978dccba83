#include "admit.h"

namespace flatnet {

bool admit(const Fib& fib, const Peer& from, const Vtep& local, const uint8_t* p, size_t n,
           IpView* ip, Drop* why) {
  size_t inner;
  if (!decapsulate(p, n, local, &inner, why)) return false;
  uint16_t ethType = load16(p + inner - 2);
  if (!parseIp(p + inner, n - inner, ip) || (ip->version == 4) != (ethType == kEthTypeIpv4))
    return *why = kDropBadInnerIp, false;
  // No NAT and no relaying: the inner source must belong to the peer that sent it,
  // and the destination must be one of this node's pods.
  if (!sameNode(fib.lookup(ip->version, ip->src), from)) return *why = kDropSpoofedSource, false;
  if (!fib.isLocal(ip->version, ip->dst)) return *why = kDropForeignDest, false;
  return true;
}

}  // namespace flatnet
