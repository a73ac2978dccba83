// Raw Ethernet frames sent on an interface (AF_PACKET), for tests that play a hostile pod
// with NET_RAW: forged sources, ARP and neighbour advertisements claiming another pod's
// address, router advertisements. Run in the pod's namespace (a child process).
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "testing.h"

namespace flatnet {
namespace {

// sendFrames(ifname, frames[]) -> how many were sent; throws with errno's text when the
// interface or the socket cannot be had.
Napi::Value SendFrames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "sendFrames(ifname, frames[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  unsigned index = if_nametoindex(ifname.c_str());
  int fd = index ? socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0) : -1;
  if (fd < 0) {
    Napi::Error::New(env, ifname + ": " + std::strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(index);
  to.sll_halen = ETH_ALEN;
  Napi::Array frames = info[1].As<Napi::Array>();
  uint32_t sent = 0;
  for (uint32_t i = 0; i < frames.Length(); i++) {
    Napi::Value v = frames.Get(i);
    if (!v.IsBuffer()) continue;
    auto frame = v.As<Napi::Buffer<uint8_t>>();
    if (frame.Length() < ETH_HLEN) continue;
    std::memcpy(to.sll_addr, frame.Data(), ETH_ALEN);
    if (sendto(fd, frame.Data(), frame.Length(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
        static_cast<ssize_t>(frame.Length()))
      sent++;
  }
  close(fd);
  return Napi::Number::New(env, sent);
}

}  // namespace

void InitTestingRaw(Napi::Env env, Napi::Object testing) {
  testing.Set("sendFrames", Napi::Function::New(env, SendFrames, "sendFrames"));
}

}  // namespace flatnet
