#include "dataplane.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "handover.h"
#include "le.h"
#include "steering.h"
#include "udp.h"
#include "worker.h"

namespace flatnet {

using Clock = std::chrono::steady_clock;

Dataplane::~Dataplane() { stop(); }

namespace {

// The baton's first byte: the predecessor's threads stopped; with kBatonSessions its WireGuard
// sessions' state follows.
constexpr uint8_t kBatonPlain = 1;
constexpr uint8_t kBatonSessions = 2;

bool writeFully(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w, n -= size_t(w);
  }
  return true;
}

// False at EOF before n bytes (the predecessor died mid-way) or on an error.
bool readFully(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r, n -= size_t(r);
  }
  return true;
}
// The CPUs this process may run on (its cpuset in a container), in order.
std::vector<int> allowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}
}  // namespace

std::vector<int> workerCpus(std::vector<int> allowed, size_t budget, size_t perWorker) {
  if (budget > 0 && perWorker > 0)
    allowed.resize(std::min(allowed.size(), std::max<size_t>(2, budget / perWorker)));
  return allowed;
}

int Dataplane::open(const DataplaneOptions& options, const char** where) {
  options_ = options;
  // per-cpu: a queue (and a worker) per allowed CPU, in order. auto: per-cpu if its
  // steering program loads, with 2 to 256 CPUs (a TUN has at most 256 queues).
  std::vector<int> allowed = allowedCpus();
  allowedCpus_ = int(allowed.size());
  std::vector<int> cpus = workerCpus(allowed, options.memoryBudget, packetMemoryPerWorker(options));
  using Workers = DataplaneOptions::Workers;
  bool autoPerCpu = options.workers == Workers::automatic && cpus.size() > 1 && cpus.size() <= 256;
  if (autoPerCpu) {
    int progFd;
    perCpuErrno_ = loadCpuSteering(cpus, options.offloads, &progFd);
    if (!perCpuErrno_) close(progFd);
  }
  if (options.workers == Workers::perCpu || (autoPerCpu && !perCpuErrno_)) queueCpus_ = cpus;
  size_t queues = std::max<size_t>(1, queueCpus_.size());
  // Before the TUN: a second daemon must fail here, not attach queues to the first's.
  if (int err = claimPort(options.underlay, options.port, where)) return -err;
  if (int err = openTun(options.tunName, options.offloads, queueCpus_, &tun_, where)) return err;
  for (size_t q = 0; q < queues; q++) {
    int fd = openUdpReceive(options.underlay, options.port, options.offloads, queues > 1, &groOn_,
                            where);
    if (fd < 0) return stop(), -fd;
    rxFds_.push_back(fd);
  }
  if (options.wgPort) {
    if (int err = claimPort(options.underlay, options.wgPort, where)) return stop(), -err;
    if (int err = openWgSockets(queues, where)) return stop(), err;
  }
  if (queues > 1) {
    socketSteeringErrno_ = attachFlowSteering(rxFds_, queueCpus_);
    socketSteering_ = !socketSteeringErrno_                ? "flow"
                      : !steerByCpu(rxFds_[0], queueCpus_) ? "cpu"
                                                           : "hash";
  }
  return openCommon(where);
}

