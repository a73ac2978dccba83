// exports.testing: the pure packet functions over Node Buffers, for unit tests and
// micro-benchmarks. Outputs go to one scratch area per environment, reused across
// calls, so a benchmark loop measures the packet code rather than the allocator.
// The checksum functions take an optional repeat count, and the bench* variants
// return counts instead of Buffers, to amortize the N-API call over many runs.
#include "testing.h"

#include <cstring>
#include <string>
#include <vector>

#include "admit.h"
#include "checksum.h"
#include "gro.h"
#include "gso.h"
#include "js_table.h"
#include "packet.h"
#include "partial_checksum.h"
#include "vxlan.h"

namespace flatnet {
namespace {

constexpr size_t kMaxSegments = 1024;
constexpr size_t kMaxSegmentHeaders = 60 + 60;   // IPv4 and TCP headers at their largest
constexpr size_t kReceiveGap = kEncapPrefixLen;  // what precedes each inner packet on receive

// A packet handed to coalesce: its Buffer, its IP total length, where it was laid out.
struct Input {
  const uint8_t* data;
  size_t len, ipLen;
  uint8_t* laid = nullptr;
};

struct Scratch {
  std::vector<uint8_t> bytes;
  std::vector<Input> inputs;
  std::vector<uint16_t> sizes = std::vector<uint16_t>(kMaxSegments);

  uint8_t* reserve(size_t n) {
    if (bytes.size() < n) bytes.resize(n);
    return bytes.data();
  }
};

Scratch& scratchOf(const Napi::CallbackInfo& info) { return *static_cast<Scratch*>(info.Data()); }

Napi::Value throwType(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool isBuffer(const Napi::Value& v) { return v.IsBuffer(); }
Napi::Buffer<uint8_t> buffer(const Napi::Value& v) { return v.As<Napi::Buffer<uint8_t>>(); }

uint32_t repeatArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Uint32Value() : 1;
}

template <uint32_t (*Sum)(const uint8_t*, size_t, uint32_t)>
Napi::Value ChecksumWith(const Napi::CallbackInfo& info) {
  if (!isBuffer(info[0])) return throwType(info.Env(), "checksum: expected a Buffer");
  auto b = buffer(info[0]);
  uint32_t n = repeatArg(info, 1), c = 0;
  for (uint32_t i = 0; i < n; i++) c = uint16_t(~checksumFold(Sum(b.Data(), b.Length(), 0)));
  return Napi::Number::New(info.Env(), c);
}

Napi::Value ChecksumCopy(const Napi::CallbackInfo& info) {
  if (!isBuffer(info[0])) return throwType(info.Env(), "checksumCopy: expected a Buffer");
  auto b = buffer(info[0]);
  uint8_t* dst = scratchOf(info).reserve(b.Length());
  uint32_t n = repeatArg(info, 1), c = 0;
  for (uint32_t i = 0; i < n; i++)
    c = uint16_t(~checksumFold(checksumCopy(dst, b.Data(), b.Length(), 0)));
  return Napi::Number::New(info.Env(), c);
}

const char* resultName(GsoResult r) {
  switch (r) {
    case GsoResult::ok:
      return "ok";
    case GsoResult::malformed:
      return "malformed";
    case GsoResult::unsupported:
      return "unsupported";
    case GsoResult::tooManySegments:
      return "tooManySegments";
    case GsoResult::noRoom:
      return "noRoom";
  }
  return "unknown";
}

// The arguments of gsoSplit, read once so a repeat loop measures only the split.
struct SplitArgs {
  VnetHdr hdr;
  const uint8_t* pkt;
  size_t len;
};

bool splitArgs(const Napi::CallbackInfo& info, SplitArgs* a) {
  if (!isBuffer(info[0]) || buffer(info[0]).Length() < sizeof(VnetHdr) || !isBuffer(info[1])) {
    Napi::TypeError::New(info.Env(),
                         "gsoSplit: expected a 10-byte vnet header Buffer and a packet Buffer")
        .ThrowAsJavaScriptException();
    return false;
  }
  std::memcpy(&a->hdr, buffer(info[0]).Data(), sizeof a->hdr);
  a->pkt = buffer(info[1]).Data();
  a->len = buffer(info[1]).Length();
  return true;
}

// Splits with headroom 0 into the scratch area; throws naming the GsoResult on failure.
bool split(const Napi::CallbackInfo& info, const SplitArgs& a, size_t* count) {
  Scratch& s = scratchOf(info);
  size_t cap = a.len + kMaxSegments * kMaxSegmentHeaders;
  GsoResult r =
      gsoSplit(a.hdr, a.pkt, a.len, s.reserve(cap), cap, 0, s.sizes.data(), kMaxSegments, count);
  if (r == GsoResult::ok) return true;
  Napi::Error::New(info.Env(), std::string("gsoSplit: ") + resultName(r))
      .ThrowAsJavaScriptException();
  return false;
}

Napi::Value GsoSplit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SplitArgs a;
  size_t count;
  if (!splitArgs(info, &a) || !split(info, a, &count)) return env.Undefined();
  Scratch& s = scratchOf(info);
  Napi::Array segments = Napi::Array::New(env, count);
  const uint8_t* p = s.bytes.data();
  for (size_t i = 0; i < count; p += s.sizes[i], i++)
    segments.Set(uint32_t(i), Napi::Buffer<uint8_t>::Copy(env, p, s.sizes[i]));
  return segments;
}

Napi::Value BenchGsoSplit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SplitArgs a;
  size_t count = 0;
  if (!splitArgs(info, &a)) return env.Undefined();
  for (uint32_t i = 0, n = repeatArg(info, 2); i < n; i++)
    if (!split(info, a, &count)) return env.Undefined();
  return Napi::Number::New(env, double(count));
}

