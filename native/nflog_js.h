// The NFLOG reader's JavaScript surface (nflog.h): nflogOpen and nflogRead (src/native.ts
// types them), and in flatnet_testing.node parseNflogPacket.
#pragma once
#include <napi.h>

namespace flatnet {

void InitNflog(Napi::Env env, Napi::Object exports);

}  // namespace flatnet
