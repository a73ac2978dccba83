#include "js_table.h"

#include <cstring>

#include "udp.h"

namespace flatnet {

IpAddr addrFromJs(const Napi::Value& v) {
  auto buf = v.As<Napi::Buffer<uint8_t>>();
  IpAddr a;
  a.family = buf.Length() == 16 ? 6 : 4;
  std::memcpy(a.bytes, buf.Data(), a.family == 6 ? 16 : 4);
  return a;
}

void macFromJs(const Napi::Value& v, uint8_t mac[6]) {
  std::memcpy(mac, v.As<Napi::Buffer<uint8_t>>().Data(), 6);
}

static Prefix prefixFromJs(const Napi::Object& o) {
  Prefix p;
  p.addr = addrFromJs(o.Get("address"));
  p.length = uint8_t(o.Get("length").As<Napi::Number>().Uint32Value());
  maskAddress(p.addr.family, p.addr.bytes, p.length);
  return p;
}

std::unique_ptr<Fib> fibFromJs(const Napi::Object& t, PeerCountersByName* counters) {
  auto fib = std::make_unique<Fib>();
  Napi::Array local = t.Get("local").As<Napi::Array>();
  for (uint32_t i = 0; i < local.Length(); i++) fib->addLocal(prefixFromJs(local.Get(i).As<Napi::Object>()));
  Napi::Array peers = t.Get("peers").As<Napi::Array>();
  PeerCountersByName kept;
  for (uint32_t i = 0; i < peers.Length(); i++) {
    Napi::Object p = peers.Get(i).As<Napi::Object>();
    Peer peer;
    peer.name = p.Get("name").As<Napi::String>().Utf8Value();
    peer.address = addrFromJs(p.Get("address"));
    peer.sockaddrLen = toSockaddr(peer.address, uint16_t(p.Get("port").As<Napi::Number>().Uint32Value()),
                                  &peer.sockaddr);
    macFromJs(p.Get("mac"), peer.mac);
    auto it = counters->find(peer.name);
    peer.counters = it != counters->end() ? it->second : std::make_shared<PeerCounters>();
    kept[peer.name] = peer.counters;
    Napi::Array cidrs = p.Get("cidrs").As<Napi::Array>();
    size_t index = fib->addPeer(std::move(peer));
    for (uint32_t j = 0; j < cidrs.Length(); j++)
      fib->addRoute(prefixFromJs(cidrs.Get(j).As<Napi::Object>()), index);
  }
  *counters = std::move(kept);
  return fib;
}

}  // namespace flatnet
