// Conversions from the control plane's JavaScript values (shaped by src/native.ts)
// to native tables. Shared by the Dataplane object and the testing exports.
#pragma once
#include <napi.h>

#include <memory>

#include "fib.h"

namespace flatnet {

IpAddr addrFromJs(const Napi::Value& v);  // a 4- or 16-byte Buffer
void macFromJs(const Napi::Value& v, uint8_t mac[6]);

// Makes fib hold exactly { local: Prefix[], peers: [{ name, address, port, mac, cidrs }] }:
// the peers of table are set, the others removed.
void setTableFromJs(Fib* fib, const Napi::Object& table);
// Applies { set: Peer[], remove: string[] } (names absent from the table are ignored).
// Both functions set before they remove: a node replaced by another with the same pod
// CIDR (set one, remove the other) keeps a route to one of them throughout.
void updatePeersFromJs(Fib* fib, const Napi::Object& changes);
// A new Fib holding table (for the testing exports).
std::unique_ptr<Fib> fibFromJs(const Napi::Object& table);

}  // namespace flatnet
