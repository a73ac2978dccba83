// Node-to-node health: every peer is probed through the overlay (the path pod traffic
// takes: routed into the TUN, encapsulated to the peer's VTEP, decapsulated by the peer's
// data plane and answered by its kernel) and on the underlay (the node itself). A probe
// is a TCP SYN to a port nobody needs to listen on: a SYN-ACK or a RST back is an answer
// (RFC 9293 3.5.2), so kernel vxlan peers answer as flatnet peers do, neither runs
// anything for it, and no raw socket is needed (the DaemonSet has no NET_RAW). The
// connects run in native code (native/prober.h): JavaScript schedules and reads results
// in batches, at a few microseconds a probe.
import { constants } from 'node:os'
import { type Address, parseAddress } from '../net/cidr.js'
import type { NativeProber } from '../native.js'
import { MinHeap } from './heap.js'

export type ProbePath = 'overlay' | 'underlay'
export const PATHS: ProbePath[] = ['overlay', 'underlay']

/** Where one peer is probed from and to, per path (absent: not probed, e.g. no common family). */
export type ProbeTarget = Partial<Record<ProbePath, { address: string, local: string }>>

export interface PathHealth {
  reachable: boolean | undefined // undefined: not yet decided
  since: number // ms epoch: when `reachable` last changed (or the peer was added)
  rttMs: number | undefined // the last answer's round trip, as the event loop saw it
  lastError: string | undefined // why the last probe got no answer
  sent: number // probes in the window (the last WINDOW)
  lost: number // of which unanswered
}

export interface ProberOptions {
  engine: NativeProber // made with the same timeoutMs
  port: number // TCP port probed on each peer
  intervalMs: number // between probes of a reachable peer, +-25% jitter
  timeoutMs: number // a probe unanswered this long is lost
  misses: number // consecutive lost probes before a peer is unreachable
  underlayIntervalMs: number // the underlay is probed this often, and at once when the overlay misses
  maxInFlight: number // probes open at once (each holds a socket until answered or timed out)
  downIntervalMs?: number // a peer reported unreachable is probed at most this seldom (default DOWN_INTERVAL_MS)
  onChange: (peer: string, path: ProbePath, health: PathHealth) => void // reachable changed to true or false
  onAnswer?: (path: ProbePath, rttMs: number) => void
  onProbe?: (path: ProbePath, answered: boolean) => void
  now?: () => number
  tickMs?: number // how often due probes are sent and results read (round trips are timed natively)
}

/** Detection within 10 s (issue budget): a peer dying just after an answer misses at most interval*1.25 + misses*timeout later. */
export const PROBE_DEFAULTS = { port: 9474, intervalMs: 4000, timeoutMs: 1000, misses: 3, underlayIntervalMs: 15_000, maxInFlight: 1024 }

const WINDOW = 32 // probes the loss figure covers
/** The longest wait between probes of a peer already reported unreachable: how late its return may be noticed. */
export const DOWN_INTERVAL_MS = 30_000

interface PathState extends PathHealth {
  history: number // WINDOW bits, 1 = lost, newest in bit 0
  misses: number
  due: number // when the next probe is scheduled; a heap entry for another time is stale
  inFlight: boolean
}

interface Peer {
  name: string
  target: ProbeTarget
  parsed: Partial<Record<ProbePath, { address: Address, local: Address }>>
  paths: Partial<Record<ProbePath, PathState>>
}

interface InFlight { peer: Peer, path: ProbePath, s: PathState }

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]))

interface Due { at: number, peer: Peer, path: ProbePath }

export class Prober {
  private readonly peers = new Map<string, Peer>()
  private readonly queue = new MinHeap<Due>((a, b) => a.at - b.at)
  private readonly inFlight = new Map<number, InFlight>()
  private nextId = 1
  private stopped = false
  private readonly now: () => number
  private tick: NodeJS.Timeout | undefined
  /** Probes that waited for a free slot (maxInFlight reached). */
  deferred = 0