int Dataplane::adopt(const DataplaneOptions& options, const Adopted& from, const char** where) {
  options_ = options;
  allowedCpus_ = int(allowedCpus().size());
  queueCpus_ = from.queueCpus;
  size_t queues = std::max<size_t>(1, queueCpus_.size());
  // Taken first, so that every one of them is closed by stop() if a check fails.
  tun_.fds = from.tunFds;
  rxFds_ = from.rxFds;
  batonFd_ = from.batonFd;
  if (from.tunFds.size() != queues || from.rxFds.size() != queues)
    return stop(), (*where = "handover: descriptors do not match the queues", EPROTO);
  // The descriptors must be the TUN the config names (TUNGETIFF, drivers/net/tun.c)
  // and UDP sockets on the VTEP port: a successor configured otherwise starts clean.
  for (int fd : tun_.fds) {
    std::string name;
    bool vnet = false;
    if (int err = tunOf(fd, &name, &vnet)) return stop(), (*where = "handover: TUNGETIFF", err);
    if (name != options.tunName) return stop(), (*where = "handover: another TUN", EINVAL);
    tun_.vnetHdr = vnet;
    options_.offloads = vnet;  // the device decides, not this daemon's config
  }
  for (int fd : rxFds_)
    if (localPort(fd) != options.port) return stop(), (*where = "handover: another port", EINVAL);
  wgFds_ = from.wgFds;
  if (!options.wgPort)  // WireGuard turned off by this update: its sockets are not needed
    for (int fd : std::exchange(wgFds_, {})) close(fd);
  if (!wgFds_.empty() && wgFds_.size() != queues)
    return stop(), (*where = "handover: WireGuard sockets do not match the queues", EPROTO);
  for (int fd : wgFds_)
    if (localPort(fd) != options.wgPort)
      return stop(), (*where = "handover: another WireGuard port", EINVAL);
  if (options.wgPort && wgFds_.empty())  // turned on by this update
    if (int err = openWgSockets(queues, where)) return stop(), err;
  tun_.name = options.tunName;
  tun_.offloads = from.tunOffloads;
  tun_.steeringErrno = from.tunSteeringErrno;
  groOn_ = from.groOn;
  perCpuErrno_ = from.perCpuErrno;
  socketSteeringErrno_ = from.socketSteeringErrno;
  for (const char* s : {"flow", "cpu", "hash", "none"})
    if (from.socketSteering == s) socketSteering_ = s;
  return openCommon(where);
}

// WireGuard's socket per queue on its port, each datagram steered to the worker of the CPU it
// arrives on (as the VXLAN sockets are without CAP_BPF): decryption stays on that CPU. A steering
// failure leaves the kernel's hash. Returns 0 or an errno.
int Dataplane::openWgSockets(size_t queues, const char** where) {
  for (size_t q = 0; q < queues; q++) {
    bool gro = false;
    int fd = openUdpWireGuard(options_.underlay, options_.wgPort, options_.offloads, queues > 1,
                              &gro, where);
    if (fd < 0) return -fd;
    wgFds_.push_back(fd);
  }
  if (queues > 1) steerByCpu(wgFds_[0], queueCpus_);
  return 0;
}

// What open() and adopt() share: the send sockets, counters, epoll instances and wakeup.
int Dataplane::openCommon(const char** where) {
  const DataplaneOptions& options = options_;
  size_t queues = std::max<size_t>(1, rxFds_.size());
  for (int i = 0; i < options.sendSockets; i++) {
    int fd = openUdpSend(options.underlay, where);
    if (fd < 0) return stop(), -fd;
    txFds_.push_back(fd);
  }
  if (options.wgPort) wg_ = std::make_unique<WgTable>();
  tx_.reset(new WorkerCounters[queues]);
  rx_.reset(new WorkerCounters[queues]);
  readers_ = std::max<size_t>(2, queues);
  qs_.reset(new Quiescence[readers_]);
  for (size_t i = 0; i < readers_; i++) {  // one per packet thread
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return stop(), (*where = "epoll_create1", errno);
    epollFds_.push_back(ep);
  }
  // UDP GSO needs no socket option: it is tried per send and turned off on EIO.
  gsoOn_.store(options.offloads);
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) return stop(), (*where = "eventfd", errno);
  return 0;
}

