// Updating the daemon without a gap in the node's pod traffic: a new daemon started
// beside the running one (a DaemonSet's surge pod) registers as its successor; when
// the running one is told to stop (SIGTERM), it passes its data plane over instead of
// closing it. What moves: the TUN queue and receive socket descriptors (SCM_RIGHTS,
// native/handover.cc), the peer table, and WireGuard's sessions (keys in the handover
// message; counters and replay windows, as the stopped threads left them, with the baton). Packets queued meanwhile wait in the TUN's
// queue and the sockets' buffers; the successor reads them. As Envoy's hot restart and
// HAProxy's socket transfer do, the versions are checked first, and whatever cannot
// hand over falls back to a clean start.
//
// The successor's session on the control socket (frames in order):
//   S: { cmd: 'successor', version, pid, listen, tun, port, address }
//   O: { ok, version, pid }                       or { ok: false, error }: S waits, then starts clean
//   ... until O's SIGTERM ...
//   O: { event: 'handover', state, peers, wireguard? }  after passing the descriptors to `listen`
//   S: { event: 'ready' }                         table installed, threads started and
//                                                 blocked on the baton pipe (passed last)
//   O: stops its threads, writes the baton        (native: no JavaScript in the gap; to a
//                                                 version 2 successor, the sessions' state first)
//   S: { event: 'running' }                       its threads took the baton
//   O closes the session when it exits (0), having withdrawn nothing.
// No two daemons' threads ever read one queue, so no flow is reordered; the gap is a
// thread join and a wakeup. A predecessor that dies closes the pipe, which starts the
// successor's threads as well.
import { mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Config } from './config.js'
import type { Logger } from './log.js'
import { addon, type AdoptedDataplane, type Dataplane, type HandoverState } from './native.js'
import { type ClientSession, type Next, openSession, queryControl, type Session } from './control-socket.js'
import type { PeerTable } from './peer-table.js'
import { formatAddress } from './net/cidr.js'
import { tableFromWire, tableToWire } from './control/state-file.js'
import type { VtepRecord } from './control/vtep.js'

// 2: WireGuard's sessions go with the data plane. A version 1 daemon (before) still hands over
// to this one and takes over from it, without them: its peers handshake anew.
export const HANDOVER_VERSION = 2
const HANDOVER_VERSIONS = [1, 2]
const READY_MS = 5000 // successor: receive, adopt and install the table
const RUNNING_MS = 2000 // successor: start its threads; meanwhile nothing forwards
const EXIT_MS = 10_000 // predecessor: quiet stop (sources, policy, probes) after the handover

interface Identity { tun: string, port: number, address: string }
function identity (config: Config): Identity {
  return { tun: config.tun.name, port: config.underlay.port, address: formatAddress(config.underlay.address) }
}

// ---- the running daemon's side

interface Waiting { pid: number, listen: string, session: Session, version: number }

/** What the running daemon's WireGuard gives a successor: its sessions (stopping it), or it goes on. */
export interface HandsWireGuard { handover: () => unknown, resume: () => void }

/** The running daemon's end: takes successor registrations, hands over on request. */
export class Succession {
  private successor: Waiting | undefined
  private onArrival: (() => void) | undefined
  /** The last handover failed: this daemon forwards on, and waits for the next successor. */
  failed = false

  constructor (private readonly config: Config, private readonly controlPath: string, private readonly dataplane: Dataplane,
    private readonly table: PeerTable, private readonly log: Logger, private readonly wireguard?: HandsWireGuard) {}

  /** Session handler for the control socket's `successor` command. */
  readonly accept = (req: Record<string, unknown>, session: Session): void => {
    const refuse = (error: string): void => { session.send({ ok: false, version: HANDOVER_VERSION, error }); session.close() }
    if (!HANDOVER_VERSIONS.includes(req.version as number)) return refuse(`handover version ${String(req.version)} not spoken here (this daemon speaks ${HANDOVER_VERSIONS.join(' and ')})`)
    const mine = identity(this.config)
    const theirs = { tun: req.tun, port: req.port, address: req.address }
    const differs = (Object.keys(mine) as Array<keyof Identity>).filter((k) => mine[k] !== theirs[k])
    if (differs.length) return refuse(`the successor's ${differs.join(', ')} differ${differs.length === 1 ? 's' : ''} from this daemon's`)
    if (typeof req.listen !== 'string' || dirname(req.listen) !== dirname(this.controlPath)) {
      return refuse('listen must be a socket beside the control socket')
    }
    if (this.waiting) return refuse(`a successor (pid ${this.successor!.pid}) is already waiting`)
    const w: Waiting = { pid: Number(req.pid), listen: req.listen, session, version: req.version as number }
    session.onClose = () => { if (this.successor === w) this.successor = undefined }
    this.successor = w
    session.send({ ok: true, version: HANDOVER_VERSION, pid: process.pid })
    this.log.info({ successor: w.pid }, 'a successor waits: the data plane is handed over when this daemon stops')
    this.onArrival?.()
  }

