// One node's data plane: the TUN, the underlay sockets, the two packet loops on
// native threads (one each, or both on one thread when busy-polling, or both on one
// thread per CPU with per-cpu workers), and the forwarding table they share. The control
// plane talks to it through a narrow surface (table changes, stats, stop); nothing
// calls back into JavaScript from here.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "counters.h"
#include "fib.h"
#include "qsbr.h"
#include "tun.h"
#include "vxlan.h"
#include "wg_table.h"

namespace flatnet {

struct DataplaneOptions {
  std::string tunName;
  bool offloads = true;  // vnet header + TSO/USO on the TUN, UDP GSO and GRO on the underlay
  IpAddr underlay;
  uint16_t port = 8472;
  Vtep vtep{};
  int sendSockets = 16;    // outer source ports available to the flow hash
  int batch = 32;          // packets per wakeup before the loops yield to a send/write
  int busyPollMicros = 0;  // keep polling this long after the last packet before sleeping
  // perCpu: a worker per CPU, pinned, each with its own TUN queue and receive
  // socket, both steered by CPU: a flow is carried on the CPU it was sent on (bulk:
  // the next one) and received on, with no wakeup crossing CPUs (the cost that
  // dominates round trips in a VM). automatic: perCpu where there are two CPUs or
  // more and the TUN's steering program loads (it needs CAP_BPF), else the pipeline:
  // without the program flows reach workers by hash, often on another CPU than
  // their sender's, and round trips are slower than the pipeline's.
  enum class Workers { pipeline, perCpu, automatic };
  Workers workers = Workers::pipeline;
  // Bytes the workers' packet buffers may take (0: no bound): per-cpu gets a worker
  // for only as many CPUs as that holds (at least two), so a container's memory
  // limit does not kill the daemon on a node with many CPUs.
  size_t memoryBudget = 0;
  size_t mtu = 0;  // the TUN's: a partial TCP super-packet received whole is cut to it (0: never)
  // WireGuard's UDP port on the underlay address (0: off): a socket per queue, bound to it, that
  // receives transport and handshake messages and sends what is sealed for WireGuard peers.
  uint16_t wgPort = 0;
};

// The CPUs per-cpu workers run on: the allowed ones in order, as many as budget holds
// at perWorker bytes each (at least two; budget 0: all). The others' flows go to the
// worker of queue cpu % workers (steering.cc queueOfCpu), as for a CPU outside the cpuset.
std::vector<int> workerCpus(std::vector<int> allowed, size_t budget, size_t perWorker);

// A running data plane's descriptors and what they were opened with, as its
// predecessor hands them over (handover.h): the successor runs on them unchanged.
struct Adopted {
  std::vector<int> tunFds, rxFds;  // per queue
  std::vector<int> wgFds;          // per queue, or none (WireGuard off)
  std::vector<int> queueCpus;      // per-cpu: queue q's CPU; empty: the pipeline
  unsigned tunOffloads = 0;
  int tunSteeringErrno = 0;
  bool groOn = false;
  int perCpuErrno = 0;
  std::string socketSteering = "none";
  int socketSteeringErrno = 0;
  // The read end of the predecessor's baton pipe: the packet threads start once it is
  // readable (the predecessor's threads have stopped, or it died), so that no two
  // threads ever read one queue. -1: start at once.
  int batonFd = -1;
};

class Dataplane {
 public:
  ~Dataplane();
  // Opens the TUN and the sockets. Returns 0 or an errno, *where naming the step.
  int open(const DataplaneOptions& options, const char** where);
  // Runs on a predecessor's descriptors instead (the layout they were opened with;
  // their steering programs stay attached). Takes them: on an error they are closed.
  int adopt(const DataplaneOptions& options, const Adopted& from, const char** where);
  // What a successor's adopt() needs besides the descriptors.
  Adopted handoverState() const;
  // Passes the TUN queues, the receive sockets and a baton pipe's read end to the
  // successor listening at path; the threads go on. Returns 0 or an errno.
  int handTo(const std::string& path, const char** where);
  // Stops the packet threads and passes the baton: the successor's threads start.
  // Returns 0, or an errno (EPIPE: the successor is gone; start() resumes).
  // passSessions: the successor takes WireGuard's sessions (WgTable::exportState, after the
  // join, in the baton pipe before the baton).
  int handOff(bool passSessions);
  // Started on a predecessor's descriptors, and no thread has taken its baton yet.
  bool takingOver() const { return batonFd_ >= 0 && !batonTaken_.load(); }
  void start();
  void stop();  // idempotent; joins the threads and closes every descriptor
  // Replaces the TUN descriptor (the device was deleted by someone else): joins the
  // loops, reopens the TUN by name, clears tunError and restarts the loops. Returns
  // 0 or an errno, *where naming the step. The UDP sockets, table and counters stay.
  int reopenTun(const char** where);
  // The forwarding table, changed in place by its one writer (the JavaScript thread);
  // the workers see each change as it is made. Call reclaim() after a batch of changes.
  Fib& table() { return table_; }
  // Frees what the table's changes retired, once no worker can still hold it: waits
  // for each busy worker to finish its current batch.
  void reclaim();

