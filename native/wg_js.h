// The JavaScript surface of WireGuard's data path (src/wireguard/data-path.ts drives it): the
// control plane installs and retires the sessions its handshakes make, sends handshake messages
// and keepalives from the WireGuard socket, and polls for what the packet threads queued.
#pragma once
#include <napi.h>

#include "dataplane.h"

namespace flatnet {

// wgInstall(peer, { localIndex, remoteIndex, send, receive, initiator }) -> boolean (false: no
// such WireGuard peer).
Napi::Value wgInstall(Dataplane& dp, const Napi::CallbackInfo& info);
// wgRetire(localIndex)
Napi::Value wgRetire(Dataplane& dp, const Napi::CallbackInfo& info);
// wgSend(address: Buffer, port, datagram: Buffer) -> boolean (false: the socket refused it)
Napi::Value wgSend(Dataplane& dp, const Napi::CallbackInfo& info);
// wgKeepalive(peer) -> boolean (false: no session may send to it yet)
Napi::Value wgKeepalive(Dataplane& dp, const Napi::CallbackInfo& info);
// wgPoll(maxHandshakes) -> { handshakes: [{ data, address, port }], activity: [[peer, bits, sent]]
// }: the handshake messages queued, and each peer whose activity bits (wg_table.h WgActivity) are
// set, cleared as they are read; sent: its newest session's messages so far.
Napi::Value wgPoll(Dataplane& dp, const Napi::CallbackInfo& info);
// A handover's successor, before its threads start: wgHand(peer, session as for wgInstall) ->
// boolean keeps a session its predecessor had, installed once the predecessor's final state of
// it arrives with the baton; wgHanded() -> [localIndex]: those installed (the rest forgotten).
Napi::Value wgHand(Dataplane& dp, const Napi::CallbackInfo& info);
Napi::Value wgHanded(Dataplane& dp, const Napi::CallbackInfo& info);

}  // namespace flatnet