  get waiting (): boolean {
    return this.successor !== undefined && !this.successor.session.closed
  }

  /** Resolves once a successor registers (a stop whose handover failed waits for the next). */
  async arrival (): Promise<void> {
    if (this.waiting) return
    await new Promise<void>((resolve) => { this.onArrival = resolve })
    this.onArrival = undefined
  }

  /**
   * Passes the data plane to the waiting successor. true: it runs the data plane now, and
   * this daemon must exit without undoing anything (call done() last). false: this
   * daemon still forwards (its threads were restarted if they had been stopped).
   */
  async handOver (): Promise<boolean> {
    const w = this.successor
    if (!w || !this.waiting) return false
    const passSessions = this.wireguard !== undefined && w.version >= 2
    const failed = (why: string): false => {
      if (passSessions) this.wireguard?.resume()
      this.failed = true
      this.log.warn({ successor: w.pid }, `handover failed: ${why}; still forwarding`)
      w.session.close()
      return false
    }
    const started = process.hrtime.bigint()
    this.log.info({ successor: w.pid }, 'handing the data plane over')
    try {
      this.dataplane.handTo(w.listen)
    } catch (err) {
      return failed(`cannot pass the descriptors (${(err as Error).message})`)
    }
    const wireguard = passSessions ? { wireguard: this.wireguard?.handover() } : {}
    w.session.send({ event: 'handover', state: this.dataplane.handoverState(), peers: tableToWire(this.table.list()), ...wireguard })
    this.log.info({ successor: w.pid }, 'descriptors and table passed; waiting for the successor')
    const ready = await w.session.next(READY_MS)
    if (!isEvent(ready, 'ready')) return failed(describe(ready, 'ready'))
    const stopping = process.hrtime.bigint()
    const errno = this.dataplane.handOff(passSessions)
    // What forwarding waits for: our threads' join (the successor's wake is a pipe write away).
    const gapMs = Number(process.hrtime.bigint() - stopping) / 1e6
    if (errno) {
      this.dataplane.start()
      return failed(`the successor is gone (errno ${errno})`)
    }
    const running = await w.session.next(RUNNING_MS)
    if (running.closed) {
      this.dataplane.start() // it died with our threads stopped; its own died with it
      return failed(describe(running, 'running'))
    }
    // A live process took the baton: it forwards, even if it is slow to say so.
    if (!isEvent(running, 'running')) this.log.warn({ successor: w.pid }, describe(running, 'running'))
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    this.log.info({ successor: w.pid, ms: Math.round(ms * 10) / 10, gapMs: Math.round(gapMs * 1000) / 1000 }, 'handed the data plane over')
    return true
  }

  /** Closes the session: the successor takes the control socket and the probes' port. */
  done (): void {
    this.successor?.session.close()
  }
}

function isEvent (n: Next, event: string): boolean {
  const v = n.value
  return typeof v === 'object' && v !== null && (v as { event?: unknown }).event === event
}

function describe (n: Next, wanted: string): string {
  if (n.closed) return `the successor went away before "${wanted}"`
  if (n.timedOut) return `no "${wanted}" from the successor in time`
  const error = typeof n.value === 'object' && n.value !== null ? (n.value as { error?: unknown }).error : undefined
  return `the successor said ${error ? String(error) : JSON.stringify(n.value)}`
}

// ---- the new daemon's side

/** A data plane taken over and not yet running: run() stops the predecessor's threads and starts ours. */
export interface TakenOver {
  dataplane: Dataplane
  peers: VtepRecord[]
  /** The predecessor's WireGuard sessions (unchecked; WireGuardDataPath.hand checks them), if it passed any. */
  wireguard?: unknown
  /** Call with the table installed: returns once this daemon forwards and its predecessor is gone. */
  run (start: () => void): Promise<void>
}

export type AdoptFn = (adopt: AdoptedDataplane) => Dataplane

/**
 * Before a daemon opens anything: if one already runs for this node, waits to succeed
 * it. Returns the data plane it hands over; 'clean' when no daemon runs; 'after' when
 * one ran and could not hand over: start clean once it has released the port and TUN.
 */
