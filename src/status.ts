// `flatnet status`: one screen on a node's daemon, as `cilium status` or `calicoctl node
// status` give it: what runs, whether it is ready, which peers answer, what policy holds,
// and the last warnings. The daemon's `status` control command is the data (and --json).
import type { PathHealth } from './reach/prober.js'
import type { RecentLine } from './log.js'
import type { EncryptionState } from './peer-table.js'

interface PathSummary { reachable: number, unreachable: number, unknown: number, down: Array<{ peer: string } & PathHealth> }

export interface Status {
  node: string
  version: string
  commit: string
  uptimeSeconds: number
  ready: string | null
  dataplane: {
    tun: string
    mtu: number
    workers: string
    queues: number
    socketSteering: string
    offloads: Record<string, boolean>
    vtep: string
    vni: number
  }
  metricsPort: number
  sources: Record<string, boolean>
  peers: { total: number, refused: number, probes: { overlay: PathSummary, underlay: PathSummary } | null }
  /** Absent with encryption "none". */
  encryption?: { mode: 'wireguard', publicKey: string, port: number, strict: boolean, peers: Record<EncryptionState, number> }
  policy: {
    error?: string
    stale?: string
    policies: number
    localPods: number
    rules: number
    lastApplyMs: number
    applies: number
    denied: { ingress: number, egress: number, readAt?: number }
  } | null
  warnings: RecentLine[]
}

/** Unreachable peers named per path, at most this many (the count says how many more). */
const SHOWN = 20

export function renderStatus (s: Status, now = Date.now()): string {
  const lines: string[] = []
  const row = (head: string, text: string): void => { lines.push(`${head.padEnd(12)}${text}`) }
  lines.push(`flatnet ${s.version} (${s.commit}) on ${s.node}: ${s.ready === null ? 'ready' : `NOT READY: ${s.ready}`} (up ${duration(s.uptimeSeconds)})`)
  const d = s.dataplane
  const on = enabledOffloads(d.offloads)
  row('data plane', `${d.tun} mtu ${d.mtu}, ${d.workers} ${d.queues} queue${d.queues === 1 ? '' : 's'}` +
    `${d.workers === 'per-cpu' ? ` (steering: ${d.socketSteering})` : ''}, VTEP ${d.vtep} VNI ${d.vni}`)
  row('offloads', on.length ? on.join(' ') : 'none')
  row('sources', Object.entries(s.sources).map(([k, up]) => `${k} ${up ? 'up' : 'DOWN'}`).join(', ') || 'none')
  const probes = s.peers.probes
  const refused = s.peers.refused ? `, ${s.peers.refused} records refused` : ''
  if (!probes) {
    row('peers', `${s.peers.total}${refused} (probes off)`)
  } else {
    const part = (name: string, p: PathSummary): string =>
      `${name} ${p.reachable}/${s.peers.total} reachable${p.unreachable ? `, ${p.unreachable} UNREACHABLE` : ''}${p.unknown ? `, ${p.unknown} probing` : ''}`
    row('peers', `${part('overlay', probes.overlay)}; ${part('underlay', probes.underlay)}${refused}`)
    for (const path of ['overlay', 'underlay'] as const) {
      const down = probes[path].down
      for (const p of down.slice(0, SHOWN)) {
        const other = path === 'overlay' ? probes.underlay.down.some((u) => u.peer === p.peer) ? ', underlay down too' : '' : ''
        row('', `${p.peer}: ${path} unreachable for ${duration((now - p.since) / 1000)} (${p.lastError ?? 'no answer'}, ` +
          `${p.lost}/${p.sent} lost${other})`)
      }
      // The daemon names at most 100; the count is whole.
      const more = probes[path].unreachable - Math.min(down.length, SHOWN)
      if (more > 0) row('', `... and ${more} more on the ${path}`)
    }
  }
  const e = s.encryption
  if (e) {
    const plain = e.peers.plain ? `, ${e.peers.plain} PLAIN (no key)` : ''
    const blocked = e.peers.blocked ? `, ${e.peers.blocked} BLOCKED (no key, strict)` : ''
    row('encryption', `wireguard on port ${e.port}${e.strict ? ' (strict)' : ''}, key ${e.publicKey}; ` +
      `${e.peers.wireguard}/${s.peers.total} peers with a key${plain}${blocked}`)
  }
  const p = s.policy
  if (!p) {
    row('policy', 'off (no "networkPolicy" in the config)')
  } else {
    const state = p.error ? `NOT ENFORCED: ${p.error}` : p.stale ? `enforced, objects STALE: ${p.stale}` : 'enforced'
    row('policy', `${state}; ${plural(p.policies, 'policy', 'policies')}, ${plural(p.localPods, 'local pod')}, ${plural(p.rules, 'rule')}`)
    // The table's counters are read every few seconds (slower with a large table): their age is part of the figure.
    const age = p.denied.readAt === undefined ? 'not read yet' : `counted ${duration((now - p.denied.readAt) / 1000)} ago`
    row('', `last apply ${Math.round(p.lastApplyMs)} ms (${plural(p.applies, 'apply', 'applies')}); ` +
      `denied: ${p.denied.ingress} ingress, ${p.denied.egress} egress (${age}; the flows: flatnet policy drops)`)
  }
  if (!s.warnings.length) {
    row('warnings', 'none since start')
  } else {
    row('warnings', `last ${s.warnings.length}, oldest first:`)
    for (const w of s.warnings) {
      const fields = Object.entries(w.fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
      row('', `${w.time} ${w.level} ${w.msg}${fields ? ` ${fields}` : ''}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function plural (n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

const OFFLOAD_NAMES: Record<string, string> = { tunCsum: 'tun-csum', tunTso: 'tun-tso', tunUso: 'tun-uso', udpGso: 'udp-gso', udpGro: 'udp-gro' }

/** The offloads in use, by their short names (the ready line and status show these). */
export function enabledOffloads (info: object): string[] {
  return Object.keys(OFFLOAD_NAMES).filter((k) => (info as Record<string, unknown>)[k] === true).map((k) => OFFLOAD_NAMES[k])
}

function duration (seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`
}
