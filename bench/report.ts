// What the benchmark reports: the metrics, a result file's shape, ratios to the
// baseline mode, and the terminal table.
import { CATEGORIES, type Profile } from './profile.js'

/**
 * Message sizes of the request/response tests: sockperf's least (its 14-byte header
 * stands in for netperf's 1-byte request), 64 and 1024 bytes. --quick runs 64 only.
 */
export const RR_SIZES = [14, 64, 1024] as const
export const RR_SIZES_QUICK: RrSize[] = [64]
export type RrSize = typeof RR_SIZES[number]
type RrFigure = 'Tps' | 'P50Us' | 'P90Us' | 'P99Us' | 'CpuUsPerTx'
export type RrKey = `${'tcp' | 'udp'}Rr${RrSize}${RrFigure}`

export type MetricKey = 'tcp1Gbps' | 'tcp1Retransmits' | 'tcp4Gbps' | 'tcp4Retransmits' | 'udp64Kpps' | 'udp64LossPct' | 'udp64PodLossPct' |
  'udpMtuGbps' | 'udpMtuLossPct' | 'udpMtuCpuSecPerGbit' |
  'sameTcp1Gbps' | 'sameTcp1CpuSecPerGbit' | 'sameTcpRr64Tps' | 'sameTcpRr64P50Us' |
  'rttP50Us' | 'rttP99Us' | 'rttSwitches' | RrKey | 'tcpCrrCps' | 'tcpCrrCpuUsPerConn' |
  'tcp1CpuSecPerGbit' | 'tcp4CpuSecPerGbit' | 'cpuSecPerGbit' | 'rssPeakMB'

/** The key of one figure of one request/response test. */
export function rrKey (proto: 'tcp' | 'udp', size: RrSize, figure: RrFigure): RrKey {
  return `${proto}Rr${size}${figure}`
}

export interface Metric {
  key: MetricKey
  label: string // the table's row; a leading space: a figure of the row above
  title: string // on its own, with its unit: the chart's panel, the noisy list, --compare
  better: 'higher' | 'lower'
  /** Only measured where a userspace process carries the packets (flatnet, openvpn). */
  processOnly?: boolean
  /**
   * A count or percentage near zero: a ratio would mislead, and so would its spread
   * against its median, so it is never flagged as noisy.
   */
  noRatio?: boolean
  /** Shown as a whole number (a median of two may end in .5). */
  count?: boolean
  /** Of a request/response test at this message size: run only when the run's sizes include it. */
  rrSize?: RrSize
}

export const METRICS: Metric[] = [
  { key: 'tcp1Gbps', label: 'TCP 1 stream Gbit/s', title: 'TCP 1 stream, Gbit/s', better: 'higher' },
  { key: 'tcp1Retransmits', label: ' retransmits', title: 'TCP 1 stream retransmits, count', better: 'lower', noRatio: true, count: true },
  { key: 'tcp4Gbps', label: 'TCP 4 streams Gbit/s', title: 'TCP 4 streams, Gbit/s', better: 'higher' },
  { key: 'tcp4Retransmits', label: ' retransmits', title: 'TCP 4 streams retransmits, count', better: 'lower', noRatio: true, count: true },
  { key: 'udp64Kpps', label: 'UDP 64 B kpps recv', title: 'UDP 64 B received, kpps', better: 'higher' },
  // Both of the datagrams sent, so the second is a part of the first (bench/iperf.ts).
  { key: 'udp64LossPct', label: 'UDP 64 B lost % sent', title: 'UDP 64 B lost, % of sent', better: 'lower', noRatio: true },
  { key: 'udp64PodLossPct', label: ' of it at the pod %', title: 'UDP 64 B lost at the pod, % of sent', better: 'lower', noRatio: true },
  { key: 'udpMtuGbps', label: 'UDP MTU-size Gbit/s', title: 'UDP datagrams of the path MTU received, Gbit/s', better: 'higher' },
  { key: 'udpMtuLossPct', label: ' lost % sent', title: 'UDP MTU-size lost, % of sent', better: 'lower', noRatio: true },
  { key: 'udpMtuCpuSecPerGbit', label: ' CPU s/Gbit, all', title: 'UDP MTU-size CPU, s/Gbit received', better: 'lower' },
  { key: 'rttP50Us', label: 'RTT p50 us', title: 'RTT p50 (UDP ping-pong), us', better: 'lower' },
  { key: 'rttP99Us', label: 'RTT p99 us', title: 'RTT p99 (UDP ping-pong), us', better: 'lower' },
  // Why a round trip costs what it does: the thread hand-offs on its way (bench/latency.ts).
  { key: 'rttSwitches', label: 'switches/round trip', title: 'Context switches, per round trip', better: 'lower' },
  ...(['tcp', 'udp'] as const).flatMap((proto) => RR_SIZES.flatMap((size): Metric[] => {
    const test = `${proto.toUpperCase()}_RR ${size} B`
    return [
      { key: rrKey(proto, size, 'Tps'), label: `${test} trans/s`, title: `${test}, transactions/s`, better: 'higher', rrSize: size },
      ...(['50', '90', '99'] as const).map((q): Metric => (
        { key: rrKey(proto, size, `P${q}Us`), label: ` p${q} us`, title: `${test} p${q}, us`, better: 'lower', rrSize: size })),
      // Service demand, as for the streams: every CPU's busy time per transaction.
      { key: rrKey(proto, size, 'CpuUsPerTx'), label: ' CPU us/trans, all', title: `${test} CPU, us/transaction`, better: 'lower', rrSize: size },
    ]
  })),
  { key: 'tcpCrrCps', label: 'TCP_CRR conn/s', title: 'TCP_CRR, connections/s', better: 'higher' },
  { key: 'tcpCrrCpuUsPerConn', label: ' CPU us/conn, all', title: 'TCP_CRR CPU, us/connection', better: 'lower' },
  // netperf's service demand: every CPU's busy time (softirq and daemons alike) per Gbit.
  { key: 'tcp1CpuSecPerGbit', label: 'CPU s/Gbit TCP 1, all', title: 'TCP 1 stream CPU, s/Gbit', better: 'lower' },
  { key: 'tcp4CpuSecPerGbit', label: 'CPU s/Gbit TCP 4, all', title: 'TCP 4 streams CPU, s/Gbit', better: 'lower' },
  { key: 'cpuSecPerGbit', label: 'daemon CPU s/Gbit', title: 'TCP 1 stream daemon CPU, s/Gbit', better: 'lower', processOnly: true },
  // Pod to pod on one node: the bridge alone in every mode, unless a mode's rules (the
  // pod guard, policy) sit on it; the cross-node figures above are read against these.
  { key: 'sameTcp1Gbps', label: 'same node: TCP 1 Gbit/s', title: 'Same node, TCP 1 stream, Gbit/s', better: 'higher' },
  { key: 'sameTcp1CpuSecPerGbit', label: ' CPU s/Gbit, all', title: 'Same node, TCP 1 stream CPU, s/Gbit', better: 'lower' },
  { key: 'sameTcpRr64Tps', label: ' TCP_RR 64 B trans/s', title: 'Same node, TCP_RR 64 B, transactions/s', better: 'higher' },
  { key: 'sameTcpRr64P50Us', label: '  p50 us', title: 'Same node, TCP_RR 64 B p50, us', better: 'lower' },
  { key: 'rssPeakMB', label: 'peak RSS MB/process', title: 'Peak RSS per daemon, MB', better: 'lower', processOnly: true },
]

