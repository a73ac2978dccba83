// Who is at the other end of a local (unix) socket: the control and CNI sockets serve root
// and this daemon's own user only. Their files are 0600 in a 0700 directory already; the
// kernel's word on the peer (SO_PEERCRED, unix(7)) holds even where a directory's mode was
// loosened on the host.
import type { Socket } from 'node:net'
import { addon } from './native.js'

export function trustedPeer (socket: Socket): boolean {
  // Node keeps the descriptor on the handle and has no API for the peer's credentials.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) return false
  const uid = addon.peerUid(fd)
  return uid === 0 || uid === process.getuid?.()
}
