// The forwarding table: pod CIDR -> peer VTEP, and underlay address -> peer. One
// long-lived table that the control plane's thread changes in place, one peer at a
// time, while the workers read it without locks (qsbr.h): a change costs the same
// with 10 peers or 5,000. Everything a worker can reach is immutable once
// published; a change publishes new objects and retires the ones it replaced,
// which the owner frees after a grace period (Dataplane::reclaim). Lookups cost one
// hash probe per distinct prefix length (typically every node has the same /24 or /64).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "counters.h"
#include "packet.h"
#include "peer_index.h"
#include "qsbr.h"
#include "wg_table.h"

namespace flatnet {

struct Prefix {
  IpAddr addr;  // host bits already cleared
  uint8_t length = 0;
};

// One version of a peer: never changed once published; a change makes a new one.
struct Peer {
  std::string name;
  IpAddr address;               // underlay address of its VTEP
  sockaddr_storage sockaddr{};  // address + UDP port, ready for sendmmsg
  socklen_t sockaddrLen = 0;
  uint8_t mac[6] = {};
  // Shared by every version of the peer: counts survive its changes, and two
  // versions of one node compare as the same node (sameNode).
  std::shared_ptr<PeerCounters> counters;
  // Encryption on: how traffic to it goes (src/peer-table.ts EncryptionState). wireguard:
  // sealed with wg's sessions, sent to wgSockaddr; blocked: dropped; plain: VXLAN.
  enum class Encryption : uint8_t { plain, wireguard, blocked };
  Encryption encryption = Encryption::plain;
  std::shared_ptr<WgPeerState> wg;  // shared by every version, as counters are
  sockaddr_storage wgSockaddr{};
  socklen_t wgSockaddrLen = 0;
};

// Whether a and b are versions of the same node (a reader may meet the old version
// through one index and the new one through another while the peer changes).
inline bool sameNode(const Peer* a, const Peer& b) { return a && a->counters == b.counters; }

class Fib {
 public:
  Fib();
  Fib(const Fib&) = delete;
  Fib& operator=(const Fib&) = delete;

  // Readers: any thread, inside a read section.
  // Longest-prefix match of an inner destination (4 or 16 bytes by version).
  const Peer* lookup(uint8_t version, const uint8_t* addr) const;
  // The peer whose VTEP has this underlay address, or null.
  const Peer* peerByAddress(const IpAddr& addr) const;
  // Whether addr is inside one of this node's own pod CIDRs.
  bool isLocal(uint8_t version, const uint8_t* addr) const;

  // The writer: one thread. Each change is visible to readers when it returns.
  // Adds the peer named peer.name, or replaces it (keeping its counters), routing
  // cidrs to it. When two peers claim the same CIDR or underlay address (a node
  // replaced by another), the latest claim is used, and the earlier one again once
  // the latest is removed.
  void setPeer(Peer peer, const std::vector<Prefix>& cidrs);
  void removePeer(const std::string& name);
  void setLocal(std::vector<Prefix> local);
  // The writer's: the peer named name, or null.
  const Peer* peerNamed(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : it->second.peer.get();
  }
  template <class Fn>
  void forEachPeer(Fn&& fn) const {
    for (const auto& [name, entry] : entries_) fn(*entry.peer);
  }
  // What readers may still hold: free it once none can (after synchronize).
  Retired takeRetired() { return std::exchange(retired_, {}); }

 private:
  // The writer's record of a peer (workers never read these).
  struct Entry {
    std::unique_ptr<const Peer> peer;
    std::vector<FibKey> routes;
    FibKey address{};
  };
  // A published index plus, per key, every peer claiming it in claim order; the
  // last claimant is the one published.
  struct Claimed {
    PeerIndex index;
    std::unordered_map<FibKey, std::vector<const Entry*>, FibKeyHash> claims;
  };
  // Distinct route prefix lengths per family (0: IPv4, 1: IPv6), longest first.
  struct Lengths {
    uint8_t count[2] = {};
    uint8_t of[2][129];
  };

  // Each returns +1 when the key enters the index, -1 when it leaves, else 0.
  int claim(Claimed* c, const FibKey& k, const Entry* e);
  int release(Claimed* c, const FibKey& k, const Entry* e);
  void countLength(const FibKey& k, int delta);

  std::unordered_map<std::string, Entry> entries_;  // node-based: Entry pointers stay valid
  Claimed routes_, byAddress_;
  uint32_t lengthUse_[2][129] = {};  // routes per family and prefix length
  Published<Lengths> lengths_;
  Published<std::vector<Prefix>> local_;
  Retired retired_;
};

// Clears the host bits of addr beyond length (family 4 or 6).
void maskAddress(uint8_t family, uint8_t* bytes, uint8_t length);
bool prefixContains(const Prefix& p, uint8_t version, const uint8_t* addr);

}  // namespace flatnet
