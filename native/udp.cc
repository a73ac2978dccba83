#include "udp.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <vector>

#ifndef UDP_GRO
#define UDP_GRO 104  // include/uapi/linux/udp.h
#endif

namespace flatnet {

namespace {
constexpr int kSendBuffer = 4 << 20;
// The receive socket absorbs bursts from every peer while its one thread writes to
// the TUN; at 4 MB the soak test saw receive-buffer overflows (RcvbufErrors).
constexpr int kReceiveBuffer = 32 << 20;

int fail(int fd, const char* step, const char** where) {
  int err = errno;
  if (fd >= 0) close(fd);
  *where = step;
  return -err;
}

int bindTo(const IpAddr& local, uint16_t port, int nonblock, int buffer, bool reusePort,
           const char** where) {
  int family = local.family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | nonblock, 0);
  if (fd < 0) return fail(-1, "socket", where);
  int one = 1;
  if (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    return fail(fd, "SO_REUSEPORT", where);
  sockaddr_storage sa;
  socklen_t len = toSockaddr(local, port, &sa);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) return fail(fd, "bind", where);
  // Buffers sized for bursts of 64 KB GSO sends; FORCE works for root/NET_ADMIN past
  // net.core.[rw]mem_max, the plain option is the fallback for the rest. 0: a probe.
  if (buffer)
    for (int opt : {SO_SNDBUFFORCE, SO_RCVBUFFORCE})
      if (setsockopt(fd, SOL_SOCKET, opt, &buffer, sizeof buffer) < 0)
        setsockopt(fd, SOL_SOCKET, opt == SO_SNDBUFFORCE ? SO_SNDBUF : SO_RCVBUF, &buffer,
                   sizeof buffer);
  return fd;
}
}  // namespace

socklen_t toSockaddr(const IpAddr& addr, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (addr.family == 6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(out);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, addr.bytes, 16);
    return sizeof(sockaddr_in6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(out);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  std::memcpy(&s4->sin_addr, addr.bytes, 4);
  return sizeof(sockaddr_in);
}

IpAddr fromSockaddr(const sockaddr_storage& sa) {
  IpAddr a;
  if (sa.ss_family == AF_INET6) {
    a.family = 6;
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in6&>(sa).sin6_addr, 16);
  } else {
    a.family = 4;
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in&>(sa).sin_addr, 4);
  }
  return a;
}

int openUdpReceive(const IpAddr& local, uint16_t port, bool gro, bool reusePort, bool* groOn,
                   const char** where) {
  int fd = bindTo(local, port, SOCK_NONBLOCK, kReceiveBuffer, reusePort, where);
  if (fd < 0) return fd;
  int one = 1;
  *groOn = gro && setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0;
  return fd;
}

// Classic BPF for the reuseport group: the index of the CPU the datagram is received
// on in queueCpus (compared one by one: classic BPF has no maps), else that CPU
// modulo the number of sockets; the kernel delivers to the group's socket at that
// index (bind order), so the worker pinned to that CPU gets it.
int steerByCpu(int fd, const std::vector<int>& queueCpus) {
  std::vector<sock_filter> code{
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, uint32_t(SKF_AD_OFF + SKF_AD_CPU)}};
  for (size_t q = 0; q < queueCpus.size(); q++) {
    code.push_back({BPF_JMP | BPF_JEQ | BPF_K, 0, 1, uint32_t(queueCpus[q])});
    code.push_back({BPF_RET | BPF_K, 0, 0, uint32_t(q)});
  }
  code.push_back({BPF_ALU | BPF_MOD | BPF_K, 0, 0, uint32_t(queueCpus.size())});
  code.push_back({BPF_RET | BPF_A, 0, 0, 0});
  sock_fprog prog{uint16_t(code.size()), code.data()};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0 ? errno : 0;
}

int claimPort(const IpAddr& local, uint16_t port, const char** where) {
  int fd = bindTo(local, port, 0, 0, false, where);
  if (fd < 0) return fd;
  close(fd);
  return 0;
}

int localPort(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) return -1;
  if (sa.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6&>(sa).sin6_port);
  if (sa.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(sa).sin_port);
  return -1;
}

namespace {
// DF set, the path MTU cache not used: a tunnel endpoint must not fragment.
int dontFragment(int fd, const IpAddr& local, const char** where) {
  int probe = local.family == 6 ? IPV6_PMTUDISC_PROBE : IP_PMTUDISC_PROBE;
  if (local.family == 6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe, sizeof probe)
                        : setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof probe))
    return fail(fd, "IP_MTU_DISCOVER", where);
  return fd;
}
}  // namespace

int openUdpSend(const IpAddr& local, const char** where) {
  int fd = bindTo(local, 0, 0, kSendBuffer, false, where);
  return fd < 0 ? fd : dontFragment(fd, local, where);
}

int openUdpWireGuard(const IpAddr& local, uint16_t port, bool gro, bool reusePort, bool* groOn,
                     const char** where) {
  int fd = openUdpReceive(local, port, gro, reusePort, groOn, where);
  return fd < 0 ? fd : dontFragment(fd, local, where);
}

}  // namespace flatnet
