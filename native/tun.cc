#include "tun.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "steering.h"
#include "vnet_hdr.h"

namespace flatnet {

namespace {

int openQueue(const std::string& name, bool vnet, bool multi, std::string* named,
              const char** where) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return *where = "open /dev/net/tun", -errno;
  ifreq ifr{};
  ifr.ifr_flags =
      short(IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) | (multi ? IFF_MULTI_QUEUE : 0));
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return *where = "TUNSETIFF", -err;
  }
  *named = ifr.ifr_name;
  return fd;
}

}  // namespace

int openTun(const std::string& name, bool wantOffloads, const std::vector<int>& queueCpus,
            TunDevice* out, const char** where) {
  int queues = std::max(1, int(queueCpus.size()));
  out->fds.clear();
  out->vnetHdr = wantOffloads;
  out->offloads = 0;
  out->steeringErrno = 0;
  std::string named = name;
  for (int q = 0; q < queues; q++) {
    int fd = openQueue(named, wantOffloads, queues > 1, &named, where);
    if (fd < 0) return closeTun(out), -fd;
    out->fds.push_back(fd);
  }
  out->name = named;
  int fd = out->fds[0];
  if (queues > 1) out->steeringErrno = attachCpuSteering(fd, queueCpus, wantOffloads);
  if (!wantOffloads) return 0;
  // Device-wide settings: set through the first queue, they hold for all.
  int hdrSize = sizeof(VnetHdr);
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdrSize) < 0) {
    int err = errno;
    closeTun(out);
    return *where = "TUNSETVNETHDRSZ", err;
  }
  // Most capable first; older kernels reject the bits they do not know with EINVAL.
  const unsigned tries[] = {kTunCsum | kTunTso4 | kTunTso6 | kTunUso4 | kTunUso6,
                            kTunCsum | kTunTso4 | kTunTso6, kTunCsum, 0};
  for (unsigned flags : tries) {
    if (ioctl(fd, TUNSETOFFLOAD, flags) == 0) {
      out->offloads = flags;
      break;
    }
  }
  return 0;
}

int tunOf(int fd, std::string* name, bool* vnetHdr) {
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return errno;
  *name = ifr.ifr_name;
  *vnetHdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
  return 0;
}

void closeTun(TunDevice* tun) {
  for (int fd : tun->fds) close(fd);
  tun->fds.clear();
}

}  // namespace flatnet
