// The TUN device (Documentation/networking/tuntap.rst): opened on /dev/net/tun
// directly, since flatnet carries no tuntap library.
#pragma once
#include <string>
#include <vector>

namespace flatnet {

// TUNSETOFFLOAD bits (include/uapi/linux/if_tun.h); USO arrived in Linux 6.2,
// after the headers some build hosts carry, so they are spelled out here.
constexpr unsigned kTunCsum = 0x01, kTunTso4 = 0x02, kTunTso6 = 0x04, kTunUso4 = 0x20,
                   kTunUso6 = 0x40;

struct TunDevice {
  std::vector<int> fds;   // one per queue; a single queue unless opened multi-queue
  std::string name;       // as the kernel named it
  bool vnetHdr = false;   // every read/write carries a virtio_net_hdr
  unsigned offloads = 0;  // TUNSETOFFLOAD bits the kernel accepted
  int steeringErrno = 0;  // multi-queue: why packets are not steered by CPU, 0 if they are
};

// Opens (or attaches to an existing persistent) TUN named name, IFF_TUN|IFF_NO_PI,
// non-blocking, with a queue per CPU in queueCpus (IFF_MULTI_QUEUE when more than
// one; empty: a single queue). With wantOffloads, adds IFF_VNET_HDR and asks for
// checksum, TSO and USO offloads, dropping USO and then TSO when the kernel refuses
// them. A multi-queue device gets a steering program that keeps each flow on the
// queue of the CPU it started on (queue q is queueCpus[q]'s; bulk flows move once to
// another queue, the next one first, see steering.cc); without it (no BPF) the kernel
// spreads flows by hash.
// Returns 0 or an errno, with *where naming the step that failed.
int openTun(const std::string& name, bool wantOffloads, const std::vector<int>& queueCpus,
            TunDevice* out, const char** where);
// Closes every queue.
void closeTun(TunDevice* tun);
// The device a TUN queue descriptor is attached to (TUNGETIFF): its name and whether
// it carries a vnet header. Returns 0 or an errno (EBADFD: not attached).
int tunOf(int fd, std::string* name, bool* vnetHdr);

}  // namespace flatnet