/** The figures a run with these request/response sizes measures (of a kernel mode: no processOnly ones). */
export function metricsOfRun (rrSizes: readonly number[], userspace: boolean): Metric[] {
  return METRICS.filter((m) => (m.rrSize === undefined || rrSizes.includes(m.rrSize)) && (userspace || !m.processOnly))
}

/** A figure whose lowest-highest over the rounds exceeds this share of its median is flagged noisy. */
export const NOISE_SPREAD = 0.2

export type Metrics = Partial<Record<MetricKey, number>>
export type Spreads = Partial<Record<MetricKey, [number, number]>>

export interface ModeResult {
  mode: string
  description: string
  userspace: boolean
  ok: boolean // every metric that applies was measured
  /** Not run: the host cannot (error says why), as openvpn uninstalled or kernel VXLAN refused. */
  skipped?: boolean
  error?: string // why the mode (or some metric) failed, or was skipped
  metrics: Metrics // the median over the rounds
  errors: Partial<Record<MetricKey, string>>
  /** value / baseline value, where both exist and the baseline is not zero. */
  ratios: Metrics
  /** Every round's value and paired ratio, in round order (rounds without one left out). */
  samples?: Partial<Record<MetricKey, number[]>>
  ratioSamples?: Partial<Record<MetricKey, number[]>>
  /** Lowest and highest over the rounds (more than one round). */
  spread?: Spreads
  ratioSpread?: Spreads
  /** Why a figure is not to be trusted (bench/rounds.ts), with the machine's load then. */
  noisy?: Partial<Record<MetricKey, string>>
  details: Record<string, unknown>
  /** With --profile (first round only): where the CPU went in an extra 4-stream test. */
  profile?: Profile
  profileError?: string
}

export interface BenchResult {
  version: 1 | 2
  date: string // when the run ended
  started?: string
  command?: string
  /** The build measured: uncommittedChanges says the checkout differed from its commit. */
  flatnet?: { version: string, commit: string, uncommittedChanges?: boolean }
  /** The mode every ratio is taken against; none when neither candidate ran. */
  baseline?: string
  /** Why the baseline is not the preferred one (kernel VXLAN). */
  baselineNote?: string
  topology: string
  seconds: number
  rounds?: number // > 1: values are medians over rounds, ratios medians of per-round ratios
  quick: boolean
  /** The request/response tests' message sizes (absent in files from before them). */
  rrSizes?: number[]
  host: {
    cpus: number
    cpuModel?: string
    kernel: string
    node: string
    tcpCongestionControl?: string
    /** 1, 5 and 15-minute load averages when the run started and ended. */
    loadavg?: { before: number[], after: number[] }
  }
  /** CPUs the load generators were pinned to (see bench/pinning.ts). */
  placement: { sender: number, receiver: number, pingPong: number }
  modes: ModeResult[]
}

