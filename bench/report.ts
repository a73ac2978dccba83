// What the benchmark reports: the metrics, a result file's shape, ratios to the
// baseline mode, and the terminal table.
import { BASELINE } from './modes.js'
import { CATEGORIES, type Profile } from './profile.js'

export type MetricKey = 'tcp1Gbps' | 'tcp4Gbps' | 'udp64Kpps' | 'udp64LossPct' | 'udp64PodLossPct' | 'rttP50Us' | 'rttP99Us' | 'rttSwitches' | 'cpuSecPerGbit' | 'rssPeakMB'

export interface Metric {
  key: MetricKey
  label: string
  better: 'higher' | 'lower'
  /** Only measured where a userspace process carries the packets (flatnet, openvpn). */
  processOnly?: boolean
  /** A ratio would mislead (a loss percentage against a near-zero one). */
  noRatio?: boolean
}

export const METRICS: Metric[] = [
  { key: 'tcp1Gbps', label: 'TCP 1 stream Gbit/s', better: 'higher' },
  { key: 'tcp4Gbps', label: 'TCP 4 streams Gbit/s', better: 'higher' },
  { key: 'udp64Kpps', label: 'UDP 64 B kpps recv', better: 'higher' },
  { key: 'udp64LossPct', label: 'UDP 64 B loss %', better: 'lower', noRatio: true },
  // Of the loss, what the data plane delivered but the receiving pod had no room for.
  { key: 'udp64PodLossPct', label: ' of it in the pod %', better: 'lower', noRatio: true },
  { key: 'rttP50Us', label: 'RTT p50 us', better: 'lower' },
  { key: 'rttP99Us', label: 'RTT p99 us', better: 'lower' },
  // Why a round trip costs what it does: the thread hand-offs on its way (bench/latency.ts).
  { key: 'rttSwitches', label: 'switches/round trip', better: 'lower' },
  { key: 'cpuSecPerGbit', label: 'CPU s/Gbit (TCP 1)', better: 'lower', processOnly: true },
  { key: 'rssPeakMB', label: 'peak RSS MB/process', better: 'lower', processOnly: true },
]

export type Metrics = Partial<Record<MetricKey, number>>

export interface ModeResult {
  mode: string
  description: string
  userspace: boolean
  ok: boolean // every metric that applies was measured
  error?: string // why the mode (or some metric) failed
  metrics: Metrics
  errors: Partial<Record<MetricKey, string>>
  /** value / baseline value, where both exist and the baseline is not zero. */
  ratios: Metrics
  details: Record<string, unknown>
  /** With --profile (first round only): where the CPU went in an extra 4-stream test. */
  profile?: Profile
  profileError?: string
}

export interface BenchResult {
  version: 1
  date: string
  baseline: string
  topology: string
  seconds: number
  rounds?: number // > 1: values are medians over rounds, ratios medians of per-round ratios
  quick: boolean
  host: { cpus: number, kernel: string, node: string, tcpCongestionControl?: string }
  /** CPUs the load generators were pinned to (see bench/pinning.ts). */
  placement: { sender: number, receiver: number, pingPong: number }
  modes: ModeResult[]
}

export function addRatios (modes: ModeResult[]): void {
  const base = modes.find((m) => m.mode === BASELINE)?.metrics ?? {}
  for (const m of modes) {
    m.ratios = {}
    for (const { key, noRatio } of METRICS) {
      if (noRatio) continue
      const v = m.metrics[key]
      const b = base[key]
      if (v !== undefined && b !== undefined && b > 0) m.ratios[key] = v / b
    }
  }
}

const LABEL_WIDTH = 22
const CELL_WIDTH = 19

