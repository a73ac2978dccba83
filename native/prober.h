// Node-to-node health probes (src/reach/): a TCP SYN to a port on a peer, answered by a
// SYN-ACK or a RST from the peer's kernel. Non-blocking connects watched by one thread's
// epoll, so a probe costs the kernel's work and no JavaScript object per packet.
#pragma once
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace flatnet {

struct ProbeResult {
  uint32_t id;
  bool answered;       // SYN-ACK or RST came back
  uint32_t rttMicros;  // from connect() to the answer (or the error)
  int err;  // 0 (connected), ECONNREFUSED (RST), else why no answer (ETIMEDOUT, EHOSTUNREACH, ...)
};

class Prober {
 public:
  explicit Prober(int timeoutMs) : timeoutNs_(int64_t(timeoutMs) * 1000000) {}
  ~Prober() { stop(); }
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // 0, or -errno when the epoll or its thread cannot be made.
  int start();
  // Opens a probe from src to dst:port (4 or 16 bytes each); its result comes from take().
  void probe(uint32_t id, int family, const uint8_t* dst, const uint8_t* src, uint16_t port);
  std::vector<ProbeResult> take();
  void stop();

 private:
  struct Pending {
    uint32_t id;
    int64_t startNs;
  };
  struct Deadline {
    int64_t atNs;
    int fd;
    uint32_t id;
  };
  void run();
  void finish(int fd, const Pending& p, int64_t now, int err);  // with mu_ held

  const int64_t timeoutNs_;
  int epfd_ = -1;
  int wakeFd_ = -1;
  bool stopping_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::unordered_map<int, Pending> pending_;  // by socket
  std::deque<Deadline> deadlines_;            // in send order: one timeout for all, so sorted
  std::vector<ProbeResult> results_;
};

}  // namespace flatnet
