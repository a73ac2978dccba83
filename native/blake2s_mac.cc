// Keyed BLAKE2s through OpenSSL 3's EVP_MAC "BLAKE2SMAC" (blake2s_mac.h says why).
#include "blake2s_mac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace flatnet {

namespace {

// Fetched once: the lookup walks OpenSSL's provider tables, a cost each MAC need not pay.
EVP_MAC* fetchedMac() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr);
  return mac;
}

Napi::Value Blake2sMacJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsBuffer() || !info[1].IsBuffer() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "blake2sMac(key: Buffer, data: Buffer, outLen: number)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto key = info[0].As<Napi::Buffer<uint8_t>>();
  auto data = info[1].As<Napi::Buffer<uint8_t>>();
  int64_t outLen = info[2].As<Napi::Number>().Int64Value();
  if (key.Length() < 1 || key.Length() > 32 || outLen < 1 || outLen > 32) {
    Napi::RangeError::New(env, "blake2sMac: key and output are 1 to 32 bytes")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint8_t out[32];
  if (!blake2sMac(key.Data(), key.Length(), data.Data(), data.Length(), out, size_t(outLen))) {
    Napi::Error::New(env, "blake2sMac: OpenSSL BLAKE2SMAC failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, out, size_t(outLen));
}

}  // namespace

bool blake2sMac(const uint8_t* key, size_t keyLen, const uint8_t* data, size_t dataLen,
                uint8_t* out, size_t outLen) {
  EVP_MAC* mac = fetchedMac();
  if (mac == nullptr) return false;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  if (ctx == nullptr) return false;
  // The output size is a parameter of BLAKE2s itself (it changes every byte of the digest), so it
  // must be set before the key is absorbed: EVP_MAC_init takes both.
  size_t size = outLen;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                         OSSL_PARAM_construct_end()};
  size_t written = 0;
  bool ok = EVP_MAC_init(ctx, key, keyLen, params) == 1 &&
            EVP_MAC_update(ctx, data, dataLen) == 1 &&
            EVP_MAC_final(ctx, out, &written, outLen) == 1 && written == outLen;
  EVP_MAC_CTX_free(ctx);
  return ok;
}

void InitBlake2sMac(Napi::Env env, Napi::Object exports) {
  exports.Set("blake2sMac", Napi::Function::New(env, Blake2sMacJs));
}

}  // namespace flatnet
