// Quiescent-state-based reclamation (QSBR) for the forwarding table: one writer
// (the control plane's thread) changes shared objects in place while reader
// threads use them without locks. The writer publishes new objects with a release
// store (Published), hands the replaced ones to a Retired list, and frees that list
// only after synchronize(): by then every reader has been idle, or has finished the
// section it was in, so none can still hold a retired pointer.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace flatnet {

// One reader thread's state. A reader holds table pointers only inside a section
// (readSection; Dataplane::run makes each batch one).
struct alignas(64) Quiescence {
  std::atomic<bool> busy{false};
  std::atomic<uint64_t> batches{0};
};

// Objects no longer published but maybe still in a reader's hands; destroying the
// list frees them (shared_ptr<const void> keeps each one's own deleter).
using Retired = std::vector<std::shared_ptr<const void>>;

// A pointer readers load and the writer replaces. The writer may also change the
// object's own atomics in place (T* from writable()).
template <class T>
class Published {
 public:
  explicit Published(std::unique_ptr<T> initial) : p_(initial.release()) {}
  ~Published() { delete p_.load(std::memory_order_relaxed); }
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  const T* get() const { return p_.load(std::memory_order_acquire); }
  T* writable() const { return p_.load(std::memory_order_relaxed); }  // the writer's own view
  void replace(std::unique_ptr<T> next, Retired* retired) {
    retired->emplace_back(
        std::unique_ptr<const T>(p_.exchange(next.release(), std::memory_order_release)));
  }

 private:
  std::atomic<T*> p_;
};

// The reader's side: fn(*root) runs as one section. seq_cst on busy and on the
// root load pairs with synchronize (a Dekker handshake): either the writer sees
// this reader busy, or this section sees every change made before synchronize.
template <class T, class Fn>
void readSection(Quiescence* q, const std::atomic<const T*>& root, Fn&& fn) {
  q->busy.store(true);
  fn(*root.load());
  q->batches.fetch_add(1, std::memory_order_release);
  q->busy.store(false, std::memory_order_release);
}

// The writer's side: returns once no reader can still hold anything retired before
// the call. The seq_cst store of the (unchanged) root is what a reader's seq_cst
// root load synchronizes with; then a reader that is idle, or has finished a
// section since, is past the old objects. Waits at most one section per reader.
template <class T>
void synchronize(std::atomic<const T*>& root, Quiescence* readers, size_t count) {
  root.store(root.load(std::memory_order_relaxed));
  for (Quiescence* q = readers; q < readers + count; q++) {
    uint64_t seen = q->batches.load(std::memory_order_acquire);
    while (q->busy.load() && q->batches.load(std::memory_order_acquire) == seen)
      std::this_thread::yield();
  }
}

}  // namespace flatnet
