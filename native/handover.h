// Handing the data plane's descriptors to a successor daemon on the same node
// (SCM_RIGHTS, unix(7)): the TUN queues and the receive sockets stay open across an
// update, so what the kernel queues on them meanwhile is read by the successor, not
// dropped with a closed device.
#pragma once
#include <string>
#include <vector>

namespace flatnet {

// Listens on a unix stream socket at path (replacing a stale one), mode 0600.
// Returns the fd, or -errno with *where naming the step.
int listenHandover(const std::string& path, const char** where);
// Connects to path and passes fds (in messages of at most SCM_MAX_FD). Returns 0 or
// an errno, *where naming the step.
int sendDescriptors(const std::string& path, const std::vector<int>& fds, const char** where);
// Accepts one connection on listenFd within timeoutMs and receives every descriptor
// it passes (close-on-exec). Returns 0 or an errno, *where naming the step; on an
// error no descriptor is left open.
int receiveDescriptors(int listenFd, int timeoutMs, std::vector<int>* fds, const char** where);

}  // namespace flatnet
