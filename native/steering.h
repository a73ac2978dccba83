// How a multi-queue TUN and the VTEP port's reuseport group pick the queue, so the
// worker pinned to a CPU gets the flows that start on it (see steering.cc for the rules and why).
#pragma once
#include <vector>

namespace flatnet {

// Loads the steering program and attaches it to the TUN of tunFd (any queue), whose
// queue q is served on CPU queueCpus[q]. moveBursts: a fast small-packet flow moves to
// another CPU too, as a super-packet's does (worth it only with offloads, where such
// packets travel in GSO trains). Returns 0 or an errno (EPERM without CAP_BPF: the
// kernel then picks by flow hash).
int attachCpuSteering(int tunFd, const std::vector<int>& queueCpus, bool moveBursts);
// Loads that program without attaching it (tests run it with BPF_PROG_TEST_RUN).
// Returns 0 and *progFd, or an errno.
int loadCpuSteering(const std::vector<int>& queueCpus, bool moveBursts, int* progFd);
// Makes the reuseport group of rxFds (socket q served on CPU queueCpus[q]) keep each
// flow on the socket of the CPU it arrives on first, following it to another CPU only
// once it arrives nowhere else. Returns 0 or an errno (EPERM without CAP_BPF: then
// udp.cc steerByCpu, per datagram).
int attachFlowSteering(const std::vector<int>& rxFds, const std::vector<int>& queueCpus);

}  // namespace flatnet
