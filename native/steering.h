// How a multi-queue TUN picks the queue, so the worker pinned to a CPU gets the
// flows that start on it (see steering.cc for the rules and why).
#pragma once

namespace flatnet {

// Loads the steering program and attaches it to the TUN of tunFd (any queue).
// Returns 0 or an errno (EPERM without CAP_BPF: the kernel then picks by flow hash).
int attachCpuSteering(int tunFd);

}  // namespace flatnet
