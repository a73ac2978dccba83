// Pure packet functions exposed to JavaScript for unit tests and micro-benchmarks
// only; the daemon never calls them.
#pragma once
#include <napi.h>

namespace flatnet {
void InitTesting(Napi::Env env, Napi::Object exports);
}
