// The prober fed from the peer table, reported as an operator reads it: a log line when
// a peer becomes unreachable or reachable again (rate-limited: a rack going dark is a
// few lines and a count, not 5,000), metrics of bounded size, and each peer's state for
// `flatnet status` and `flatnet peers`.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Address, Cidr } from '../net/cidr.js'
import { formatAddress } from '../net/cidr.js'
import type { Logger } from '../log.js'
import { addon } from '../native.js'
import type { PeerEntry, PeerTable } from '../peer-table.js'
import { type PathHealth, PATHS, type ProbePath, Prober, PROBE_DEFAULTS, type ProbeTarget } from './prober.js'

/** Series of flatnet_peer_reachable: one per unreachable peer and path, up to this many. */
export const MAX_PEER_SERIES = 100
const LOG_WINDOW_MS = 10_000
const LOG_LINES_PER_WINDOW = 20

export interface PeerHealthOptions {
  table: PeerTable
  podCIDRs: Cidr[] // this node's: the overlay probes' source (the TUN holds each network address)
  underlay: Address
  port: number
  intervalMs: number
  log: Logger
}

export class PeerHealth {
  private readonly prober: Prober
  private readonly rtt = new Histogram({
    name: 'flatnet_peer_probe_rtt_seconds',
    help: 'Round trip of answered node-to-node probes, all peers together, by path (overlay: through the data plane; underlay: node to node).',
    labelNames: ['path'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [],
  })

  private readonly probes = new Counter({
    name: 'flatnet_peer_probes_total',
    help: 'Node-to-node probes sent, by path and result (answered, lost).',
    labelNames: ['path', 'result'],
    registers: [],
  })

  private logged = 0
  private suppressed = 0
  private readonly window: NodeJS.Timeout

  constructor (private readonly options: PeerHealthOptions) {
    const { log } = options
    this.prober = new Prober({
      ...PROBE_DEFAULTS,
      engine: new addon.Prober(PROBE_DEFAULTS.timeoutMs),
      port: options.port,
      intervalMs: options.intervalMs,
      onChange: (peer, path, h) => this.report(peer, path, h),
      onAnswer: (path, ms) => this.rtt.observe({ path }, ms / 1000),
      onProbe: (path, answered) => this.probes.inc({ path, result: answered ? 'answered' : 'lost' }),
    })
    this.window = setInterval(() => {
      if (this.suppressed) log.warn({ changes: this.suppressed }, 'more peers changed reachability (lines suppressed; see flatnet status)')
      this.logged = this.suppressed = 0
    }, LOG_WINDOW_MS)
    this.window.unref()
    options.table.onChange((changed, removed) => this.changed(changed, removed))
    this.prober.sync(new Map(options.table.list().map((p) => [p.nodeName, this.target(p)])))
  }

  health (peer: string): Partial<Record<ProbePath, PathHealth>> | undefined {
    return this.prober.health(peer)
  }

  summary (): ReturnType<Prober['summary']> {
    return this.prober.summary()
  }

  /** Probing starts once the node is ready: at 5,000 peers the first round would compete with the first policy sync. */
  start (): void {
    this.prober.start()
  }

  stop (): void {
    clearInterval(this.window)
    this.prober.stop()
  }

  register (registry: Registry): void {
    registry.registerMetric(this.rtt)
    registry.registerMetric(this.probes)
    const prober = this.prober
    registry.registerMetric(new Gauge({
      name: 'flatnet_peers_reachable',
      help: 'Peers by node-to-node probe state and path: reachable, unreachable, unknown (not yet decided).',
      labelNames: ['path', 'state'],
      registers: [],
      collect () {
        this.reset()
        const s = prober.summary()
        for (const path of PATHS) for (const state of ['reachable', 'unreachable', 'unknown'] as const) this.set({ path, state }, s[path][state])
      },
    }))
    registry.registerMetric(new Gauge({
      name: 'flatnet_peer_reachable',
      help: `0 for each peer unreachable on a path, the longest-unreachable ${MAX_PEER_SERIES} per path; reachable peers have no series ` +
        '(their count is flatnet_peers_reachable): bounded at 5,000 peers.',
      labelNames: ['peer', 'path'],
      registers: [],
      collect () {
        this.reset()
        const s = prober.summary()
        for (const path of PATHS) for (const d of s[path].down.slice(0, MAX_PEER_SERIES)) this.set({ peer: d.peer, path }, 0)
      },
    }))
  }

  private changed (changed: PeerEntry[], removed: string[]): void {
    for (const p of changed) this.prober.set(p.nodeName, this.target(p))
    for (const name of removed) this.prober.remove(name)
  }

  private target (p: PeerEntry): ProbeTarget {
    const t: ProbeTarget = {}
    for (const own of this.options.podCIDRs) {
      const theirs = p.podCIDRs.find((c) => c.family === own.family)
      if (theirs) {
        t.overlay = { address: formatAddress(theirs), local: formatAddress(own) }
        break
      }
    }
    if (p.address.family === this.options.underlay.family) {
      t.underlay = { address: formatAddress(p.address), local: formatAddress(this.options.underlay) }
    }
    return t
  }

  private report (peer: string, path: ProbePath, h: PathHealth): void {
    if (this.logged >= LOG_LINES_PER_WINDOW) {
      this.suppressed++
      return
    }
    this.logged++
    if (h.reachable) {
      this.options.log.info({ peer, path, rttMs: round(h.rttMs) }, 'peer reachable')
      return
    }
    // Which path failed says where to look: the overlay alone is the peer's data plane
    // (or the VXLAN port filtered); both is the node or the network.
    const underlay = path === 'overlay' ? this.prober.health(peer)?.underlay?.reachable : undefined
    this.options.log.warn({ peer, path, error: h.lastError, underlayReachable: underlay }, 'peer unreachable')
  }
}

function round (ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 100) / 100
}
