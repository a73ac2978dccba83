// A hash map from a masked address to a peer that the workers read without locks
// while one writer changes it (qsbr.h). Chained buckets whose nodes never change
// once published: a change copies the nodes in front of the one it touches (chains
// average under one node) and publishes the new chain with one release store; a
// resize builds a new bucket array of new nodes and publishes it the same way. A
// reader therefore sees each chain either before or after a change, never half of
// it. Whatever was unpublished goes to the caller's Retired list.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "qsbr.h"

namespace flatnet {

struct Peer;

struct FibKey {
  uint64_t hi, lo;  // masked address (IPv4 in the low word of lo)
  uint32_t lengthAndFamily;
  bool operator==(const FibKey& o) const {
    return hi == o.hi && lo == o.lo && lengthAndFamily == o.lengthAndFamily;
  }
};

struct FibKeyHash {
  size_t operator()(const FibKey& k) const {
    uint64_t h = k.hi * 0x9e3779b97f4a7c15ull ^ k.lo * 0xc2b2ae3d27d4eb4full ^ k.lengthAndFamily;
    return size_t(h ^ (h >> 29) ^
                  (h >> 47));  // fold the well-mixed high bits into the bucket index
  }
};

class PeerIndex {
 public:
  PeerIndex();
  PeerIndex(const PeerIndex&) = delete;
  PeerIndex& operator=(const PeerIndex&) = delete;

  // Any thread, inside a read section.
  const Peer* find(const FibKey& k) const;

  // The writer only. set returns whether the key is new; remove whether it was there.
  bool set(const FibKey& k, const Peer* peer, Retired* retired);
  bool remove(const FibKey& k, Retired* retired);

 private:
  struct Node {
    FibKey key;
    const Peer* peer;
    const Node* next;
  };
  struct Buckets {
    explicit Buckets(size_t n) : mask(n - 1), heads(new std::atomic<const Node*>[n]()) {}
    ~Buckets();   // frees the chains: a retired array takes its nodes with it
    size_t mask;  // bucket count - 1 (a power of two: no division per lookup)
    std::unique_ptr<std::atomic<const Node*>[]> heads;
  };

  std::atomic<const Node*>& headOf(const FibKey& k) const;
  // A copy of the chain from n up to (not including) at, continued by tail.
  static const Node* copyUntil(const Node* n, const Node* at, const Node* tail);
  // Publishes the chain head..at with `at` swapped for `replacement` (a node, or
  // at->next to drop it): the nodes in front are copied, the old ones retired.
  void splice(std::atomic<const Node*>& head, const Node* at, const Node* replacement,
              Retired* retired);
  void resize(size_t buckets, Retired* retired);

  Published<Buckets> buckets_;
  size_t size_ = 0;
};

}  // namespace flatnet