  constructor (private readonly options: ProberOptions) {
    this.now = options.now ?? Date.now
  }

  /** Starts probing (peers may be set before: their first probes fall due from then on). */
  start (): void {
    if (this.tick || this.stopped) return
    // One wake-up a tick for all peers: a timer per due probe woke the event loop
    // thousands of times a second at 5,000 peers, which cost more than the probes.
    this.tick = setInterval(() => { this.collect(); this.run() }, this.options.tickMs ?? 50)
    this.tick.unref()
  }

  /** Adds, retargets or keeps each peer given; drops the rest. */
  sync (targets: Map<string, ProbeTarget>): void {
    for (const name of this.peers.keys()) if (!targets.has(name)) this.peers.delete(name)
    for (const [name, target] of targets) this.set(name, target)
  }

  set (name: string, target: ProbeTarget): void {
    const old = this.peers.get(name)
    if (old && sameTarget(old.target, target)) return
    const now = this.now()
    const peer: Peer = { name, target, parsed: {}, paths: {} }
    for (const path of PATHS) {
      const t = target[path]
      const address = t && parseAddress(t.address)
      const local = t && parseAddress(t.local)
      if (!address || !local || address.family !== local.family) continue
      peer.parsed[path] = { address, local }
      // A new peer's first probe falls anywhere in the first interval: 5,000 peers
      // learned at once do not all probe in the same tick.
      const first = now + Math.random() * this.interval(path)
      peer.paths[path] = { reachable: undefined, since: now, rttMs: undefined, lastError: undefined, sent: 0, lost: 0, history: 0, misses: 0, due: first, inFlight: false }
      this.queue.push({ at: first, peer, path })
    }
    this.peers.set(name, peer)
  }

  remove (name: string): void {
    this.peers.delete(name) // its queued probes find it gone and are dropped
  }

  health (name: string): Partial<Record<ProbePath, PathHealth>> | undefined {
    const p = this.peers.get(name)
    if (!p) return undefined
    return Object.fromEntries(Object.entries(p.paths).map(([path, s]) => [path, view(s)]))
  }

