// The local control socket: how `flatnet peers` and `flatnet stats` read a running
// daemon. A unix socket, owner-only (0600 in a 0700 directory), msgpack frames:
// request { cmd }, response { ok, ... }. Read-only: nothing here changes the daemon.
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { dirname } from 'node:path'
import { readFrames, writeFrame } from './frame.js'

export const DEFAULT_SOCKET_DIR = '/run/flatnet'

export function socketPathFor (nodeName: string): string {
  return `${DEFAULT_SOCKET_DIR}/${nodeName}.sock`
}

export type Handler = (cmd: string) => unknown

/** What one local client may hold: a CLI query takes milliseconds and a few KB. */
export interface ControlLimits {
  idleMs: number // a connection silent this long (half-open, or a stalled partial frame) is closed
  maxConnections: number // beyond this, new connections are closed at once
  maxUnsentBytes: number // replies queued to a client that does not read them
}

export const CONTROL_LIMITS: ControlLimits = { idleMs: 10_000, maxConnections: 64, maxUnsentBytes: 4 << 20 }

export async function serveControl (path: string, handle: Handler, limits: ControlLimits = CONTROL_LIMITS): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  rmSync(path, { force: true }) // a stale socket from a killed daemon
  const server = createServer((socket) => {
    socket.setTimeout(limits.idleMs, () => socket.destroy())
    const reply = (value: unknown): void => {
      // A client pipelining requests without reading the answers would grow our write buffer without end.
      if (socket.writableLength > limits.maxUnsentBytes) {
        socket.destroy()
        return
      }
      writeFrame(socket, value)
    }
    readFrames(socket, (req) => {
      if (socket.destroyed) return
      const cmd = typeof req === 'object' && req !== null ? (req as { cmd?: unknown }).cmd : undefined
      if (typeof cmd !== 'string') return reply({ ok: false, error: 'request must be { cmd: string }' })
      try {
        reply({ ok: true, ...(handle(cmd) as object) })
      } catch (err) {
        reply({ ok: false, error: (err as Error).message })
      }
    }, () => {}, 64 << 10)
    socket.on('error', () => {})
  })
  server.maxConnections = limits.maxConnections
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // umask-independent: create, then restrict before anyone can use it.
    server.listen(path, () => { chmodSync(path, 0o600); resolve() })
  })
  return server
}

/** maxFrame: the largest reply taken (the daemon is this node's own, behind a 0600 socket; a cluster's policy objects run to megabytes). */
export async function queryControl (path: string, cmd: string, timeoutMs = 3000, maxFrame?: number): Promise<Record<string, unknown>> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection(path)
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer from ${path} in ${timeoutMs} ms`)) }, timeoutMs)
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot reach the daemon at ${path}: ${err.message} (is it running? is this the right --node?)`))
    })
    socket.once('connect', () => writeFrame(socket, { cmd }))
    readFrames(socket, (res) => {
      clearTimeout(timer)
      socket.end()
      const r = res as Record<string, unknown>
      if (r.ok) resolve(r)
      else reject(new Error(`daemon: ${String(r.error)}`))
    }, (err) => { clearTimeout(timer); reject(err) }, maxFrame)
  })
}
