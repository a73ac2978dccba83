#include "tun.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vnet_hdr.h"

namespace flatnet {

int openTun(const std::string& name, bool wantOffloads, TunDevice* out, const char** where) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return *where = "open /dev/net/tun", errno;
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (wantOffloads ? IFF_VNET_HDR : 0);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return *where = "TUNSETIFF", err;
  }
  out->fd = fd;
  out->name = ifr.ifr_name;
  out->vnetHdr = wantOffloads;
  out->offloads = 0;
  if (!wantOffloads) return 0;
  int hdrSize = sizeof(VnetHdr);
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdrSize) < 0) {
    int err = errno;
    close(fd);
    out->fd = -1;
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

}  // namespace flatnet
