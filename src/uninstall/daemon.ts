// Whether a flatnet daemon still runs for this node: its control socket (or its CNI
// socket, or a waiting successor's) accepts a connection. Removing the tables under a
// running daemon would leave it forwarding without them, and it would write its
// conflist and tables again at its next change.
import { readdirSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'

/** True when something listens at path; false for no socket or a dead daemon's. */
export async function answers (path: string): Promise<boolean> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection(path)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') resolve(false)
      else reject(new Error(`cannot tell whether a daemon listens at ${path}: ${err.message}`))
    })
  })
}

/** The *.sock files of a directory (none when it does not exist). */
export function socketsIn (dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.sock')).sort().map((f) => join(dir, f))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}
