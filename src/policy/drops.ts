// Denied connections, shown with the pods on both sides and the policies behind the drop.
// The table's deny chains copy each denied first packet's headers to an NFLOG group within
// one shared limit (nftables.ts); the native reader (native/nflog.cc) hands over what the
// kernel queued in batches, on a timer, never per packet. Here each record is named from
// the NodeTable the table was built from, merged with the identical flows before it, and
// kept in a list of at most MAX_FLOWS: memory stays bounded however long a flood lasts.
import { canonicalIP } from './addresses.js'
import { addon as nativeAddon, type NflogRecord } from '../native.js'
import type { Logger } from '../log.js'
import { DROP_LOG_PREFIX, DROP_LOG_SNAPLEN, type DenyReason, type Direction } from './nftables.js'
import type { PolicyType } from './objects.js'

/** The NFLOG group of the policy table's deny chains: one per network namespace, so one per node. */
export const DROP_LOG_GROUP = 9474
/** The flows kept, the least recently seen forgotten first. */
export const MAX_FLOWS = 1000
// The table lets through at most 100 records a second (burst 200): a poll every half second
// reads at most a few hundred, a bounded slice of the event loop.
const POLL_MS = 500
const READ_MAX = 1000
// A predecessor daemon holds the group until it exits (a rolling update): asked again this often.
const REOPEN_MS = 5000
// New flows logged at most LOG_LINES per LOG_WINDOW_MS; the rest are one summary line.
export const LOG_LINES = 10
export const LOG_WINDOW_MS = 10_000

/** One side of a flow: the address, and the pod holding it when the table knows one. */
export interface Endpoint { ip: string, pod?: string }

export interface DeniedFlow {
  direction: Direction
  reason: DenyReason
  from: Endpoint
  to: Endpoint
  /** TCP, UDP, SCTP, ICMP, ICMPv6, or the protocol number. */
  protocol: string
  /** The destination port (absent for a protocol without ports). */
  port?: number
  /** The policies isolating the pod whose chain dropped it ("namespace/name"). */
  isolatedBy: string[]
  /** The reason in words, as `flatnet policy explain` says it. */
  why: string
  /** Logged first packets of this flow (the table logs at most 100 a second of all flows). */
  count: number
  firstSeen: number
  lastSeen: number
}

/** What `flatnet policy drops` asks for (control command `policy-drops`). */
export interface DropsView {
  group: number
  /** Most recently seen first. */
  flows: DeniedFlow[]
  /** Records read since the start. */
  records: number
  /** Records the kernel could not deliver (the socket's buffer overflowed). */
  lost: number
  /** Why nothing is read now, if so. */
  error?: string
}

/** The counts PolicyState carries (stats, metrics). */
export interface DropLogStats { group: number, records: number, lost: number, flows: number, error?: string }

/** What names a record: the NodeTable the table was built from (node-table.ts). */
export interface FlowNamer {
  podAt: (ip: string) => string | undefined
  isolatedBy: (pod: string, type: PolicyType) => string[]
}

/** The direction and reason a deny chain's prefix carries, or undefined for a prefix not the table's. */
export function parsePrefix (prefix: string): { direction: Direction, reason: DenyReason } | undefined {
  const [head, direction, reason] = prefix.trim().split(' ')
  if (head !== DROP_LOG_PREFIX) return undefined
  if (direction !== 'ingress' && direction !== 'egress') return undefined
  if (reason !== 'isolated' && reason !== 'unknown') return undefined
  return { direction, reason }
}

const PROTOCOLS: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' }
export const protocolName = (proto: number): string => PROTOCOLS[proto] ?? String(proto)

/** The reason in the words of `flatnet policy explain`. */
function reasonText (direction: Direction, reason: DenyReason, pod: string | undefined, by: string[]): string {
  if (reason === 'unknown') return 'a pod of this node not yet in the table'
  const side = direction === 'ingress' ? 'ingress' : 'egress'
  if (by.length === 0) return `${side}: isolated; no rule allows it`
  return `${side} of ${pod as string}: isolated by ${by.join(', ')}; no rule allows it`
}

/**
 * The flows seen, identical ones (direction, reason, addresses, protocol, destination port)
 * merged: a flood of retries or of new source ports is one flow with a count. Insertion
 * order is recency (a flow seen again moves to the end), so forgetting the oldest is O(1).
 */
export class DeniedFlows {
  private readonly flows = new Map<string, DeniedFlow>()

  constructor (private readonly max = MAX_FLOWS) {}

  get size (): number { return this.flows.size }

