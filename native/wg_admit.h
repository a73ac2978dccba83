// Admission of a received WireGuard datagram, as one pure function (tested and fuzzed without
// sockets): transport data opened by the session its receiver index names, then held to the rules
// VXLAN's admission applies (admit.h) — the inner source belongs to the node that holds the
// session (WireGuard's allowed IPs: that node's pod CIDRs), the destination to this node's pods.
// Handshake messages of the right length are passed on to the control plane, which checks the
// rest (src/wireguard/).
#pragma once
#include <cstddef>
#include <cstdint>

#include "fib.h"
#include "packet.h"
#include "wg_session.h"
#include "wg_table.h"

namespace flatnet {

enum class WgVerdict {
  packet,         // *ip: the inner packet, opened in place at p + kWgTransportHeader
  keepalive,      // an empty message: the session is alive (and, for a responder, confirmed)
  handshake,      // an initiation, response or cookie reply, for the control plane
  badMessage,     // an unknown type, reserved bytes set, or a length its type cannot have
  unknownIndex,   // no session of ours has this receiver index
  expired,        // the session is past Reject-After-Time
  replay,         // a counter already taken, or older than the window
  decrypt,        // the tag does not verify: wrong key or tampering
  badInnerIp,     // the opened packet is not a well-formed IP packet
  spoofedSource,  // the inner source is not in the sending node's pod CIDRs
  foreignDest,    // the inner destination is not one of this node's pods
};

const char* wgVerdictName(WgVerdict v);

// The drop reason a verdict other than packet, keepalive or handshake is counted as: WireGuard's
// own, or VXLAN's for the checks both make on the inner packet.
constexpr Drop wgDropOf(WgVerdict v) {
  switch (v) {
    case WgVerdict::unknownIndex:
      return kDropWgUnknownIndex;
    case WgVerdict::expired:
      return kDropWgExpired;
    case WgVerdict::replay:
      return kDropWgReplay;
    case WgVerdict::decrypt:
      return kDropWgDecrypt;
    case WgVerdict::badInnerIp:
      return kDropBadInnerIp;
    case WgVerdict::spoofedSource:
      return kDropSpoofedSource;
    case WgVerdict::foreignDest:
      return kDropForeignDest;
    default:
      return kDropWgBadMessage;
  }
}

// Whitepaper 5.4.2-5.4.7: the handshake messages' exact lengths.
constexpr size_t kWgInitiationLength = 148, kWgResponseLength = 92, kWgCookieReplyLength = 64;

// p/n: one datagram's UDP payload. find(receiverIndex) -> const WgReceiver* (nullptr: none).
// *by: the receiver the message was opened by (packet and keepalive).
template <class Find>
WgVerdict admitWg(const Fib& fib, Find&& find, uint8_t* p, size_t n, int64_t nowNs, IpView* ip,
                  const WgReceiver** by) {
  if (n < 4 || p[1] || p[2] || p[3]) return WgVerdict::badMessage;
  switch (p[0]) {
    case 1:
      return n == kWgInitiationLength ? WgVerdict::handshake : WgVerdict::badMessage;
    case 2:
      return n == kWgResponseLength ? WgVerdict::handshake : WgVerdict::badMessage;
    case 3:
      return n == kWgCookieReplyLength ? WgVerdict::handshake : WgVerdict::badMessage;
    case kWgTransportType:
      break;
    default:
      return WgVerdict::badMessage;
  }
  if (n < kWgTransportHeader + kWgTag) return WgVerdict::badMessage;
  const WgReceiver* r = find(wgReceiverIndex(p));
  if (r == nullptr) return WgVerdict::unknownIndex;
  size_t len = 0;
  switch (r->session->open(p, n, nowNs, &len)) {
    case WgOpen::ok:
      break;
    case WgOpen::length:
    case WgOpen::type:
      return WgVerdict::badMessage;
    case WgOpen::index:
      return WgVerdict::unknownIndex;
    case WgOpen::expired:
      return WgVerdict::expired;
    case WgOpen::replay:
      return WgVerdict::replay;
    case WgOpen::decrypt:
      return WgVerdict::decrypt;
  }
  *by = r;
  if (len == 0) return WgVerdict::keepalive;
  // The padding after the IP packet's own length is not part of it (parseIp reads totalLen).
  if (!parseIp(p + kWgTransportHeader, len, ip)) return WgVerdict::badInnerIp;
  const Peer* owner = fib.lookup(ip->version, ip->src);
  if (owner == nullptr || owner->counters.get() != r->node) return WgVerdict::spoofedSource;
  if (!fib.isLocal(ip->version, ip->dst)) return WgVerdict::foreignDest;
  return WgVerdict::packet;
}

}  // namespace flatnet