namespace {

// A per-cpu worker runs SCHED_BATCH while it sends a stream of pure TCP ACKs (the
// receiving end of a bulk transfer), SCHED_OTHER otherwise. Woken for an ACK as
// SCHED_BATCH it does not preempt what runs on its CPU (the sending application, or
// whatever pod runs there), which goes on with its work; the worker then sends the
// ACKs that gathered as one train. Only this worker: SCHED_BATCH bought nothing for
// workers carrying data, and a lone packet for a worker on a CPU a busy task holds
// waits out that task's time slice (docs/performance.md).
// A worker goes back kQuietMs after the ACKs stop, at the latest when epoll_wait
// times out, so an idle one is SCHED_OTHER before the next packet comes. Moving
// between the two fair policies needs no privilege; where a seccomp profile refuses
// it anyway, the worker stays SCHED_OTHER.
class AckStreamPolicy {
 public:
  explicit AckStreamPolicy(bool enabled) : enabled_(enabled) {}
  int waitMs() const { return batch_ ? kQuietMs : -1; }
  void idle() { set(false); }
  void afterBatch(size_t pureAcks) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - windowStart_ > std::chrono::milliseconds(1)) windowStart_ = now, windowAcks_ = 0;
    windowAcks_ += pureAcks;
    if (windowAcks_ >= kAcksPerMs) {
      last_ = now;
      set(true);
    } else if (batch_ && now - last_ > std::chrono::milliseconds(kQuietMs)) {
      set(false);
    }
  }

 private:
  // A bulk receiver ACKs every GRO train it takes, or every second segment: 4 a
  // millisecond from ~2 Gbit/s (100 Mbit/s unmerged); request/response traffic
  // carries its ACKs on its data.
  static constexpr size_t kAcksPerMs = 4;
  static constexpr int kQuietMs = 5;
  void set(bool batch) {
    if (batch == batch_ || !enabled_) return;
    sched_param none{};
    if (pthread_setschedparam(pthread_self(), batch ? SCHED_BATCH : SCHED_OTHER, &none) == 0)
      batch_ = batch;
    else
      enabled_ = false;
  }
  bool enabled_;
  bool batch_ = false;
  Clock::time_point windowStart_{}, last_{};
  size_t windowAcks_ = 0;
};

}  // namespace

template <class... Loops>
void Dataplane::run(size_t slot, int queue) {
  if (!awaitBaton()) return;
  Quiescence* q = &qs_[slot];
  std::tuple<Loops...> loops{((void)sizeof(Loops), LoopSpec{*this, queue})...};  // built in place
  constexpr size_t n = sizeof...(Loops);
  // epoll, not poll: the descriptors are registered once per run, not on every wait.
  // The instance was made by open(), which can fail.
  int ep = epollFds_[slot];
  int watched[n + 1];
  std::apply(
      [&](auto&... l) {
        size_t i = 0;
        ((watched[i++] = l.fd()), ...);
      },
      loops);
  watched[n] = wakeFd_;
  for (size_t i = 0; i <= n; i++) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &ev);
  }
  bool ready[n + 1] = {};
  size_t pureAcks = 0;  // sent by the last batch
  // One QSBR read section per batch (qsbr.h). After a wakeup only the loops whose
  // descriptor epoll reported run: the other's read would only say EAGAIN, a wasted
  // syscall on each of a round trip's four crossings of a per-CPU worker.
  auto batch = [&](bool all) {
    bool moved = false;
    pureAcks = 0;
    readSection(q, fib_, [&](const Fib& fib) {
      size_t i = 0;
      auto one = [&](auto& l) {
        if (!(ready[i++] || all) || !l.runBatch(fib)) return;
        moved = true;
        if constexpr (std::is_same_v<std::decay_t<decltype(l)>, TransmitLoop>)
          pureAcks += l.pureAcks();
      };
      std::apply([&](auto&... l) { (one(l), ...); }, loops);
    });
    return moved;
  };
  AckStreamPolicy policy(perCpu());
  const auto spin = std::chrono::microseconds(options_.busyPollMicros);
  while (running_.load(std::memory_order_relaxed)) {
    epoll_event events[n + 1];
    int got = epoll_wait(ep, events, int(n + 1), policy.waitMs());
    if (got < 0 && errno != EINTR) break;
    if (got == 0) policy.idle();
    std::fill(ready, ready + n + 1, false);
    for (int k = 0; k < got; k++) ready[events[k].data.u64] = true;
    if (!running_.load(std::memory_order_relaxed)) break;
    bool moved = batch(false);
    if (moved) policy.afterBatch(pureAcks);
    if (!moved || spin.count() == 0) continue;
    // Busy-poll a short while after traffic: a thread that sleeps in poll() pays a
    // wakeup (an IPI, expensive in a VM) for the next packet; request/response
    // traffic arrives again within tens of microseconds. An empty poll yields the
    // CPU, so on a machine with fewer cores than threads the spinner does not
    // starve the thread that has the packet.
    for (auto until = Clock::now() + spin;
         Clock::now() < until && running_.load(std::memory_order_relaxed);)
      if (batch(true))
        until = Clock::now() + spin;
      else
        std::this_thread::yield();
  }
  for (int fd : watched) epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);  // a restart adds them afresh
}

