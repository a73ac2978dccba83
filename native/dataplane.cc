#include "dataplane.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <tuple>
#include <chrono>

#include "udp.h"
#include "worker.h"

namespace flatnet {

using Clock = std::chrono::steady_clock;

Dataplane::~Dataplane() { stop(); }

int Dataplane::open(const DataplaneOptions& options, const char** where) {
  options_ = options;
  if (int err = openTun(options.tunName, options.offloads, &tun_, where)) return err;
  int fd = openUdpReceive(options.underlay, options.port, options.offloads, &groOn_, where);
  if (fd < 0) return stop(), -fd;
  rxFd_ = fd;
  for (int i = 0; i < options.sendSockets; i++) {
    fd = openUdpSend(options.underlay, where);
    if (fd < 0) return stop(), -fd;
    txFds_.push_back(fd);
  }
  // UDP GSO needs no socket option: it is tried per send and turned off on EIO.
  gsoOn_.store(options.offloads);
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) return stop(), (*where = "eventfd", errno);
  return 0;
}

template <class... Loops>
void Dataplane::run(Quiescence* q) {
  std::tuple<Loops...> loops{((void)sizeof(Loops), *this)...};  // each built from this Dataplane
  constexpr size_t n = sizeof...(Loops);
  pollfd fds[n + 1];
  std::apply([&](auto&... l) {
    size_t i = 0;
    ((fds[i++] = pollfd{l.fd(), POLLIN, 0}), ...);
  }, loops);
  fds[n] = pollfd{wakeFd_, POLLIN, 0};
  auto batch = [&] {  // one QSBR read section per batch (qsbr.h)
    bool moved = false;
    readSection(q, fib_, [&](const Fib& fib) {
      std::apply([&](auto&... l) { ((moved |= l.runBatch(fib)), ...); }, loops);
    });
    return moved;
  };
  const auto spin = std::chrono::microseconds(options_.busyPollMicros);
  while (running_.load(std::memory_order_relaxed)) {
    if (poll(fds, n + 1, -1) < 0 && errno != EINTR) break;
    if (!running_.load(std::memory_order_relaxed)) break;
    if (!batch() || spin.count() == 0) continue;
    // Busy-poll a short while after traffic: a thread that sleeps in poll() pays a
    // wakeup (an IPI, expensive in a VM) for the next packet; request/response
    // traffic arrives again within tens of microseconds. An empty poll yields the
    // CPU, so on a machine with fewer cores than threads the spinner does not
    // starve the thread that has the packet (without it, RTT got 10x worse on 2 cores).
    for (auto until = Clock::now() + spin; Clock::now() < until && running_.load(std::memory_order_relaxed);)
      if (batch()) until = Clock::now() + spin;
      else std::this_thread::yield();
  }
}

template <class... Loops>
std::thread Dataplane::loopThread(const char* name, Quiescence* q) {
  return std::thread([this, name, q] {
    pthread_setname_np(pthread_self(), name);  // for top -H, perf and /proc/<pid>/task
    run<Loops...>(q);
  });
}

void Dataplane::start() {
  if (running_.exchange(true)) return;
  if (options_.busyPollMicros > 0) {
    // A spinning thread holds a core: one thread for both directions spins one, not
    // two, and with half the spinners competing for the cores the one a packet needs
    // is more often running. On 2 cores: RTT p50 63 -> 52 us, p99 88 -> 73 us,
    // single-stream TCP unchanged (bench mode flatnet-busypoll).
    threads_.push_back(loopThread<TransmitLoop, ReceiveLoop>("flatnet-txrx", &txQ_));
    return;
  }
  threads_.push_back(loopThread<TransmitLoop>("flatnet-tx", &txQ_));
  threads_.push_back(loopThread<ReceiveLoop>("flatnet-rx", &rxQ_));
}

void Dataplane::joinLoops() {
  if (running_.exchange(false)) {
    uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof one) < 0) { /* eventfd cannot be full here */ }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    // Reset the eventfd, or restarted loops would find it readable forever.
    if (read(wakeFd_, &one, sizeof one) < 0) { /* EAGAIN: already zero */ }
  }
}

// Both loops use the TUN descriptor (transmit polls and reads it, receive writes
// it), so it is swapped with no loop running rather than under them: a reopen is
// rare (someone deleted the device) and costs one thread restart, a few ms.
int Dataplane::reopenTun(const char** where) {
  bool wasRunning = running_.load();
  joinLoops();
  if (tun_.fd >= 0) close(tun_.fd), tun_.fd = -1;
  int err = openTun(options_.tunName, options_.offloads, &tun_, where);
  tunError_.store(0, std::memory_order_relaxed);
  // On failure the loops still run (receive counts tun_write drops) and the caller retries.
  if (wasRunning) start();
  return err;
}

void Dataplane::stop() {
  joinLoops();
  for (int* fd : {&tun_.fd, &rxFd_, &wakeFd_})
    if (*fd >= 0) close(*fd), *fd = -1;
  for (int fd : txFds_) close(fd);
  txFds_.clear();
}

void Dataplane::reclaim() {
  Retired retired = table_.takeRetired();
  if (retired.empty()) return;  // only additions: nothing a worker could be holding
  synchronize(fib_, {&txQ_, &rxQ_});
}  // retired is freed here

}  // namespace flatnet
