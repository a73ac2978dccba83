#include "js_table.h"

#include <cstring>
#include <string>
#include <unordered_set>

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

static std::vector<Prefix> prefixesFromJs(const Napi::Array& a) {
  std::vector<Prefix> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object o = a.Get(i).As<Napi::Object>();
    Prefix& p = out[i];
    p.addr = addrFromJs(o.Get("address"));
    p.length = uint8_t(o.Get("length").As<Napi::Number>().Uint32Value());
    maskAddress(p.addr.family, p.addr.bytes, p.length);
  }
  return out;
}

// Sets one { name, address, port, mac, cidrs, encryption?, wgPort? }; returns its name.
static std::string setPeerFromJs(Fib* fib, const Napi::Object& p) {
  Peer peer;
  peer.name = p.Get("name").As<Napi::String>().Utf8Value();
  peer.address = addrFromJs(p.Get("address"));
  peer.sockaddrLen = toSockaddr(
      peer.address, uint16_t(p.Get("port").As<Napi::Number>().Uint32Value()), &peer.sockaddr);
  macFromJs(p.Get("mac"), peer.mac);
  Napi::Value encryption = p.Get("encryption");
  if (encryption.IsString()) {
    std::string e = encryption.As<Napi::String>().Utf8Value();
    if (e == "wireguard") {
      peer.encryption = Peer::Encryption::wireguard;
      peer.wgSockaddrLen =
          toSockaddr(peer.address, uint16_t(p.Get("wgPort").As<Napi::Number>().Uint32Value()),
                     &peer.wgSockaddr);
    } else if (e == "blocked") {
      peer.encryption = Peer::Encryption::blocked;
    }
  }
  std::string name = peer.name;
  fib->setPeer(std::move(peer), prefixesFromJs(p.Get("cidrs").As<Napi::Array>()));
  return name;
}

void setTableFromJs(Fib* fib, const Napi::Object& t) {
  fib->setLocal(prefixesFromJs(t.Get("local").As<Napi::Array>()));
  Napi::Array peers = t.Get("peers").As<Napi::Array>();
  std::unordered_set<std::string> present;
  for (uint32_t i = 0; i < peers.Length(); i++)
    present.insert(setPeerFromJs(fib, peers.Get(i).As<Napi::Object>()));
  std::vector<std::string> absent;
  fib->forEachPeer([&](const Peer& p) {
    if (!present.count(p.name)) absent.push_back(p.name);
  });
  for (const std::string& name : absent) fib->removePeer(name);
}

void updatePeersFromJs(Fib* fib, const Napi::Object& changes) {
  Napi::Array set = changes.Get("set").As<Napi::Array>();
  for (uint32_t i = 0; i < set.Length(); i++) setPeerFromJs(fib, set.Get(i).As<Napi::Object>());
  Napi::Array remove = changes.Get("remove").As<Napi::Array>();
  for (uint32_t i = 0; i < remove.Length(); i++)
    fib->removePeer(remove.Get(i).As<Napi::String>().Utf8Value());
}

std::unique_ptr<Fib> fibFromJs(const Napi::Object& table) {
  auto fib = std::make_unique<Fib>();
  setTableFromJs(fib.get(), table);
  return fib;
}

}  // namespace flatnet
