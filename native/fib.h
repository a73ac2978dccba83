// The forwarding table: pod CIDR -> peer VTEP. Built whole by the control plane
// and published to the workers with an atomic pointer swap (see Dataplane::setTable);
// workers only read it. Lookups cost one hash probe per distinct prefix length, so
// they stay flat as the cluster grows (typically every node has the same /24 or /64).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "counters.h"
#include "packet.h"

namespace flatnet {

struct Prefix {
  IpAddr addr;  // host bits already cleared
  uint8_t length = 0;
};

struct Peer {
  std::string name;
  IpAddr address;                 // underlay address of its VTEP
  sockaddr_storage sockaddr{};    // address + UDP port, ready for sendmmsg
  socklen_t sockaddrLen = 0;
  uint8_t mac[6] = {};
  std::shared_ptr<PeerCounters> counters;  // shared with later tables, so counts survive swaps
};

class Fib {
 public:
  // Adds a peer; returns its index for addRoute.
  size_t addPeer(Peer peer);
  void addRoute(const Prefix& prefix, size_t peer);
  void addLocal(const Prefix& prefix) { local_.push_back(prefix); }

  // Longest-prefix match of an inner destination (4 or 16 bytes by version).
  const Peer* lookup(uint8_t version, const uint8_t* addr) const;
  // The peer whose VTEP has this underlay address, or null.
  const Peer* peerByAddress(const IpAddr& addr) const;
  // Whether addr is inside one of this node's own pod CIDRs.
  bool isLocal(uint8_t version, const uint8_t* addr) const;

  const std::vector<Peer>& peers() const { return peers_; }

 private:
  struct Key {
    uint64_t hi, lo;  // masked address (IPv4 in the low word of lo)
    uint32_t lengthAndFamily;
    bool operator==(const Key& o) const {
      return hi == o.hi && lo == o.lo && lengthAndFamily == o.lengthAndFamily;
    }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = k.hi * 0x9e3779b97f4a7c15ull ^ k.lo * 0xc2b2ae3d27d4eb4full ^ k.lengthAndFamily;
      return size_t(h ^ (h >> 29));
    }
  };
  static Key makeKey(uint8_t version, const uint8_t* addr, uint8_t length);

  std::vector<Peer> peers_;
  std::unordered_map<Key, size_t, KeyHash> routes_;
  std::vector<uint8_t> lengths4_, lengths6_;  // distinct prefix lengths, longest first
  std::unordered_map<Key, size_t, KeyHash> byAddress_;
  std::vector<Prefix> local_;
};

// Clears the host bits of addr beyond length (family 4 or 6).
void maskAddress(uint8_t family, uint8_t* bytes, uint8_t length);
bool prefixContains(const Prefix& p, uint8_t version, const uint8_t* addr);

}  // namespace flatnet
