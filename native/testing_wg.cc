// WireGuard transport sessions and the replay window from JavaScript (testing.h), so the native
// seal and open are checked against the TypeScript side and wireguard-go's messages.
#include <cstring>
#include <memory>
#include <vector>

#include "clock.h"
#include "fib.h"
#include "testing.h"
#include "wg_admit.h"
#include "wg_session.h"

namespace flatnet {
namespace {

const char* openName(WgOpen r) {
  switch (r) {
    case WgOpen::ok:
      return "ok";
    case WgOpen::length:
      return "length";
    case WgOpen::type:
      return "type";
    case WgOpen::index:
      return "index";
    case WgOpen::expired:
      return "expired";
    case WgOpen::replay:
      return "replay";
    case WgOpen::decrypt:
      return "decrypt";
  }
  return "unknown";
}

int64_t msToNs(const Napi::Value& v) {
  return v.IsNumber() ? int64_t(v.As<Napi::Number>().DoubleValue() * 1e6) : 0;
}

bool key32(const Napi::Value& v, uint8_t* out) {
  if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != 32) return false;
  std::memcpy(out, v.As<Napi::Buffer<uint8_t>>().Data(), 32);
  return true;
}

// new WgSession(localIndex, remoteIndex, sendKey, receiveKey, initiator, createdMs = 0):
// seal(packet, mtu, nowMs = 0) -> Buffer | undefined; open(message, nowMs = 0) -> { packet } | {
// reason }
class JsSession : public Napi::ObjectWrap<JsSession> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "WgSession",
        {InstanceMethod("seal", &JsSession::Seal), InstanceMethod("open", &JsSession::Open),
         InstanceMethod("admit", &JsSession::Admit)});
  }
  explicit JsSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsSession>(info) {
    WgSessionKeys keys;
    if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() ||
        !key32(info[2], keys.send) || !key32(info[3], keys.receive)) {
      Napi::TypeError::New(
          info.Env(),
          "WgSession(localIndex, remoteIndex, sendKey, receiveKey, initiator, createdMs?)")
          .ThrowAsJavaScriptException();
      return;
    }
    session_ = std::make_unique<WgSession>(info[0].As<Napi::Number>().Uint32Value(),
                                           info[1].As<Napi::Number>().Uint32Value(), keys,
                                           info[4].ToBoolean(), msToNs(info[5]));
  }

 private:
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!session_ || !info[0].IsBuffer() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "seal(packet: Buffer, mtu: number, nowMs?)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto packet = info[0].As<Napi::Buffer<uint8_t>>();
    size_t mtu = info[1].As<Napi::Number>().Uint32Value();
    size_t total = WgSession::messageLength(packet.Length(), mtu);
    auto msg = Napi::Buffer<uint8_t>::New(env, total);
    // An empty Buffer's data may be null, which memcpy must not be given even for 0 bytes.
    if (packet.Length() > 0)
      std::memcpy(msg.Data() + kWgTransportHeader, packet.Data(), packet.Length());
    size_t n = session_->seal(msg.Data(), packet.Length(), mtu, msToNs(info[2]));
    if (n == 0) return env.Undefined();
    return msg;
  }
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!session_ || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "open(message: Buffer, nowMs?)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto in = info[0].As<Napi::Buffer<uint8_t>>();
    auto copy = Napi::Buffer<uint8_t>::Copy(env, in.Data(), in.Length());  // opened in place
    size_t len = 0;
    WgOpen r = session_->open(copy.Data(), copy.Length(), msToNs(info[1]), &len);
    Napi::Object o = Napi::Object::New(env);
    if (r == WgOpen::ok)
      o.Set("packet", Napi::Buffer<uint8_t>::Copy(env, copy.Data() + kWgTransportHeader, len));
    else
      o.Set("reason", openName(r));
    return o;
  }
  // admit(table: Table, datagram: Buffer, peer: string, nowMs?) -> { verdict, packet? }: the
  // receive path's admission with this session as the only one, held by the table's peer.
  Napi::Value Admit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Fib* fib = testingFib(info[0]);
    if (!session_ || fib == nullptr || !info[1].IsBuffer() || !info[2].IsString()) {
      Napi::TypeError::New(env, "admit(table: Table, datagram: Buffer, peer: string, nowMs?)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string name = info[2].As<Napi::String>();
    const Peer* peer = fib->peerNamed(name);
    PeerCounters* node = peer ? peer->counters.get() : nullptr;
    WgReceiver receiver{session_.get(), node};
    auto in = info[1].As<Napi::Buffer<uint8_t>>();
    auto copy = Napi::Buffer<uint8_t>::Copy(env, in.Data(), in.Length());
    IpView ip;
    const WgReceiver* by = nullptr;
    WgVerdict v = admitWg(
        *fib, [&](uint32_t index) { return index == session_->localIndex() ? &receiver : nullptr; },
        copy.Data(), copy.Length(), msToNs(info[3]), &ip, &by);
    Napi::Object o = Napi::Object::New(env);
    o.Set("verdict", wgVerdictName(v));
    if (v == WgVerdict::packet)
      o.Set("packet",
            Napi::Buffer<uint8_t>::Copy(env, copy.Data() + kWgTransportHeader, ip.totalLen));
    return o;
  }

  std::unique_ptr<WgSession> session_;
};