  /** Adds one logged packet; returns its flow when the flow is new. */
  add (r: NflogRecord, now: number, namer: FlowNamer | undefined): DeniedFlow | undefined {
    const kind = parsePrefix(r.prefix)
    if (!kind) return undefined
    const saddr = canonicalIP(r.saddr) ?? r.saddr
    const daddr = canonicalIP(r.daddr) ?? r.daddr
    const hasPort = r.dport !== 0 || r.sport !== 0
    const k = `${kind.direction} ${kind.reason} ${saddr} ${daddr} ${r.proto} ${hasPort ? r.dport : ''}`
    const seen = this.flows.get(k)
    if (seen) {
      seen.count++
      seen.lastSeen = now
      this.flows.delete(k)
      this.flows.set(k, seen)
      return undefined
    }
    // Named once, when first seen: the names stay what they were at the drop.
    const endpoint = (ip: string): Endpoint => {
      const pod = namer?.podAt(ip)
      return pod === undefined ? { ip } : { ip, pod }
    }
    const from = endpoint(saddr)
    const to = endpoint(daddr)
    const isolated = kind.direction === 'ingress' ? to.pod : from.pod
    const isolatedBy = kind.reason === 'isolated' && isolated !== undefined && namer !== undefined
      ? namer.isolatedBy(isolated, kind.direction === 'ingress' ? 'Ingress' : 'Egress')
      : []
    const flow: DeniedFlow = {
      direction: kind.direction,
      reason: kind.reason,
      from,
      to,
      protocol: protocolName(r.proto),
      ...hasPort ? { port: r.dport } : {},
      isolatedBy,
      why: reasonText(kind.direction, kind.reason, isolated, isolatedBy),
      count: 1,
      firstSeen: now,
      lastSeen: now,
    }
    this.flows.set(k, flow)
    if (this.flows.size > this.max) this.flows.delete(this.flows.keys().next().value as string)
    return flow
  }

  /** Most recently seen first. */
  list (): DeniedFlow[] {
    return [...this.flows.values()].reverse()
  }
}

/** At most `lines` per window; what is held back is counted, to be said in one line once its window ends. */
export class LogBudget {
  private windowStart = -Infinity
  private used = 0
  private held = 0
  private ended = 0

  constructor (private readonly lines = LOG_LINES, private readonly windowMs = LOG_WINDOW_MS) {}

  /** Whether a line may go out now. */
  take (now: number): boolean {
    this.roll(now)
    if (this.used < this.lines) { this.used++; return true }
    this.held++
    return false
  }

  /** The lines held back in windows that have ended, each counted once (0 while the window runs). */
  heldBack (now: number): number {
    this.roll(now)
    const n = this.ended
    this.ended = 0
    return n
  }

  private roll (now: number): void {
    if (now - this.windowStart < this.windowMs) return
    this.ended += this.held
    this.held = 0
    this.windowStart = now
    this.used = 0
  }
}

/** The native calls the reader makes (the addon's, or a test's stand-in). */
export interface NflogCalls {
  nflogOpen: (group: number, copyRange: number) => number
  nflogRead: (fd: number, max: number) => { records: NflogRecord[], overruns: number }
  closeDescriptor: (fd: number) => void
}

export interface DropLogOptions {
  log: Logger
  /** The NodeTable the table now holds: names the pods. */
  namer: () => FlowNamer | undefined
  group?: number
  native?: NflogCalls
  now?: () => number
}

/**
 * Reads the group on a timer and keeps the flows. open() says whether the kernel has
 * NFLOG at all (if not, the table is rendered without log statements: nft would refuse
 * them); a group held by another socket (a predecessor daemon) is asked for again later.
 */
export class DropLog {
  readonly group: number
  private readonly flows = new DeniedFlows()
  private readonly budget = new LogBudget()
  private readonly native: NflogCalls
  private readonly now: () => number
  private fd: number | undefined
  private timer: NodeJS.Timeout | undefined
  private nextOpen = 0
  private lastSeq: number | undefined
  private records = 0
  private lost = 0
  private error: string | undefined

  constructor (private readonly o: DropLogOptions) {
    this.group = o.group ?? DROP_LOG_GROUP
    this.native = o.native ?? nativeAddon
    this.now = o.now ?? Date.now
  }

  /** Opens the group and starts polling; false when the kernel has no NFLOG (drops are then counted only). */
  open (): boolean {
    const err = this.tryOpen()
    if (err !== undefined && !held(err)) {
      this.o.log.warn({ err: err.message }, 'network policy drops not logged: this kernel has no NFLOG (nfnetlink_log); they are counted only')
      this.error = `no NFLOG: ${err.message}`
      return false
    }
    this.timer = setInterval(() => this.poll(), POLL_MS)
    this.timer.unref()
    return true
  }

