#include "peer_index.h"

#include <utility>

namespace flatnet {

// Grows past one node per bucket and shrinks below a quarter: amortised O(1) per
// change, and short chains for the readers.
constexpr size_t kMinBuckets = 16;

PeerIndex::PeerIndex() : buckets_(std::make_unique<Buckets>(kMinBuckets)) {}

PeerIndex::Buckets::~Buckets() {
  for (size_t i = 0; i <= mask; i++)
    for (const Node* n = heads[i].load(std::memory_order_relaxed); n;)
      delete std::exchange(n, n->next);
}

std::atomic<const PeerIndex::Node*>& PeerIndex::headOf(const FibKey& k) const {
  Buckets* b = buckets_.writable();
  return b->heads[FibKeyHash()(k) & b->mask];
}

const Peer* PeerIndex::find(const FibKey& k) const {
  const Buckets* b = buckets_.get();
  for (const Node* n = b->heads[FibKeyHash()(k) & b->mask].load(std::memory_order_acquire); n;
       n = n->next)
    if (n->key == k) return n->peer;
  return nullptr;
}

const PeerIndex::Node* PeerIndex::copyUntil(const Node* n, const Node* at, const Node* tail) {
  return n == at ? tail : new Node{n->key, n->peer, copyUntil(n->next, at, tail)};
}

void PeerIndex::splice(std::atomic<const Node*>& head, const Node* at, const Node* replacement,
                       Retired* retired) {
  const Node* first = head.load(std::memory_order_relaxed);
  head.store(copyUntil(first, at, replacement), std::memory_order_release);
  for (const Node *n = first, *end = at->next; n != end;)
    retired->emplace_back(std::unique_ptr<const Node>(std::exchange(n, n->next)));
}

bool PeerIndex::set(const FibKey& k, const Peer* peer, Retired* retired) {
  std::atomic<const Node*>& head = headOf(k);
  const Node* at = head.load(std::memory_order_relaxed);
  while (at && !(at->key == k)) at = at->next;
  if (at) {
    if (at->peer != peer) splice(head, at, new Node{k, peer, at->next}, retired);
    return false;
  }
  head.store(new Node{k, peer, head.load(std::memory_order_relaxed)}, std::memory_order_release);
  if (++size_ > buckets_.writable()->mask + 1) resize(2 * (buckets_.writable()->mask + 1), retired);
  return true;
}

bool PeerIndex::remove(const FibKey& k, Retired* retired) {
  std::atomic<const Node*>& head = headOf(k);
  const Node* at = head.load(std::memory_order_relaxed);
  while (at && !(at->key == k)) at = at->next;
  if (!at) return false;
  splice(head, at, at->next, retired);
  size_t buckets = buckets_.writable()->mask + 1;
  if (--size_ < buckets / 4 && buckets > kMinBuckets) resize(buckets / 2, retired);
  return true;
}

// The old array stays intact for readers still in it; it goes to retired with its nodes.
void PeerIndex::resize(size_t buckets, Retired* retired) {
  auto next = std::make_unique<Buckets>(buckets);
  const Buckets* old = buckets_.writable();
  for (size_t i = 0; i <= old->mask; i++)
    for (const Node* n = old->heads[i].load(std::memory_order_relaxed); n; n = n->next) {
      std::atomic<const Node*>& head = next->heads[FibKeyHash()(n->key) & next->mask];
      head.store(new Node{n->key, n->peer, head.load(std::memory_order_relaxed)},
                 std::memory_order_relaxed);
    }
  buckets_.replace(std::move(next), retired);
}

}  // namespace flatnet
