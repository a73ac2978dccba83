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
bool admit(const Fib& fib, const Peer& from, const Vtep& local, const uint8_t* p, size_t n,
           IpView* ip, Drop* why);

// One received message: a single datagram, or a train of gsoSize-byte datagrams that
// UDP GRO merged (one sender). Finds the sender among the peers by its outer source
// address, admits each datagram, and calls admitted(peer, innerPacket, ip) for those
// that pass and dropped(reason, count) for the rest.
template <class Admitted, class Dropped>
void admitMessage(const Fib& fib, const IpAddr& from, const Vtep& local, uint8_t* buf, size_t len,
                  size_t gsoSize, Admitted&& admitted, Dropped&& dropped) {
  if (len == 0) return dropped(kDropTooShort, 1);  // nothing to split, and no size to split by
  if (gsoSize == 0 || gsoSize > len) gsoSize = len;
  const Peer* peer = fib.peerByAddress(from);
  if (!peer) return dropped(kDropUnknownPeer, (len + gsoSize - 1) / gsoSize);
  // A node whose traffic is sealed (or, strict, refused in clear) sends no VXLAN: from its
  // address it is someone on the underlay injecting past the encryption.
  if (peer->encryption != Peer::Encryption::plain)
    return dropped(kDropUnencrypted, (len + gsoSize - 1) / gsoSize);
  for (size_t off = 0; off < len; off += gsoSize) {
    uint8_t* p = buf + off;
    size_t n = len - off < gsoSize ? len - off : gsoSize;
    IpView ip;
    Drop why;
    if (admit(fib, *peer, local, p, n, &ip, &why))
      admitted(*peer, p + kEncapPrefixLen, ip);
    else
      dropped(why, 1);
  }
}

}  // namespace flatnet
