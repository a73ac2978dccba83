#include "wg_js.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "clock.h"
#include "js_errors.h"
#include "js_table.h"
#include "udp.h"

namespace flatnet {

namespace {

// The peer named name if it is a WireGuard peer, or null (with no exception: the peer may have
// left the table, or its key, since the control plane decided).
const Peer* wgPeer(Dataplane& dp, const Napi::Value& name) {
  if (!dp.wg() || !name.IsString()) return nullptr;
  const Peer* p = dp.table().peerNamed(name.As<Napi::String>().Utf8Value());
  return p && p->wg ? p : nullptr;
}

bool sendFromWg(Dataplane& dp, const uint8_t* data, size_t len, const sockaddr_storage& to,
                socklen_t toLen) {
  int fd = dp.wgFd(0);
  return fd >= 0 && sendto(fd, data, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to),
                           toLen) == ssize_t(len);
}

// Sends what waited for a session to p, once one may send it: from the JavaScript thread, a
// datagram each (at most WgStaged::kPerPeer, once per handshake).
void flushStaged(Dataplane& dp, const Peer& p, int64_t nowNs) {
  if (p.wg->staged.empty() || !p.wg->maySend(nowNs)) return;
  size_t mtu = dp.options().mtu ? dp.options().mtu : 65535;
  std::vector<uint8_t> msg;
  for (const std::vector<uint8_t>& pkt : dp.wg()->unstage(*p.wg)) {
    msg.resize(WgSession::messageLength(pkt.size(), mtu));
    std::memcpy(msg.data() + kWgTransportHeader, pkt.data(), pkt.size());
    size_t len = p.wg->seal(msg.data(), pkt.size(), mtu, nowNs);
    if (len && sendFromWg(dp, msg.data(), len, p.wgSockaddr, p.wgSockaddrLen)) {
      p.counters->txPackets.add(1);
      p.counters->txBytes.add(pkt.size());
    }
  }
  p.wg->mark(kWgDataSent);
}

// The session of wgInstall's and wgHand's second argument, or null (a TypeError thrown).
std::unique_ptr<WgSession> sessionFromJs(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  Napi::Object s = info[1].As<Napi::Object>();
  WgSessionKeys keys;
  auto send = s.Get("send").As<Napi::Buffer<uint8_t>>();
  auto receive = s.Get("receive").As<Napi::Buffer<uint8_t>>();
  if (send.Length() != 32 || receive.Length() != 32) {
    Napi::TypeError::New(env, std::string(fn) + ": keys must be 32 bytes")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  std::memcpy(keys.send, send.Data(), 32);
  std::memcpy(keys.receive, receive.Data(), 32);
  // The session's age runs from now: Reject-After-Time counts from the handshake, which the
  // control plane completed just before this call (a handed session's comes with its state).
  return std::make_unique<WgSession>(s.Get("localIndex").As<Napi::Number>().Uint32Value(),
                                     s.Get("remoteIndex").As<Napi::Number>().Uint32Value(), keys,
                                     s.Get("initiator").As<Napi::Boolean>().Value(), monotonicNs());
}

}  // namespace

Napi::Value wgInstall(Dataplane& dp, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Peer* p = wgPeer(dp, info[0]);
  if (!p) return Napi::Boolean::New(env, false);
  std::unique_ptr<WgSession> session = sessionFromJs(info, "wgInstall");
  if (!session) return env.Undefined();
  dp.wg()->install(std::move(session), p->wg, p->counters);
  dp.reclaim();
  flushStaged(dp, *p, monotonicNs());
  return Napi::Boolean::New(env, true);
}

Napi::Value wgHand(Dataplane& dp, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Peer* p = wgPeer(dp, info[0]);
  if (!p) return Napi::Boolean::New(env, false);
  std::unique_ptr<WgSession> session = sessionFromJs(info, "wgHand");
  if (!session) return env.Undefined();
  dp.wg()->hand(std::move(session), p->wg, p->counters);
  return Napi::Boolean::New(env, true);
}

Napi::Value wgHanded(Dataplane& dp, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  if (!dp.wg()) return out;
  uint32_t i = 0;
  for (uint32_t index : dp.wg()->takeApplied()) out.Set(i++, index);
  return out;
}

Napi::Value wgRetire(Dataplane& dp, const Napi::CallbackInfo& info) {
  if (dp.wg()) {
    dp.wg()->retire(info[0].As<Napi::Number>().Uint32Value());
    dp.reclaim();
  }
  return info.Env().Undefined();
}

Napi::Value wgSend(Dataplane& dp, const Napi::CallbackInfo& info) {
  sockaddr_storage to;
  socklen_t len =
      toSockaddr(addrFromJs(info[0]), uint16_t(info[1].As<Napi::Number>().Uint32Value()), &to);
  auto data = info[2].As<Napi::Buffer<uint8_t>>();
  return Napi::Boolean::New(info.Env(), sendFromWg(dp, data.Data(), data.Length(), to, len));
}

Napi::Value wgKeepalive(Dataplane& dp, const Napi::CallbackInfo& info) {
  const Peer* p = wgPeer(dp, info[0]);
  uint8_t msg[kWgTransportHeader + kWgTag];
  size_t len = p ? p->wg->seal(msg, 0, 0, monotonicNs()) : 0;
  return Napi::Boolean::New(info.Env(),
                            len > 0 && sendFromWg(dp, msg, len, p->wgSockaddr, p->wgSockaddrLen));
}

Napi::Value wgPoll(Dataplane& dp, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array handshakes = Napi::Array::New(env);
  Napi::Array activity = Napi::Array::New(env);
  out.Set("handshakes", handshakes);
  out.Set("activity", activity);
  if (!dp.wg()) return out;
  std::vector<WgHandshake> queued;
  dp.wg()->popHandshakes(&queued, info[0].As<Napi::Number>().Uint32Value());
  uint32_t i = 0;
  for (const WgHandshake& h : queued) {
    IpAddr from = fromSockaddr(h.from);
    uint16_t port =
        ntohs(h.from.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(h.from).sin6_port
                                           : reinterpret_cast<const sockaddr_in&>(h.from).sin_port);
    Napi::Object o = Napi::Object::New(env);
    o.Set("data", Napi::Buffer<uint8_t>::Copy(env, h.data, h.len));
    o.Set("address", Napi::Buffer<uint8_t>::Copy(env, from.bytes, from.family == 6 ? 16 : 4));
    o.Set("port", port);
    handshakes.Set(i++, o);
  }
  i = 0;
  int64_t now = monotonicNs();
  // A scan of the peers, not a list the packet threads append to: they only set bits, with no
  // allocation or lock, and 5,000 peers cost the poll some microseconds. A responder's session
  // may send once the initiator's first message confirmed it: what waited for it goes now.
  dp.table().forEachPeer([&](const Peer& p) {
    if (!p.wg) return;
    flushStaged(dp, p, now);
    if (p.wg->activity.load(std::memory_order_relaxed) == 0) return;
    uint32_t bits = p.wg->activity.exchange(0, std::memory_order_relaxed);
    WgSession* s = p.wg->current.load();
    Napi::Array row = Napi::Array::New(env, 3);
    row.Set(uint32_t(0), p.name);
    row.Set(uint32_t(1), bits);
    row.Set(uint32_t(2), s ? double(s->sent()) : 0.0);
    activity.Set(i++, row);
  });
  return out;
}

}  // namespace flatnet
