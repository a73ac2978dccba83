// The local control socket: how `flatnet peers` and `flatnet stats` read a running
// daemon, and how a successor asks it to hand over. A unix socket, owner-only (0600
// in a 0700 directory), msgpack frames: request { cmd }, response { ok, ... }. The
// queries are read-only; a session (the successor's) stays open for its frames.
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { readFrames, writeFrame } from './frame.js'

export const DEFAULT_SOCKET_DIR = '/run/flatnet'

export function socketPathFor (nodeName: string): string {
  return `${DEFAULT_SOCKET_DIR}/${nodeName}.sock`
}

/**
 * The socket of this node's daemon when the user names none: NODE_NAME (the DaemonSet
 * sets it, so `kubectl exec <pod> -- flatnet status` needs no flag), else the only
 * daemon socket in the directory.
 */
export function localDaemonSocket (env = process.env, dir = DEFAULT_SOCKET_DIR): string {
  if (env.NODE_NAME) return socketPathFor(env.NODE_NAME)
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sock') && n !== 'cni.sock')
  } catch {
    names = []
  }
  if (names.length === 1) return `${dir}/${names[0]}`
  throw new Error(names.length === 0
    ? `no flatnet daemon socket in ${dir}: is the daemon running on this node? Give --node NAME or --socket PATH`
    : `several daemon sockets in ${dir} (${names.join(', ')}): give --node NAME or --socket PATH`)
}

/** A reply, or a promise of one (a reply built in slices). */
export type Handler = (cmd: string) => unknown

/** What next() gives: a frame, or that the connection closed, or that the wait ran out. */
export type Next = { value: unknown, closed?: undefined, timedOut?: undefined } | { value?: undefined, closed: true, timedOut?: undefined } |
  { value?: undefined, closed?: undefined, timedOut: true }

/** A session's frames as they arrive, taken one at a time by whoever waits. */
class Inbox {
  private readonly frames: unknown[] = []
  private closed = false
  private wake: (() => void) | undefined

  push (value: unknown): void { this.frames.push(value); this.changed() }
  close (): void { this.closed = true; this.changed() }
  get isClosed (): boolean { return this.closed }

  /** The next frame; or the close; or, after ms, the timeout (one wait: a timer firing a moment early by Date.now() still ends it). */
  async next (ms: number): Promise<Next> {
    if (!this.frames.length && !this.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.wake = undefined; resolve() }, ms)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
    }
    if (this.frames.length) return { value: this.frames.shift() }
    return this.closed ? { closed: true } : { timedOut: true }
  }

  private changed (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }
}

/** A connection kept open past its first request (a successor waiting to take over). */
export interface Session {
  send (value: unknown): void
  next (timeoutMs: number): Promise<Next>
  readonly closed: boolean
  close (): void
  onClose?: () => void
}
export type SessionHandler = (request: Record<string, unknown>, session: Session) => void

/** What one local client may hold: a CLI query takes milliseconds and a few KB. */
export interface ControlLimits {
  idleMs: number // a connection silent this long (half-open, or a stalled partial frame) is closed
  maxConnections: number // beyond this, new connections are closed at once
  maxUnsentBytes: number // replies queued to a client that does not read them
}

export const CONTROL_LIMITS: ControlLimits = { idleMs: 10_000, maxConnections: 64, maxUnsentBytes: 4 << 20 }

/**
 * sessions: commands whose connection stays open, with no idle limit, for the handler's frames.
 * trusted: whether a client may talk at all (the daemon checks its peer's uid).
 */
export async function serveControl (path: string, handle: Handler, limits: ControlLimits = CONTROL_LIMITS,
  sessions: Record<string, SessionHandler> = {}, trusted: (socket: Socket) => boolean = () => true): Promise<Server> {
  const server = createServer((socket) => {
    if (!trusted(socket)) {
      socket.destroy()
      return
    }
    socket.setTimeout(limits.idleMs, () => socket.destroy())
    const reply = (value: unknown): void => {
      // A client pipelining requests without reading the answers would grow our write buffer without end.
      if (socket.writableLength > limits.maxUnsentBytes) {
        socket.destroy()
        return
      }
      writeFrame(socket, value)
    }
    let inbox: Inbox | undefined
    let replies = Promise.resolve()
    readFrames(socket, (req) => {
      if (socket.destroyed) return
      if (inbox) return inbox.push(req)
      const cmd = typeof req === 'object' && req !== null ? (req as { cmd?: unknown }).cmd : undefined
      if (typeof cmd !== 'string') return reply({ ok: false, error: 'request must be { cmd: string }' })
      const open = sessions[cmd]
      if (open) {
        socket.setTimeout(0)
        const frames = inbox = new Inbox()
        // end, not destroy: a refusal sent just before must reach the client.
        const s: Session = { send: reply, next: async (ms) => await frames.next(ms), get closed () { return frames.isClosed }, close: () => socket.end() }
        socket.once('close', () => { frames.close(); s.onClose?.() })
        return open(req as Record<string, unknown>, s)
      }
      // In the order asked, even when an earlier reply is still being built; none is built
      // for a client already cut off (it queued more than it read).
      replies = replies.then(() => socket.destroyed ? undefined : handle(cmd)).then(
        (value) => { if (!socket.destroyed) reply({ ok: true, ...(value as object) }) },
        (err: Error) => { if (!socket.destroyed) reply({ ok: false, error: err.message }) })
    }, () => {}, 64 << 10)
    socket.on('error', () => {})
  })
  server.maxConnections = limits.maxConnections
  await listenOwnerOnly(server, path)
  return server
}

/**
 * Listens on a unix socket at path for root and this user only: its directory made (or made
 * again: a hostPath is created 0755) 0700, a stale socket of a killed daemon replaced, and the
 * socket 0600 before anyone can use it, whatever the umask.
 */
export async function listenOwnerOnly (server: Server, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  chmodSync(dirname(path), 0o700)
  rmSync(path, { force: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { chmodSync(path, 0o600); resolve() })
  })
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

/** The client end of a session: its first reply, then the daemon's frames in order. */
export interface ClientSession {
  reply: Record<string, unknown>
  /** The next frame, or that the daemon closed the connection, or that timeoutMs passed. */
  next (timeoutMs: number): Promise<Next>
  send (value: unknown): void
  close (): void
}

/** Opens a session: rejects with the error code (ENOENT, ECONNREFUSED) when nobody listens. */
export async function openSession (path: string, request: Record<string, unknown>, timeoutMs = 3000): Promise<ClientSession> {
  const socket = createConnection(path)
  const frames = new Inbox()
  readFrames(socket, (v) => frames.push(v), () => {}, 16 << 20)
  socket.on('close', () => frames.close())
  const next = async (ms: number): Promise<Next> => await frames.next(ms)
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.once('connect', () => { socket.off('error', reject); socket.on('error', () => {}); resolve() })
  })
  writeFrame(socket, request)
  const first = await next(timeoutMs)
  if (first.value === undefined) {
    socket.destroy()
    throw new Error(first.closed ? `${path}: closed before answering` : `no answer from ${path} in ${timeoutMs} ms`)
  }
  return { reply: first.value as Record<string, unknown>, next, send: (v) => writeFrame(socket, v), close: () => socket.destroy() }
}
