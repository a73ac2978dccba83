// Conversions from the control plane's JavaScript values (shaped by src/native.ts)
// to native tables. Shared by the Dataplane object and the testing exports.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "fib.h"

namespace flatnet {

using PeerCountersByName = std::unordered_map<std::string, std::shared_ptr<PeerCounters>>;

IpAddr addrFromJs(const Napi::Value& v);  // a 4- or 16-byte Buffer
void macFromJs(const Napi::Value& v, uint8_t mac[6]);

// Builds a Fib from { local: Prefix[], peers: [{ name, address, port, mac, cidrs }] }.
// Peers keep the counters they had in *counters (by name); *counters is replaced by
// the new table's set, so a removed peer's counts go with it.
std::unique_ptr<Fib> fibFromJs(const Napi::Object& table, PeerCountersByName* counters);

}  // namespace flatnet
