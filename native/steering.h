// How a multi-queue TUN picks the queue, so the worker pinned to a CPU gets the
// flows that start on it (see steering.cc for the rules and why).
#pragma once
#include <vector>

namespace flatnet {

// Loads the steering program and attaches it to the TUN of tunFd (any queue), whose
// queue q is served on CPU queueCpus[q]. Returns 0 or an errno (EPERM without
// CAP_BPF: the kernel then picks by flow hash).
int attachCpuSteering(int tunFd, const std::vector<int>& queueCpus);
// Loads that program without attaching it (tests run it with BPF_PROG_TEST_RUN).
// Returns 0 and *progFd, or an errno.
int loadCpuSteering(const std::vector<int>& queueCpus, int* progFd);

}  // namespace flatnet
