// Keyed BLAKE2s (the MAC of WireGuard's mac1, mac2 and cookies, whitepaper 5.4.4 and 5.4.7) for
// src/wireguard/blake2s.ts: node:crypto has BLAKE2s-256 only unkeyed, but the node binary exports
// OpenSSL 3, whose BLAKE2SMAC is the keyed form (RFC 7693 section 2.5) — no second crypto library.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace flatnet {

// out = BLAKE2s(key, data) truncated to outLen by the parameter block (not a cut digest): keyLen
// and outLen 1..32. False if OpenSSL refuses (no BLAKE2SMAC in this build).
bool blake2sMac(const uint8_t* key, size_t keyLen, const uint8_t* data, size_t dataLen,
                uint8_t* out, size_t outLen);

// blake2sMac(key: Buffer, data: Buffer, outLen: number): Buffer
void InitBlake2sMac(Napi::Env env, Napi::Object exports);

}  // namespace flatnet
