// Child processes started with posix_spawn(3), for the commands the daemon runs while it
// serves (nft). Node's child_process forks: the fork copies the page tables of a daemon
// holding a large cluster's model on the event loop, a cost that grows with its memory,
// and write-protects every page it has, each then faulting on its next write. glibc's
// posix_spawn is clone(CLONE_VM | CLONE_VFORK): no copy, whatever the daemon's size.
#pragma once
#include <napi.h>

namespace flatnet {

// spawnPiped(file, args): { pid, stdin, stdout, stderr } (non-blocking pipe fds, ours to
// close); reap(pid): undefined while it runs, else { code } or { signal }.
void InitSpawn(Napi::Env env, Napi::Object exports);

}  // namespace flatnet
