// The probe engine's JavaScript surface (prober.h): the Prober class src/native.ts types.
#pragma once
#include <napi.h>

namespace flatnet {

void InitProber(Napi::Env env, Napi::Object exports);

}  // namespace flatnet