export async function succeed (config: Config, controlPath: string, log: Logger, adopt: AdoptFn): Promise<TakenOver | 'clean' | 'after'> {
  const listen = `${dirname(controlPath)}/${config.nodeName}.successor.sock`
  let session
  let fd: number | undefined
  try {
    mkdirSync(dirname(controlPath), { recursive: true, mode: 0o700 })
    fd = addon.listenHandover(listen)
    const ask = async (version: number): Promise<ClientSession> => await openSession(controlPath, { cmd: 'successor', version, pid: process.pid, listen, ...identity(config) })
    session = await ask(HANDOVER_VERSION)
    // A daemon from before version 2 refuses it, saying what it speaks: asked again in that.
    if (!session.reply.ok && session.reply.version === 1) {
      session.close()
      session = await ask(1)
    }
  } catch (err) {
    if (fd !== undefined) addon.closeDescriptor(fd)
    rmSync(listen, { force: true })
    const code = (err as NodeJS.ErrnoException).code
    // No daemon here (no socket, or a dead one's): the ordinary start.
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return 'clean'
    log.warn({ err: (err as Error).message }, 'cannot ask the running daemon to hand over; starting clean once it has stopped')
    return 'after'
  }
  const cleanup = (): void => { addon.closeDescriptor(fd!); rmSync(listen, { force: true }); session.close() }
  const { reply } = session
  if (!reply.ok) {
    cleanup()
    log.warn({ predecessor: reply.error }, 'the running daemon cannot hand over; starting clean once it has stopped')
    return 'after'
  }
  const predecessor = Number(reply.pid)
  log.info({ predecessor, version: reply.version }, 'another daemon runs this node: taking over its data plane when it stops')
  const handover = await session.next(2 ** 31 - 1)
  const msg = handover.value as { event?: string, state?: HandoverState, peers?: unknown[], wireguard?: unknown } | undefined
  if (msg?.event !== 'handover' || !msg.state || !Array.isArray(msg.peers)) {
    cleanup()
    log.warn({ predecessor }, 'the running daemon stopped without handing over; starting clean')
    return 'after'
  }
  let dataplane: Dataplane
  let peers: VtepRecord[]
  try {
    peers = tableFromWire(msg.peers, 'handed peer table')
    const fds = addon.receiveDescriptors(fd, READY_MS)
    const q = msg.state.queues
    const w = msg.state.wgQueues ?? 0 // a predecessor from before WireGuard sends none
    if (fds.length !== 2 * q + w + 1) {
      fds.forEach(addon.closeDescriptor)
      throw new Error(`handed ${fds.length} descriptors for ${q} queues and ${w} WireGuard sockets`)
    }
    // closes them if it throws
    dataplane = adopt({ ...msg.state, tun: fds.slice(0, q), rx: fds.slice(q, 2 * q), wg: fds.slice(2 * q, 2 * q + w), baton: fds[2 * q + w] })
  } catch (err) {
    session.send({ event: 'refused', error: (err as Error).message })
    cleanup()
    log.warn({ predecessor, err: (err as Error).message }, 'cannot take over the data plane; starting clean once the predecessor has stopped')
    return 'after'
  }
  addon.closeDescriptor(fd)
  rmSync(listen, { force: true })
  return {
    dataplane,
    peers,
    wireguard: msg.wireguard,
    run: async (start) => {
      start() // the threads wait for the baton
      session.send({ event: 'ready' })
      for (const until = Date.now() + READY_MS + RUNNING_MS; dataplane.info().takingOver;) {
        const { closed } = await session.next(1)
        // Gone before passing the baton: dead (the pipe's close starts us), or it gave up.
        if ((closed && await alive(controlPath)) || Date.now() > until) {
          dataplane.stop()
          session.close()
          throw new Error('the predecessor kept its data plane (the handover timed out); this daemon exits')
        }
      }
      session.send({ event: 'running' })
      // Its control socket and probe port are free once it has gone.
      const gone = await session.next(EXIT_MS)
      session.close()
      if (gone.timedOut) log.warn({ predecessor }, 'the predecessor did not exit after the handover; going on without it')
      log.info({ predecessor, queues: msg.state!.queues }, 'took over the data plane')
    },
  }
}

/** Whether a daemon answers on the control socket (a SIGKILLed one's socket refuses). */
async function alive (controlPath: string): Promise<boolean> {
  return await queryControl(controlPath, 'stats', 1000).then(() => true, () => false)
}