template <class... Loops>
std::thread Dataplane::loopThread(std::string name, size_t slot, int queue) {
  return std::thread([this, name, slot, queue] {
    pthread_setname_np(pthread_self(), name.c_str());  // for top -H, perf and /proc/<pid>/task
    run<Loops...>(slot, queue);
  });
}

void Dataplane::start() {
  if (running_.exchange(true)) return;
  if (perCpu()) {
    // Worker q serves TUN queue q and receive socket q, which the steering fills
    // with what arrives on CPU queueCpus_[q]: it runs only there, so the kernel
    // wakes it on the CPU that has the packet.
    for (int q = 0; q < queues(); q++) {
      threads_.push_back(loopThread<TransmitLoop, ReceiveLoop, WgReceiveLoop>(
          "flatnet-cpu" + std::to_string(q), size_t(q), q));
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(queueCpus_[size_t(q)], &set);
      pthread_setaffinity_np(threads_.back().native_handle(), sizeof set, &set);
    }
    return;
  }
  if (options_.busyPollMicros > 0) {
    // A spinning thread holds a core: one thread for both directions spins one, not
    // two, and with half the spinners competing for the cores the one a packet needs
    // is more often running (bench mode flatnet-busypoll).
    threads_.push_back(loopThread<TransmitLoop, ReceiveLoop, WgReceiveLoop>("flatnet-txrx", 0, 0));
    return;
  }
  threads_.push_back(loopThread<TransmitLoop>("flatnet-tx", 0, 0));
  threads_.push_back(loopThread<ReceiveLoop, WgReceiveLoop>("flatnet-rx", 1, 0));
}

void Dataplane::joinLoops() {
  if (running_.exchange(false)) {
    uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof one) < 0) { /* eventfd cannot be full here */
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    // Reset the eventfd, or restarted loops would find it readable forever.
    if (read(wakeFd_, &one, sizeof one) < 0) { /* EAGAIN: already zero */
    }
  }
}

// Both loops use the TUN descriptor (transmit polls and reads it, receive writes
// it), so it is swapped with no loop running rather than under them: a reopen is
// rare (someone deleted the device) and costs one thread restart, a few ms.
int Dataplane::reopenTun(const char** where) {
  bool wasRunning = running_.load();
  joinLoops();
  closeTun(&tun_);
  int err = openTun(options_.tunName, options_.offloads, queueCpus_, &tun_, where);
  tunError_.store(0, std::memory_order_relaxed);
  // On failure the loops still run on closed queues (receive counts tun_write drops)
  // and the caller retries.
  if (err) tun_.fds.assign(size_t(queues()), -1);
  if (wasRunning) start();
  return err;
}

int Dataplane::handTo(const std::string& path, const char** where) {
  if (batonWrite_ >= 0) close(batonWrite_), batonWrite_ = -1;  // an earlier, failed handover's
  int pipeFds[2];
  if (pipe2(pipeFds, O_CLOEXEC) < 0) return *where = "pipe2", errno;
  std::vector<int> fds = tun_.fds;
  fds.insert(fds.end(), rxFds_.begin(), rxFds_.end());
  fds.insert(fds.end(), wgFds_.begin(), wgFds_.end());
  fds.push_back(pipeFds[0]);
  int err = sendDescriptors(path, fds, where);
  close(pipeFds[0]);
  if (err) return close(pipeFds[1]), err;
  batonWrite_ = pipeFds[1];
  return 0;
}