// Reads the Buffer views of a packets array into s.inputs; false after throwing.
bool readPackets(const Napi::CallbackInfo& info, Scratch& s) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) return throwType(env, "coalesce: expected an array of Buffers"), false;
  Napi::Array packets = info[0].As<Napi::Array>();
  s.inputs.clear();
  for (uint32_t i = 0; i < packets.Length(); i++) {
    Napi::Value v = packets[i];
    if (!isBuffer(v)) return throwType(env, "coalesce: expected an array of Buffers"), false;
    IpView ip;
    // The receive path validates before coalescing; the Coalescer relies on it.
    if (!parseIp(buffer(v).Data(), buffer(v).Length(), &ip))
      return throwType(env, "coalesce: not an IP packet"), false;
    s.inputs.push_back({buffer(v).Data(), buffer(v).Length(), ip.totalLen});
  }
  return true;
}

// Lays the packets out as the receive path finds them (a gap before each, all in one
// buffer) and coalesces them.
void coalesceBatch(Scratch& s, Coalescer* c) {
  size_t total = 0;
  for (const Input& in : s.inputs) total += kReceiveGap + in.len;
  uint8_t* p = s.reserve(total);
  for (Input& in : s.inputs) {
    p += kReceiveGap;
    std::memcpy(p, in.data, in.len);
    in.laid = p;
    p += in.len;
  }
  for (const Input& in : s.inputs) c->add(in.laid, in.ipLen);
  c->flush();
}

struct Collected {
  Napi::Env env;
  Napi::Array writes;
};