export function addRatios (modes: ModeResult[], baseline: string | undefined): void {
  const base = modes.find((m) => m.mode === baseline)?.metrics ?? {}
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

/** Metrics as rows, modes as columns: "value (ratio x)", or why it is missing; then the spread and the noisy figures. */
export function formatTable (result: BenchResult): string {
  const { modes } = result
  const lines: string[] = []
  const rounds = result.rounds ?? 1
  const cc = result.host.tcpCongestionControl ? `; TCP ${result.host.tcpCongestionControl}` : ''
  const ratioTo = result.baseline ? `(x) = ratio to ${result.baseline} of this run` : 'no ratios: neither kernel-vxlan nor host-gw ran'
  lines.push(`${result.topology}; ${result.seconds} s per test${cc}; ${ratioTo}`)
  if (result.baselineNote) lines.push(result.baselineNote)
  if (rounds > 1) lines.push(`medians of ${rounds} interleaved rounds, ratios paired within each round; ! = noisy (below)`)
  const load = result.host.loadavg
  if (load) lines.push(`load average (1 min) ${load.before[0].toFixed(2)} at the start, ${load.after[0].toFixed(2)} at the end; ${result.host.cpus} CPUs`)
  lines.push(headerRow('metric', modes))
  const shown = tableMetrics(result)
  for (const metric of shown) {
    const cells = modes.map((m) => {
      const v = m.metrics[metric.key]
      if (v === undefined) {
        if (m.skipped) return pad('skipped', CELL_WIDTH)
        if (m.errors[metric.key] || (!m.ok && (m.userspace || !metric.processOnly))) return pad('failed', CELL_WIDTH)
        return pad('-', CELL_WIDTH)
      }
      const r = m.ratios[metric.key]
      return pad(`${fmtOf(metric, v)}${r === undefined ? '' : ` (${r.toFixed(2)}x)`}${m.noisy?.[metric.key] ? '!' : ''}`, CELL_WIDTH)
    })
    lines.push(pad(metric.label, LABEL_WIDTH) + cells.join(''))
  }
  if (rounds > 1) {
    lines.push('lowest-highest over the rounds (spread as % of the median):')
    for (const metric of shown.filter((k) => modes.some((m) => m.spread?.[k.key]))) {
      const cells = modes.map((m) => {
        const s = m.spread?.[metric.key]
        const v = m.metrics[metric.key]
        if (!s || v === undefined) return pad('-', CELL_WIDTH)
        return pad(`${fmtOf(metric, s[0])}-${fmtOf(metric, s[1])}${v > 0 ? ` (${(100 * (s[1] - s[0]) / v).toFixed(0)}%)` : ''}`, CELL_WIDTH)
      })
      lines.push(pad(metric.label, LABEL_WIDTH) + cells.join(''))
    }
    lines.push(`ratio to ${result.baseline ?? 'the baseline'}, lowest-highest over the rounds:`)
    for (const metric of shown.filter((k) => modes.some((m) => m.ratioSpread?.[k.key]))) {
      const cells = modes.map((m) => {
        const s = m.ratioSpread?.[metric.key]
        return pad(s ? `${s[0].toFixed(2)}-${s[1].toFixed(2)}` : '-', CELL_WIDTH)
      })
      lines.push(pad(metric.label, LABEL_WIDTH) + cells.join(''))
    }
  }
  const noisy = modes.flatMap((m) => METRICS.filter((k) => m.noisy?.[k.key])
    .map((k) => `  ${m.mode} ${k.title}: ${m.noisy?.[k.key] as string}`))
  if (noisy.length) lines.push(`noisy (!): spread over ${100 * NOISE_SPREAD}% of the median, or an ordering that cannot be:`, ...noisy)
  const skipped = modes.filter((m) => m.skipped).map((m) => `  ${m.mode}: ${brief(m.error as string)}`)
  if (skipped.length) lines.push('not run here:', ...skipped)
  const notes = modes.filter((m) => m.error && !m.skipped).map((m) => `  ${m.mode}: ${brief(m.error as string)}`)
  if (notes.length) lines.push('failures:', ...notes)
  return lines.join('\n')
}

/** The rows of a run's table and panels of its chart: what it set out to measure, and anything else it has. */
export function tableMetrics (result: BenchResult): Metric[] {
  const sizes = result.rrSizes ?? []
  return METRICS.filter((k) => k.rrSize === undefined || sizes.includes(k.rrSize) || result.modes.some((m) => m.metrics[k.key] !== undefined))
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

/** A value of this metric as the table shows it. */
export function fmtOf (metric: Metric, v: number): string {
  return metric.count ? Math.round(v).toString() : fmt(v)
}

export function fmt (v: number): string {
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function pad (s: string, w: number): string {
  return s.length >= w ? s.slice(0, w - 1) + ' ' : s + ' '.repeat(w - s.length)
}