// new ReplayWindow(): check(counter: bigint) -> boolean; accept(counter: bigint) -> boolean
class JsReplay : public Napi::ObjectWrap<JsReplay> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "ReplayWindow",
        {InstanceMethod("check", &JsReplay::Check), InstanceMethod("accept", &JsReplay::Accept)});
  }
  explicit JsReplay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsReplay>(info) {}

 private:
  static bool counterOf(const Napi::CallbackInfo& info, uint64_t* c) {
    if (!info[0].IsBigInt()) {
      Napi::TypeError::New(info.Env(), "expected a bigint counter").ThrowAsJavaScriptException();
      return false;
    }
    bool lossless = true;
    *c = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
    return true;
  }
  Napi::Value Check(const Napi::CallbackInfo& info) {
    uint64_t c;
    if (!counterOf(info, &c)) return info.Env().Undefined();
    return Napi::Boolean::New(info.Env(), window_.check(c));
  }
  Napi::Value Accept(const Napi::CallbackInfo& info) {
    uint64_t c;
    if (!counterOf(info, &c)) return info.Env().Undefined();
    return Napi::Boolean::New(info.Env(), window_.accept(c));
  }
  ReplayWindow window_;
};

// wgAeadLoop(size, count) -> { sealNs, openNs }: count packets of size bytes sealed by one
// session, then opened by its peer, each loop timed whole: what the packet threads pay for the
// AEAD and its framing per packet, without N-API in between (bench/micro.ts sets it beside
// `openssl speed`).
Napi::Value AeadLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "wgAeadLoop(size: number, count: number)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t size = info[0].As<Napi::Number>().Uint32Value();
  size_t count = info[1].As<Napi::Number>().Uint32Value();
  if (size == 0 || size > 65535 || count == 0 || count > 1'000'000) {
    Napi::RangeError::New(env, "size 1-65535, count 1-1000000").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  WgSessionKeys a, b;
  for (int i = 0; i < 32; i++)
    a.send[i] = b.receive[i] = uint8_t(i), a.receive[i] = b.send[i] = uint8_t(255 - i);
  WgSession sender(1, 2, a, true, 0), receiver(2, 1, b, false, 0);
  size_t stride = WgSession::messageLength(size, size);
  std::vector<uint8_t> messages(stride * count, 0x5a);
  int64_t t0 = monotonicNs();
  for (size_t i = 0; i < count; i++)
    if (sender.seal(messages.data() + i * stride, size, size, 0) != stride) return env.Undefined();
  int64_t t1 = monotonicNs();
  size_t len = 0;
  for (size_t i = 0; i < count; i++)
    if (receiver.open(messages.data() + i * stride, stride, 0, &len) != WgOpen::ok)
      return env.Undefined();
  int64_t t2 = monotonicNs();
  Napi::Object o = Napi::Object::New(env);
  o.Set("sealNs", double(t1 - t0));
  o.Set("openNs", double(t2 - t1));
  return o;
}

}  // namespace

void InitTestingWireGuard(Napi::Env env, Napi::Object testing) {
  testing.Set("WgSession", JsSession::Define(env));
  testing.Set("ReplayWindow", JsReplay::Define(env));
  testing.Set("wgAeadLoop", Napi::Function::New(env, AeadLoop));
}

}  // namespace flatnet
