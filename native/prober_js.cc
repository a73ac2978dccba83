#include "prober_js.h"

#include <memory>

#include "js_errors.h"
#include "prober.h"

namespace flatnet {
namespace {

// new Prober(timeoutMs); probe(id, family, dst, src, port); take() -> Float64Array of
// [id, answered, rttMicros, errno] per result; stop(). Arguments come checked by
// src/reach/native-probes.ts.
class ProberWrap : public Napi::ObjectWrap<ProberWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Prober",
        {InstanceMethod("probe", &ProberWrap::Probe), InstanceMethod("take", &ProberWrap::Take),
         InstanceMethod("stop", &ProberWrap::Stop)});
  }

  explicit ProberWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProberWrap>(info) {
    prober_ = std::make_unique<Prober>(info[0].As<Napi::Number>().Int32Value());
    int rc = prober_->start();
    if (rc < 0) throwErrno(info.Env(), -rc, "prober");
  }

 private:
  Napi::Value Probe(const Napi::CallbackInfo& info) {
    uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    int family = info[1].As<Napi::Number>().Int32Value();
    auto dst = info[2].As<Napi::Buffer<uint8_t>>();
    auto src = info[3].As<Napi::Buffer<uint8_t>>();
    size_t want = family == 4 ? 4 : 16;
    if (dst.Length() != want || src.Length() != want) {
      Napi::TypeError::New(info.Env(), "probe: addresses of the family's length")
          .ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    prober_->probe(id, family, dst.Data(), src.Data(),
                   uint16_t(info[4].As<Napi::Number>().Uint32Value()));
    return info.Env().Undefined();
  }

  Napi::Value Take(const Napi::CallbackInfo& info) {
    auto results = prober_->take();
    auto out = Napi::Float64Array::New(info.Env(), results.size() * 4);
    for (size_t i = 0; i < results.size(); i++) {
      out[i * 4] = results[i].id;
      out[i * 4 + 1] = results[i].answered ? 1 : 0;
      out[i * 4 + 2] = results[i].rttMicros;
      out[i * 4 + 3] = results[i].err;
    }
    return out;
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    prober_->stop();
    return info.Env().Undefined();
  }

  std::unique_ptr<Prober> prober_;
};

}  // namespace

void InitProber(Napi::Env env, Napi::Object exports) {
  exports.Set("Prober", ProberWrap::Define(env));
}

}  // namespace flatnet