/** Metrics as rows, modes as columns: "value (ratio x)", or why it is missing. */
export function formatTable (result: BenchResult): string {
  const { modes } = result
  const lines: string[] = []
  const rounds = result.rounds ?? 1
  const cc = result.host.tcpCongestionControl ? `; TCP ${result.host.tcpCongestionControl}` : ''
  lines.push(`${result.topology}; ${result.seconds} s per test${cc}; (x) = ratio to ${result.baseline} of this run` +
    (rounds > 1 ? `;\nmedians of ${rounds} interleaved rounds, ratios paired within each round (spread in the JSON)` : ''))
  lines.push(headerRow('metric', modes))
  for (const metric of METRICS) {
    const cells = modes.map((m) => {
      const v = m.metrics[metric.key]
      if (v === undefined) {
        if (m.errors[metric.key] || (!m.ok && (m.userspace || !metric.processOnly))) return pad('failed', CELL_WIDTH)
        return pad('-', CELL_WIDTH)
      }
      const r = m.ratios[metric.key]
      return pad(`${fmt(v)}${r === undefined ? '' : ` (${r.toFixed(2)}x)`}`, CELL_WIDTH)
    })
    lines.push(pad(metric.label, LABEL_WIDTH) + cells.join(''))
  }
  if (rounds > 1) {
    lines.push(`ratio to ${result.baseline}, lowest-highest over the rounds:`)
    for (const metric of METRICS.filter((m) => !m.noRatio && !m.processOnly)) {
      const cells = modes.map((m) => {
        const s = (m.details.ratioSpread as Record<string, [number, number]> | undefined)?.[metric.key]
        return pad(s ? `${s[0].toFixed(2)}-${s[1].toFixed(2)}` : '-', CELL_WIDTH)
      })
      lines.push(pad(metric.label, LABEL_WIDTH) + cells.join(''))
    }
  }
  const notes = modes.filter((m) => m.error).map((m) => `  ${m.mode}: ${brief(m.error as string)}`)
  if (notes.length) lines.push('failures:', ...notes)
  return lines.join('\n')
}

/**
 * The --profile table: per kind of work, CPU seconds per Gbit carried and its share
 * of all CPUs' time; the busy total also as a ratio to the baseline's. Undefined when
 * no mode was profiled.
 */
export function formatProfile (result: BenchResult): string | undefined {
  const { modes } = result
  if (!modes.some((m) => m.profile || m.profileError)) return undefined
  const base = modes.find((m) => m.mode === result.baseline)?.profile
  const cell = (m: ModeResult, f: (p: Profile) => string): string => pad(m.profile ? f(m.profile) : m.profileError ? 'failed' : '-', CELL_WIDTH)
  const row = (label: string, f: (p: Profile) => string): string => pad(label, LABEL_WIDTH) + modes.map((m) => cell(m, f)).join('')
  const lines = [
    'where the CPU goes, TCP 4 streams (perf -a): CPU s per Gbit carried (share of all CPUs\' time)',
    headerRow('', modes),
    ...CATEGORIES.map((c) => row(c.label, (p) => `${p.secPerGbit[c.key].toFixed(4)} (${p.sharePct[c.key].toFixed(0)}%)`)),
    row('busy, all', (p) => `${p.secPerGbit.busy.toFixed(4)}${base ? ` (${(p.secPerGbit.busy / base.secPerGbit.busy).toFixed(2)}x)` : ''}`),
    row('idle %, all (by CPU)', (p) => `${p.idlePct.toFixed(0)} (${p.idlePctByCpu.map((v) => v.toFixed(0)).join('/')})`),
    row('Gbit/s, that test', (p) => fmt(p.gbps)),
  ]
  const failed = modes.filter((m) => m.profileError).map((m) => `  ${m.mode}: ${brief(m.profileError as string)}`)
  if (failed.length) lines.push('profile failures:', ...failed)
  return lines.join('\n')
}

function headerRow (label: string, modes: ModeResult[]): string {
  return pad(label, LABEL_WIDTH) + modes.map((m) => pad(m.mode, CELL_WIDTH)).join('')
}

/** An error's first lines, short enough for a terminal (the JSON keeps all of it). */
function brief (error: string): string {
  return error.split('\n').slice(0, 3).map((l) => l.length > 240 ? `${l.slice(0, 240)}...` : l).join('\n    ')
}

function fmt (v: number): string {
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function pad (s: string, w: number): string {
  return s.length >= w ? s.slice(0, w - 1) + ' ' : s + ' '.repeat(w - s.length)
}