int Dataplane::handOff(bool passSessions) {
  joinLoops();
  if (batonWrite_ < 0) return EBADF;
  // The baton: 1; or 2, the length of the sessions' state (32 bits, little-endian) and the
  // state, which the successor's first thread applies before any of them moves a packet.
  uint8_t head[5] = {kBatonPlain};
  std::vector<uint8_t> state;
  if (passSessions && wg_) {
    state = wg_->exportState();
    head[0] = kBatonSessions;
    putLe32(head + 1, uint32_t(state.size()));
  }
  // Blocking, and past the pipe's 64 KiB: the successor's thread reads as it arrives. EPIPE,
  // not SIGPIPE, if it died: Node ignores the signal.
  bool ok = head[0] == kBatonPlain ? writeFully(batonWrite_, head, 1)
                                   : writeFully(batonWrite_, head, 5) &&
                                         writeFully(batonWrite_, state.data(), state.size());
  int err = ok ? 0 : errno;
  close(batonWrite_);
  batonWrite_ = -1;
  return err;
}

// A successor's thread waits here for the predecessor's threads to stop (the baton
// written) or for the predecessor to die (its end closed: EOF is readable too).
bool Dataplane::awaitBaton() {
  if (batonFd_ < 0 || batonTaken_.load()) return true;
  pollfd fds[2] = {{batonFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
  while (running_.load(std::memory_order_relaxed)) {
    int n = poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && fds[0].revents) break;
  }
  if (!running_.load(std::memory_order_relaxed)) return false;
  // The first thread here reads the baton (and applies the sessions' state); the others wait
  // for it. The predecessor closes its end once written: EOF, readable, lets any later pass.
  std::lock_guard<std::mutex> hold(batonLock_);
  if (!batonTaken_.load()) {
    takeBaton();
    batonTaken_.store(true);
  }
  return true;
}

void Dataplane::takeBaton() {
  uint8_t kind = 0;
  if (!readFully(batonFd_, &kind, 1) || kind != kBatonSessions) return;  // 1, or its death
  uint8_t length[4];
  if (!readFully(batonFd_, length, 4) || le32(length) > WgTable::kMaxStateBytes) return;
  std::vector<uint8_t> state(le32(length));
  if (readFully(batonFd_, state.data(), state.size()) && wg_)
    wg_->applyHanded(state.data(), state.size());
}

Adopted Dataplane::handoverState() const {
  Adopted a;
  a.tunFds = tun_.fds;
  a.rxFds = rxFds_;
  a.wgFds = wgFds_;
  a.queueCpus = queueCpus_;
  a.tunOffloads = tun_.offloads;
  a.tunSteeringErrno = tun_.steeringErrno;
  a.groOn = groOn_;
  a.perCpuErrno = perCpuErrno_;
  a.socketSteering = socketSteering_;
  a.socketSteeringErrno = socketSteeringErrno_;
  return a;
}

void Dataplane::stop() {
  joinLoops();
  closeTun(&tun_);
  for (int* fd : {&batonFd_, &batonWrite_})
    if (*fd >= 0) close(*fd), *fd = -1;
  if (wakeFd_ >= 0) close(wakeFd_), wakeFd_ = -1;
  for (std::vector<int>* fds : {&rxFds_, &txFds_, &wgFds_, &epollFds_}) {
    for (int fd : *fds) close(fd);
    fds->clear();
  }
}

void Dataplane::reclaim() {
  Retired retired = table_.takeRetired();
  if (wg_)
    for (auto& r : wg_->takeRetired()) retired.push_back(std::move(r));
  if (retired.empty()) return;  // only additions: nothing a worker could be holding
  synchronize(fib_, qs_.get(), readers_);
}  // retired is freed here

}  // namespace flatnet
