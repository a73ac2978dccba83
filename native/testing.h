// Pure packet functions exposed to JavaScript for unit tests and micro-benchmarks
// only; the daemon never calls them.
#pragma once
#include <napi.h>

namespace flatnet {
void InitTesting(Napi::Env env, Napi::Object exports);
// The forwarding-table exports (testing_fib.cc), added to exports.testing.
void InitTestingFib(Napi::Env env, Napi::Object testing);
// The per-cpu steering programs run on a chosen CPU (testing_steering.cc; root).
void InitTestingSteering(Napi::Env env, Napi::Object testing);
// Raw Ethernet frames sent from a namespace (testing_raw.cc; NET_RAW).
void InitTestingRaw(Napi::Env env, Napi::Object testing);
// The Fib of a testing.Table (testing_fib.cc), or nullptr for anything else.
class Fib;
const Fib* testingFib(const Napi::Value& table);
// WireGuard transport sessions and replay windows (testing_wg.cc).
void InitTestingWireGuard(Napi::Env env, Napi::Object testing);
}  // namespace flatnet