Napi::Value Coalesce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Collected out{env, Napi::Array::New(env)};
  // coalesce(packets, udp, mtu): udp merges UDP datagrams too, as on a TUN with USO; mtu
  // is the TUN's (0: partial super-packets are not cut).
  Coalescer c(
      [](void* ctx, const TunWrite& w) {
        auto* o = static_cast<Collected*>(ctx);
        o->writes.Set(o->writes.Length(), Napi::Buffer<uint8_t>::Copy(o->env, w.data, w.len));
      },
      &out, info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value(),
      info[2].IsNumber() ? size_t(info[2].As<Napi::Number>().Uint32Value()) : 0);
  if (!readPackets(info, scratchOf(info))) return env.Undefined();
  coalesceBatch(scratchOf(info), &c);
  Napi::Object r = Napi::Object::New(env);
  r.Set("writes", out.writes);
  r.Set("merged", Napi::Number::New(env, double(c.stats().merged)));
  r.Set("badChecksum", Napi::Number::New(env, double(c.stats().badChecksum)));
  r.Set("partial", Napi::Number::New(env, double(c.stats().partial)));
  return r;
}

Napi::Value BenchCoalesce(const Napi::CallbackInfo& info) {
  Scratch& s = scratchOf(info);
  if (!readPackets(info, s)) return info.Env().Undefined();
  size_t writes = 0;
  uint32_t n = repeatArg(info, 1);
  for (uint32_t i = 0; i < n; i++) {
    writes = 0;
    Coalescer c([](void* ctx, const TunWrite&) { ++*static_cast<size_t*>(ctx); }, &writes, true);
    coalesceBatch(s, &c);
  }
  return Napi::Number::New(info.Env(), double(writes));
}

Napi::Value FlowHash(const Napi::CallbackInfo& info) {
  if (!isBuffer(info[0])) return throwType(info.Env(), "flowHash: expected a Buffer");
  auto b = buffer(info[0]);
  IpView v;
  return Napi::Number::New(info.Env(),
                           parseIp(b.Data(), b.Length(), &v) ? flowHash(b.Data(), v) : 0);
}

Napi::Value IsPureTcpAck(const Napi::CallbackInfo& info) {
  if (!isBuffer(info[0])) return throwType(info.Env(), "isPureTcpAck: expected a Buffer");
  auto b = buffer(info[0]);
  IpView v;
  return Napi::Boolean::New(info.Env(),
                            parseIp(b.Data(), b.Length(), &v) && isPureTcpAck(b.Data(), v));
}

// finishPartialChecksum(packet) -> a finished copy when its checksum is in the partial
// form (what the receive path does without a vnet header), else null.
Napi::Value FinishPartialChecksum(const Napi::CallbackInfo& info) {
  if (!isBuffer(info[0])) return throwType(info.Env(), "finishPartialChecksum: expected a Buffer");
  auto b = buffer(info[0]);
  auto out = Napi::Buffer<uint8_t>::Copy(info.Env(), b.Data(), b.Length());
  IpView v;
  if (!parseIp(out.Data(), out.Length(), &v)) return info.Env().Null();
  size_t field = partialChecksumField(out.Data(), v);
  if (!field) return info.Env().Null();
  finishChecksum(out.Data(), v, field);
  return out;
}

// encapPrefix(vni, dstMac, srcMac, ethType) -> the 22-byte VXLAN + Ethernet prefix
Napi::Value EncapPrefix(const Napi::CallbackInfo& info) {
  uint8_t dst[6], src[6];
  macFromJs(info[1], dst);
  macFromJs(info[2], src);
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), kEncapPrefixLen);
  writeEncapPrefix(out.Data(), info[0].As<Napi::Number>().Uint32Value(), dst, src,
                   uint16_t(info[3].As<Napi::Number>().Uint32Value()));
  return out;
}

// The arguments admit and benchAdmit share: (table, fromAddress, vni, vtepMAC, datagram).
struct AdmitCase {
  std::unique_ptr<Fib> fib;
  Vtep local{};
  const Peer* from = nullptr;
  const uint8_t* data = nullptr;
  size_t len = 0;

  explicit AdmitCase(const Napi::CallbackInfo& info) : fib(fibFromJs(info[0].As<Napi::Object>())) {
    local.vni = info[2].As<Napi::Number>().Uint32Value();
    macFromJs(info[3], local.mac);
    auto d = buffer(info[4]);
    data = d.Data();
    len = d.Length();
    from = fib->peerByAddress(addrFromJs(info[1]));
  }
  bool run(IpView* ip, Drop* why) const {
    if (!from) return *why = kDropUnknownPeer, false;
    return admit(*fib, *from, local, data, len, ip, why);
  }
};

