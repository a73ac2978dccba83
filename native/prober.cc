#include "prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clock.h"

namespace flatnet {
namespace {

socklen_t sockaddrOf(int family, const uint8_t* addr, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, addr, 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, addr, 16);
  return sizeof(sockaddr_in6);
}

// A connected probe is closed with a RST (SO_LINGER 0): thousands a second leave no
// TIME_WAIT behind (RFC 9293 3.6; net/ipv4/tcp.c __tcp_close with linger 0).
void closeProbe(int fd, bool connected) {
  if (connected) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(fd);
}

}  // namespace

int Prober::start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return -errno;
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) return -errno;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wakeFd_;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakeFd_, &ev) < 0) return -errno;
  thread_ = std::thread([this] { run(); });
  return 0;
}

void Prober::probe(uint32_t id, int family, const uint8_t* dst, const uint8_t* src, uint16_t port) {
  int64_t start = monotonicNs();
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  sockaddr_storage sa;
  if (!err && bind(fd, reinterpret_cast<sockaddr*>(&sa), sockaddrOf(family, src, 0, &sa)) < 0)
    err = errno;
  int rc = -1;
  if (!err) {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sockaddrOf(family, dst, port, &sa));
    if (rc < 0 && errno != EINPROGRESS) err = errno;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (err || rc == 0) {  // decided at once: a local peer's RST, no route, no socket
    results_.push_back(
        {id, err == 0 || err == ECONNREFUSED, uint32_t((monotonicNs() - start) / 1000), err});
    if (fd >= 0) closeProbe(fd, rc == 0);
    return;
  }
  pending_[fd] = {id, start};
  bool wasEmpty = deadlines_.empty();
  deadlines_.push_back({start + timeoutNs_, fd, id});
  epoll_event ev{};
  ev.events = EPOLLOUT | EPOLLERR | EPOLLHUP;
  ev.data.fd = fd;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  if (wasEmpty) {  // the thread may sleep without a deadline: give it this one
    uint64_t one = 1;
    (void)!write(wakeFd_, &one, sizeof(one));
  }
}

std::vector<ProbeResult> Prober::take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ProbeResult> out;
  out.swap(results_);
  return out;
}

void Prober::finish(int fd, const Pending& p, int64_t now, int err) {
  results_.push_back(
      {p.id, err == 0 || err == ECONNREFUSED, uint32_t((now - p.startNs) / 1000), err});
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  closeProbe(fd, err == 0);
}

void Prober::run() {
  epoll_event events[256];
  for (;;) {
    int waitMs = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      if (!deadlines_.empty()) {
        int64_t left = deadlines_.front().atNs - monotonicNs();
        waitMs = left <= 0 ? 0 : int(left / 1000000) + 1;
      }
    }
    int n = epoll_wait(epfd_, events, 256, waitMs);
    int64_t now = monotonicNs();
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == wakeFd_) {
        uint64_t v;
        (void)!read(wakeFd_, &v, sizeof(v));
        continue;
      }
      auto it = pending_.find(fd);
      if (it == pending_.end()) continue;
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      Pending p = it->second;
      pending_.erase(it);
      finish(fd, p, now, err);
    }
    // A socket's number is reused once closed: a deadline counts only for its own probe.
    while (!deadlines_.empty() && deadlines_.front().atNs <= now) {
      Deadline d = deadlines_.front();
      deadlines_.pop_front();
      auto it = pending_.find(d.fd);
      if (it == pending_.end() || it->second.id != d.id) continue;
      Pending p = it->second;
      pending_.erase(it);
      finish(d.fd, p, now, ETIMEDOUT);
    }
  }
}

void Prober::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || epfd_ < 0) return;
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!write(wakeFd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  for (auto& [fd, p] : pending_) close(fd);
  pending_.clear();
  deadlines_.clear();
  close(wakeFd_);
  close(epfd_);
  epfd_ = wakeFd_ = -1;
}

}  // namespace flatnet