  stop (): void {
    clearInterval(this.timer)
    if (this.fd !== undefined) this.native.closeDescriptor(this.fd)
    this.fd = undefined
  }

  stats (): DropLogStats {
    return { group: this.group, records: this.records, lost: this.lost, flows: this.flows.size, ...this.error !== undefined ? { error: this.error } : {} }
  }

  view (): DropsView {
    return { group: this.group, flows: this.flows.list(), records: this.records, lost: this.lost, ...this.error !== undefined ? { error: this.error } : {} }
  }

  /** One timer tick: everything queued, in batches of READ_MAX (tests call it directly). */
  poll (): void {
    const now = this.now()
    // The last window's count first, before the lines of the next.
    const held = this.budget.heldBack(now)
    if (held > 0) this.o.log.info({ flows: held, seconds: LOG_WINDOW_MS / 1000 }, 'network policy denied more new connections than logged')
    if (this.fd === undefined) {
      if (now < this.nextOpen) return
      if (this.tryOpen() !== undefined) return
    }
    try {
      for (let batch = 0; batch < 4; batch++) {
        const { records, overruns } = this.native.nflogRead(this.fd as number, READ_MAX)
        if (overruns > 0 && this.lastSeq === undefined) this.lost += overruns // no sequence to count the gap by
        const namer = records.length > 0 ? this.o.namer() : undefined
        for (const r of records) this.take(r, now, namer)
        if (records.length < READ_MAX) break
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'network policy drop log failed; reopening it')
      this.error = (err as Error).message
      this.native.closeDescriptor(this.fd as number)
      this.fd = undefined
      this.nextOpen = now + REOPEN_MS
    }
  }

  private take (r: NflogRecord, now: number, namer: FlowNamer | undefined): void {
    this.records++
    if (r.seq !== undefined) {
      // NFULA_SEQ counts every record the instance built: a gap is records dropped on the way.
      if (this.lastSeq !== undefined) this.lost += (r.seq - this.lastSeq - 1) >>> 0
      this.lastSeq = r.seq
    }
    const flow = this.flows.add(r, now, namer)
    if (flow === undefined || !this.budget.take(now)) return
    this.o.log.info({
      direction: flow.direction,
      from: flow.from.pod ?? flow.from.ip,
      to: flow.to.pod ?? flow.to.ip,
      protocol: flow.protocol,
      ...flow.port !== undefined ? { port: flow.port } : {},
      reason: flow.why,
    }, 'network policy denied a connection')
  }

  /** undefined when open; else the error (a held group is retried after REOPEN_MS). */
  private tryOpen (): Error | undefined {
    try {
      this.fd = this.native.nflogOpen(this.group, DROP_LOG_SNAPLEN)
      this.lastSeq = undefined // a new instance numbers from 0
      if (this.error !== undefined) this.o.log.info({ group: this.group }, 'network policy drop log open again')
      this.error = undefined
      return undefined
    } catch (err) {
      this.nextOpen = this.now() + REOPEN_MS
      this.error = held(err as Error) ? `NFLOG group ${this.group} is held by another process (a predecessor daemon?): retried every ${REOPEN_MS / 1000} s` : (err as Error).message
      return err as Error
    }
  }
}

/** EPERM/EBUSY from the bind: another socket has the group (nfulnl_recv_config, net/netfilter/nfnetlink_log.c). */
const held = (err: Error): boolean => {
  const errno = (err as Error & { errno?: number }).errno
  return errno === 1 || errno === 16
}

/** `flatnet policy drops` as a table: most recent first. */
export function formatDrops (view: DropsView, now: number): string {
  const age = (ms: number): string => {
    const s = Math.max(0, Math.round((now - ms) / 1000))
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`
  }
  const side = (e: Endpoint): string => e.pod !== undefined ? `${e.pod} (${e.ip})` : e.ip
  const head = ['AGE', 'DIRECTION', 'FROM', 'TO', 'PROTO/PORT', 'COUNT', 'REASON']
  const rows = view.flows.map((f) => [
    age(f.lastSeen), f.direction, side(f.from), side(f.to), f.port !== undefined ? `${f.protocol}/${f.port}` : f.protocol, String(f.count), f.why,
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const lines = [head, ...rows].map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ').trimEnd())
  const notes: string[] = []
  if (view.flows.length === 0) notes.push('no denied connection logged yet')
  if (view.error !== undefined) notes.push(`drop log: ${view.error}`)
  if (view.lost > 0) notes.push(`${view.lost} records lost by the kernel (the daemon read too slowly)`)
  return `${[...lines, ...notes].join('\n')}\n`
}
