// The underlay UDP sockets: one bound to the VTEP port for receiving, and a small
// pool bound to ephemeral ports for sending, so that the outer source port can
// follow a hash of the inner flow (RFC 7348 section 5: entropy for ECMP/RSS) while
// each socket keeps UDP GSO. Sockets are created here; the packet loops in worker.cc.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "packet.h"

namespace flatnet {

// Opens a UDP socket on the underlay address and port (0 = ephemeral).
// receive: non-blocking, large buffer, UDP_GRO requested when gro is set; with
// reusePort, one of a group bound to the same port (one per worker).
// send: blocking (back-pressure to the TUN queue), large buffer, DF set without
// using the path MTU cache (IP_PMTUDISC_PROBE: VTEPs must not fragment).
// Returns the fd, or -errno with *where naming the step.
int openUdpReceive(const IpAddr& local, uint16_t port, bool gro, bool reusePort, bool* groOn,
                   const char** where);
// Makes the reuseport group of fd (a socket per CPU in queueCpus, bound in that
// order) deliver each datagram to the socket of the CPU it arrives on; a CPU not in
// queueCpus goes to socket CPU % size. Needs no capability: the fallback for
// steering.cc attachFlowSteering, which keeps a flow on one socket. Returns 0 or an errno.
int steerByCpu(int fd, const std::vector<int>& queueCpus);
// Checks that no other socket holds the VTEP port, by binding it once without
// SO_REUSEPORT. A reuseport group (and a multi-queue TUN) would otherwise take in a
// second daemon started on the same node, and share the traffic with it.
// Returns 0 or -errno (EADDRINUSE) with *where naming the step.
int claimPort(const IpAddr& local, uint16_t port, const char** where);
int openUdpSend(const IpAddr& local, const char** where);
// WireGuard's socket on its port: it receives (as openUdpReceive) and sends (as openUdpSend,
// but from the port peers answer to: WireGuard peers send to where a message came from).
// Non-blocking: a sender that finds its buffer full waits for room (worker.cc sendRun).
int openUdpWireGuard(const IpAddr& local, uint16_t port, bool gro, bool reusePort, bool* groOn,
                     const char** where);
// The local port a socket is bound to, or -1.
int localPort(int fd);

// Fills a sockaddr for addr/port; returns its length.
socklen_t toSockaddr(const IpAddr& addr, uint16_t port, sockaddr_storage* out);
// Reads the address of a received datagram's source.
IpAddr fromSockaddr(const sockaddr_storage& sa);

}  // namespace flatnet
