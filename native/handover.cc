#include "handover.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace flatnet {

namespace {

// Each message: this header, then its descriptors as one SCM_RIGHTS item. The kernel
// takes at most SCM_MAX_FD (253) per message (include/net/scm.h); a per-cpu data plane
// on 256 CPUs has 512.
constexpr uint32_t kMagic = 0x464c4e48;  // "FLNH"
constexpr size_t kPerMessage = 250;
struct Header {
  uint32_t magic;
  uint32_t total;  // descriptors in the whole transfer
  uint32_t here;   // in this message
};

int unixAddress(const std::string& path, sockaddr_un* sa, const char** where) {
  std::memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (path.size() >= sizeof sa->sun_path)
    return *where = "handover socket path too long", ENAMETOOLONG;
  std::memcpy(sa->sun_path, path.c_str(), path.size());
  return 0;
}

int fail(int fd, const char* step, const char** where) {
  int err = errno;
  if (fd >= 0) close(fd);
  *where = step;
  return err;
}

// Waits until fd is readable, within what is left of the deadline.
int waitReadable(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, int(left.count()));
    if (n > 0) return 0;
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

int listenHandover(const std::string& path, const char** where) {
  sockaddr_un sa;
  if (int err = unixAddress(path, &sa, where)) return -err;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -fail(-1, "socket(AF_UNIX)", where);
  unlink(path.c_str());
  // Restricted between bind and listen, when nobody can connect yet: only the node's own
  // daemon (root, in the same socket directory) may pass descriptors. Not by umask, which
  // is the whole process's and would narrow files other threads create meanwhile.
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    return -fail(fd, "bind handover socket", where);
  if (chmod(path.c_str(), 0600) < 0) return -fail(fd, "chmod handover socket", where);
  if (listen(fd, 1) < 0) return -fail(fd, "listen handover socket", where);
  return fd;
}

int sendDescriptors(const std::string& path, const std::vector<int>& fds, const char** where) {
  sockaddr_un sa;
  if (int err = unixAddress(path, &sa, where)) return err;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(-1, "socket(AF_UNIX)", where);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    return fail(fd, "connect to the successor", where);
  size_t sent = 0;
  do {  // at least one message: a transfer of no descriptors still says so
    size_t here = std::min(kPerMessage, fds.size() - sent);
    Header h{kMagic, uint32_t(fds.size()), uint32_t(here)};
    iovec iov{&h, sizeof h};
    alignas(cmsghdr) char control[CMSG_SPACE(kPerMessage * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (here) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(here * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(here * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data() + sent, here * sizeof(int));
    }
    ssize_t n;
    do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != ssize_t(sizeof h)) return fail(fd, "sendmsg(SCM_RIGHTS)", where);
    sent += here;
  } while (sent < fds.size());
  close(fd);
  return 0;
}

int receiveDescriptors(int listenFd, int timeoutMs, std::vector<int>* fds, const char** where) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  fds->clear();
  if (int err = waitReadable(listenFd, deadline)) return *where = "wait for the predecessor", err;
  int conn = accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (conn < 0) return fail(-1, "accept handover connection", where);
  // Only root (or our own uid) may hand us a data plane.
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
      (cred.uid != 0 && cred.uid != getuid())) {
    close(conn);
    return *where = "handover from another user", EPERM;
  }
  auto drop = [&](const char* step, int err) {
    for (int fd : *fds) close(fd);
    fds->clear();
    close(conn);
    *where = step;
    return err;
  };
  // Non-blocking, read as it comes: a client that sends half a message and stalls must
  // meet the deadline, not hold a blocking read. The descriptors ride on a message's
  // first byte.
  uint32_t total = 0;
  do {
    Header h{};
    size_t got = 0;
    while (got < sizeof h) {
      if (int err = waitReadable(conn, deadline)) return drop("wait for descriptors", err);
      iovec iov{reinterpret_cast<char*>(&h) + got, sizeof h - got};
      alignas(cmsghdr) char control[CMSG_SPACE(kPerMessage * sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) return drop("recvmsg(SCM_RIGHTS)", errno);
      // Whatever arrived is ours to close, even in a message we then refuse.
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const int* in = reinterpret_cast<const int*>(CMSG_DATA(c));
        fds->insert(fds->end(), in, in + count);
      }
      if (msg.msg_flags & MSG_CTRUNC) return drop("malformed handover message", EPROTO);
      if (n == 0) return drop("predecessor closed the handover connection", ECONNRESET);
      got += size_t(n);
    }
    if (h.magic != kMagic || h.here > kPerMessage)
      return drop("malformed handover message", EPROTO);
    total = h.total;
    if (fds->size() > total) return drop("malformed handover message", EPROTO);
  } while (fds->size() < total);
  close(conn);
  return 0;
}

}  // namespace flatnet
