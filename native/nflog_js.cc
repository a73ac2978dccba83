#include "nflog_js.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "js_errors.h"
#include "nflog.h"

namespace flatnet {
namespace {

Napi::Object recordToJs(Napi::Env env, const NflogRecord& r) {
  char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
  int af = r.family == 6 ? AF_INET6 : AF_INET;
  inet_ntop(af, r.saddr, s, sizeof s);
  inet_ntop(af, r.daddr, d, sizeof d);
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", r.family);
  o.Set("saddr", s);
  o.Set("daddr", d);
  o.Set("proto", r.proto);
  o.Set("sport", r.sport);
  o.Set("dport", r.dport);
  o.Set("prefix", r.prefix);
  o.Set("indev", r.indev);
  o.Set("outdev", r.outdev);
  o.Set("physindev", r.physindev);
  o.Set("physoutdev", r.physoutdev);
  if (r.hasSeq) o.Set("seq", r.seq);
  return o;
}

// nflogOpen(group, copyRange) -> fd, bound to the group (throws with errno and step).
Napi::Value NflogOpen(const Napi::CallbackInfo& info) {
  const char* where = "";
  int fd = nflogOpen(uint16_t(info[0].As<Napi::Number>().Uint32Value()),
                     info[1].As<Napi::Number>().Uint32Value(), &where);
  if (fd < 0) return throwErrno(info.Env(), -fd, where), info.Env().Undefined();
  return Napi::Number::New(info.Env(), fd);
}

// nflogRead(fd, max) -> { records, overruns }: what is queued now, one call per batch.
Napi::Value NflogRead(const Napi::CallbackInfo& info) {
  std::vector<NflogRecord> records;
  uint64_t overruns = 0;
  int err = nflogRead(info[0].As<Napi::Number>().Int32Value(),
                      info[1].As<Napi::Number>().Uint32Value(), &records, &overruns);
  if (err) return throwErrno(info.Env(), err, "recv(NFLOG)"), info.Env().Undefined();
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env, records.size());
  for (size_t i = 0; i < records.size(); i++) list.Set(uint32_t(i), recordToJs(env, records[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("records", list);
  out.Set("overruns", double(overruns));
  return out;
}

#ifdef FLATNET_TESTING
// parseNflogPacket(family, attributes) -> record or null: the parser alone, for tests
// (flatnet_testing.node only).
Napi::Value ParseNflogPacket(const Napi::CallbackInfo& info) {
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  NflogRecord r;
  if (!parseNflogPacket(uint8_t(info[0].As<Napi::Number>().Uint32Value()), buf.Data(), buf.Length(),
                        &r))
    return info.Env().Null();
  return recordToJs(info.Env(), r);
}
#endif

}  // namespace

void InitNflog(Napi::Env env, Napi::Object exports) {
  exports.Set("nflogOpen", Napi::Function::New(env, NflogOpen));
  exports.Set("nflogRead", Napi::Function::New(env, NflogRead));
#ifdef FLATNET_TESTING
  exports.Set("parseNflogPacket", Napi::Function::New(env, ParseNflogPacket));
#endif
}

}  // namespace flatnet