  /** Peers per state and path; `unreachable` names them, oldest failure first. */
  summary (): Record<ProbePath, { reachable: number, unreachable: number, unknown: number, down: Array<{ peer: string } & PathHealth> }> {
    const out = Object.fromEntries(PATHS.map((p) => [p, { reachable: 0, unreachable: 0, unknown: 0, down: [] as Array<{ peer: string } & PathHealth> }])) as
      ReturnType<Prober['summary']>
    for (const peer of this.peers.values()) {
      for (const path of PATHS) {
        const s = peer.paths[path]
        if (!s) continue
        if (s.reachable === true) out[path].reachable++
        else if (s.reachable === undefined) out[path].unknown++
        else {
          out[path].unreachable++
          out[path].down.push({ peer: peer.name, ...view(s) })
        }
      }
    }
    for (const path of PATHS) out[path].down.sort((a, b) => a.since - b.since)
    return out
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.tick)
    this.options.engine.stop()
  }

  private interval (path: ProbePath): number {
    return path === 'overlay' ? this.options.intervalMs : this.options.underlayIntervalMs
  }

  private schedule (peer: Peer, path: ProbePath, at: number): void {
    const s = peer.paths[path]
    if (!s || s.inFlight || s.due <= at) return // already due sooner
    s.due = at
    this.queue.push({ at, peer, path })
  }

  private run (): void {
    if (this.stopped) return
    const now = this.now()
    for (let d = this.queue.peek(); d && d.at <= now; d = this.queue.peek()) {
      const s = d.peer.paths[d.path]
      const current = s !== undefined && this.peers.get(d.peer.name) === d.peer && s.due === d.at && !s.inFlight
      if (current && this.inFlight.size >= this.options.maxInFlight) {
        this.deferred++
        return // the next tick goes on, with the slots answers freed
      }
      this.queue.pop()
      if (current) this.probe(d.peer, d.path, s)
    }
  }

  private probe (peer: Peer, path: ProbePath, s: PathState): void {
    const { address, local } = peer.parsed[path] as { address: Address, local: Address }
    const id = this.nextId
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
    s.inFlight = true
    this.inFlight.set(id, { peer, path, s })
    this.options.engine.probe(id, address.family, address.bytes, local.bytes, this.options.port)
  }

  /** Results since the last call: each probe's answer, its error or its timeout. */
  private collect (): void {
    const r = this.options.engine.take()
    for (let i = 0; i < r.length; i += 4) {
      const f = this.inFlight.get(r[i])
      if (!f) continue
      this.inFlight.delete(r[i])
      f.s.inFlight = false
      this.result(f.peer, f.path, f.s, r[i + 1] === 1, r[i + 2] / 1000, r[i + 1] === 1 ? undefined : errorName(r[i + 3]))
    }
  }

  private result (peer: Peer, path: ProbePath, s: PathState, answered: boolean, rttMs: number, error: string | undefined): void {
    if (this.peers.get(peer.name) !== peer) return // removed or retargeted meanwhile
    const now = this.now()
    s.history = ((s.history << 1) | (answered ? 0 : 1)) >>> 0
    s.sent = Math.min(s.sent + 1, WINDOW)
    s.lost = popcount(s.history & (s.sent === WINDOW ? 0xffffffff : (1 << s.sent) - 1))
    this.options.onProbe?.(path, answered)
    const wasDown = s.reachable === false
    let next = now + jitter(this.interval(path))
    if (answered) {
      s.misses = 0
      s.rttMs = rttMs
      s.lastError = undefined
      this.options.onAnswer?.(path, rttMs)
      if (s.reachable !== true) this.change(peer, path, s, true, now)
    } else {
      s.misses++
      s.lastError = error
      if (s.reachable !== false && s.misses >= this.options.misses) this.change(peer, path, s, false, now)
      // Until decided, retry at once (a fast error, e.g. no route, at most once a timeout),
      // and ask the underlay, which tells a dead node from a dead data plane. Once down, back
      // off to DOWN_INTERVAL_MS: a node cut off from 5,000 peers would otherwise spend its
      // probes (and a core's tenth) on peers it already reports.
      if (s.reachable !== false) next = now + Math.max(0, this.options.timeoutMs - rttMs)
      else if (wasDown) next = now + jitter(Math.min(this.options.downIntervalMs ?? DOWN_INTERVAL_MS, this.interval(path) * 2 ** Math.min(4, s.misses - this.options.misses)))
      if (path === 'overlay' && !wasDown) this.schedule(peer, 'underlay', now)
    }
    s.due = next
    this.queue.push({ at: next, peer, path })
  }

  private change (peer: Peer, path: ProbePath, s: PathState, reachable: boolean, now: number): void {
    const was = s.reachable
    s.reachable = reachable
    s.since = now
    // The first answer of a new peer is no news; everything else is.
    if (!(reachable && was === undefined)) this.options.onChange(peer.name, path, view(s))
  }
}

function errorName (errno: number): string {
  return errno === constants.errno.ETIMEDOUT ? 'timeout' : ERRNO_NAMES.get(errno) ?? `errno ${errno}`
}

function view (s: PathState): PathHealth {
  return { reachable: s.reachable, since: s.since, rttMs: s.rttMs, lastError: s.lastError, sent: s.sent, lost: s.lost }
}

function jitter (ms: number): number {
  return ms * (0.75 + Math.random() * 0.5)
}

function popcount (n: number): number {
  let c = 0
  for (let v = n >>> 0; v; v &= v - 1) c++
  return c
}

function sameTarget (a: ProbeTarget, b: ProbeTarget): boolean {
  return PATHS.every((p) => a[p]?.address === b[p]?.address && a[p]?.local === b[p]?.local)
}