// admit(table, fromAddress, vni, vtepMAC, datagram) -> { peer, inner, totalLen } or { drop }
// where table is what Dataplane.setTable takes and fromAddress the outer source.
Napi::Value Admit(const Napi::CallbackInfo& info) {
  AdmitCase c(info);
  Napi::Object r = Napi::Object::New(info.Env());
  IpView ip;
  Drop why;
  if (!c.run(&ip, &why)) {
    r.Set("drop", kDropNames[why]);
  } else {
    r.Set("peer", c.from->name);
    r.Set("inner", double(kEncapPrefixLen));
    r.Set("totalLen", double(ip.totalLen));
  }
  return r;
}

// benchEncapsulate(table, packet, vni, srcMac, repeat) -> repeat: what the transmit
// path does per packet before the send: parse, route, flow hash, write the prefix.
Napi::Value BenchEncapsulate(const Napi::CallbackInfo& info) {
  auto fib = fibFromJs(info[0].As<Napi::Object>());
  auto pkt = buffer(info[1]);
  uint32_t vni = info[2].As<Napi::Number>().Uint32Value();
  uint8_t src[6], prefix[kEncapPrefixLen];
  macFromJs(info[3], src);
  uint32_t n = repeatArg(info, 4), routed = 0;
  for (uint32_t i = 0; i < n; i++) {
    IpView ip;
    if (!parseIp(pkt.Data(), pkt.Length(), &ip)) continue;
    const Peer* peer = fib->lookup(ip.version, ip.dst);
    if (!peer) continue;
    routed += flowHash(pkt.Data(), ip) & 1;
    writeEncapPrefix(prefix, vni, peer->mac, src, ip.version == 4 ? kEthTypeIpv4 : kEthTypeIpv6);
    routed += prefix[0] >> 3;
  }
  return Napi::Number::New(info.Env(), routed);
}

// benchAdmit(table, fromAddress, vni, vtepMAC, datagram, repeat) -> admitted count
Napi::Value BenchAdmit(const Napi::CallbackInfo& info) {
  AdmitCase c(info);
  uint32_t n = repeatArg(info, 5), admitted = 0;
  for (uint32_t i = 0; i < n; i++) {
    IpView ip;
    Drop why;
    admitted += c.run(&ip, &why);
  }
  return Napi::Number::New(info.Env(), admitted);
}

}  // namespace

void InitTesting(Napi::Env env, Napi::Object exports) {
  auto* scratch = new Scratch;
  env.AddCleanupHook([scratch] { delete scratch; });
  Napi::Object t = Napi::Object::New(env);
  auto add = [&](const char* name, Napi::Function::Callback fn) {
    t.Set(name, Napi::Function::New(env, fn, name, scratch));
  };
  add("checksum", ChecksumWith<checksumPartial>);
  add("checksumReference", ChecksumWith<checksumReference>);
  add("checksumCopy", ChecksumCopy);
  add("gsoSplit", GsoSplit);
  add("benchGsoSplit", BenchGsoSplit);
  add("coalesce", Coalesce);
  add("benchCoalesce", BenchCoalesce);
  add("flowHash", FlowHash);
  add("finishPartialChecksum", FinishPartialChecksum);
  add("isPureTcpAck", IsPureTcpAck);
  add("encapPrefix", EncapPrefix);
  add("admit", Admit);
  add("benchEncapsulate", BenchEncapsulate);
  add("benchAdmit", BenchAdmit);
  InitTestingFib(env, t);
  InitTestingSteering(env, t);
  InitTestingRaw(env, t);
  InitTestingWireGuard(env, t);
  exports.Set("testing", t);
}

}  // namespace flatnet