  const DataplaneOptions& options() const { return options_; }
  const TunDevice& tun() const { return tun_; }
  // Queues: TUN queues = receive sockets = workers with per-cpu workers, else 1.
  int queues() const { return int(rxFds_.size()); }
  bool perCpu() const { return !queueCpus_.empty(); }
  // CPUs the daemon may run on; per-cpu has fewer workers when the memory budget says so.
  int allowedCpuCount() const { return allowedCpus_; }
  // Why automatic workers are the pipeline: the steering program's load errno (0: they are not).
  int perCpuErrno() const { return perCpuErrno_; }
  // per-cpu: how the receive sockets are picked ("flow", "cpu" per datagram without
  // CAP_BPF, "hash" if even that failed), and why not by flow (0: they are).
  const char* socketSteering() const { return socketSteering_; }
  int socketSteeringErrno() const { return socketSteeringErrno_; }
  bool udpGroOn() const { return groOn_; }
  bool udpGsoOn() const { return gsoOn_.load(std::memory_order_relaxed); }
  int udpGsoErrno() const { return gsoErrno_.load(std::memory_order_relaxed); }
  int tunError() const { return tunError_.load(std::memory_order_relaxed); }

  // WireGuard's sessions and handshake queue, or null (off). Changed by the table's writer.
  WgTable* wg() { return wg_.get(); }
  // The WireGuard socket of queue q: what sends from JavaScript (handshakes, keepalives) use too.
  int wgFd(int queue) const { return wgFds_.empty() ? -1 : wgFds_[size_t(queue)]; }

  // Each queue's counters, written by the one thread that runs its loop.
  WorkerCounters& txCounters(int queue) { return tx_[size_t(queue)]; }
  WorkerCounters& rxCounters(int queue) { return rx_[size_t(queue)]; }

 private:
  friend class TransmitLoop;
  friend class ReceiveLoop;
  friend class WgReceiveLoop;
  // The packet loop of one thread: waits on its loops' descriptors and runs their batches.
  template <class... Loops>
  void run(size_t slot, int queue);  // slot: the thread's Quiescence and epoll instance
  template <class... Loops>
  std::thread loopThread(std::string name, size_t slot, int queue);

  DataplaneOptions options_;
  TunDevice tun_;
  std::vector<int> queueCpus_;  // per-cpu: queue/worker q's CPU (the allowed ones, read by open())
  int perCpuErrno_ = 0;
  int allowedCpus_ = 0;
  std::vector<int> rxFds_;               // per queue
  const char* socketSteering_ = "none";  // one socket
  int socketSteeringErrno_ = 0;
  std::vector<int> txFds_;
  std::vector<int> wgFds_;  // per queue when WireGuard is on
  std::unique_ptr<WgTable> wg_;
  int wakeFd_ = -1;
  bool groOn_ = false;
  std::atomic<bool> gsoOn_{false};
  std::atomic<int> gsoErrno_{0};  // why UDP GSO was turned off, 0 if it was not
  std::atomic<int> tunError_{0};  // last TUN read error (device gone), 0 if none
  std::atomic<bool> running_{false};
  int batonFd_ = -1;     // successor: the predecessor's pipe (Adopted::batonFd)
  int batonWrite_ = -1;  // predecessor: written (or closed by death) to let the successor run
  std::atomic<bool> batonTaken_{false};  // a thread got past batonFd_
  std::mutex batonLock_;                 // the first thread past it reads what the pipe holds
  bool awaitBaton();                     // false: stopped while waiting
  void takeBaton();
  Fib table_;
  std::atomic<const Fib*> fib_{&table_};  // never changes; what the workers' QSBR handshake loads
  std::unique_ptr<WorkerCounters[]> tx_, rx_;  // per queue
  std::unique_ptr<Quiescence[]> qs_;           // per thread (at most max(2, queues))
  std::vector<int> epollFds_;                  // per thread, as qs_
  size_t readers_ = 0;
  // flatnet-tx + flatnet-rx, or one flatnet-txrx when busy-polling, or flatnet-cpu<N> each
  std::vector<std::thread> threads_;
  void joinLoops();  // stops the threads only; descriptors stay open
  int openCommon(const char** where);
  int openWgSockets(size_t queues, const char** where);
};

}  // namespace flatnet
