// `npm run bench -- --compare BEFORE.json AFTER.json`: per mode and figure, the change
// between two runs and whether it is beyond the noise. The noise is the spread of both
// runs: a change counts only when every round of one run is above every round of the
// other, for the values and, separately, for the ratios to the baseline (which cancel a
// machine that was slower as a whole). A run of one round has no spread to judge by.
import { readFileSync } from 'node:fs'
import { fmtOf, METRICS, type BenchResult, type Metric, type MetricKey, type ModeResult } from './report.js'

export type Verdict = 'better' | 'worse' | 'within the noise' | 'no spread'

export interface Change {
  mode: string
  metric: Metric
  before: number
  after: number
  beforeRange?: [number, number]
  afterRange?: [number, number]
  verdict: Verdict
  ratio?: { before: number, after: number, verdict: Verdict }
}

interface RoundDetails { metrics?: Record<string, number>, ratios?: Record<string, number> }

/** Every round's value of a figure; files from before `samples` keep them in details.rounds. */
export function samplesOf (m: ModeResult, key: MetricKey, of: 'metrics' | 'ratios'): number[] {
  const kept = (of === 'metrics' ? m.samples : m.ratioSamples)?.[key]
  if (kept) return kept
  const rounds = m.details.rounds as RoundDetails[] | undefined
  const fromRounds = rounds?.map((r) => r[of]?.[key]).filter((v): v is number => typeof v === 'number')
  if (fromRounds?.length) return fromRounds
  const v = m[of][key]
  return v === undefined ? [] : [v]
}

/** Better, worse or neither, judged by whether the two sets of rounds overlap. */
export function verdict (before: number[], after: number[], better: Metric['better']): Verdict {
  if (before.length < 2 || after.length < 2) return 'no spread'
  const up = Math.min(...after) > Math.max(...before)
  const down = Math.max(...after) < Math.min(...before)
  if (!up && !down) return 'within the noise'
  return up === (better === 'higher') ? 'better' : 'worse'
}

export function compareResults (a: BenchResult, b: BenchResult): Change[] {
  const sameBaseline = a.baseline !== undefined && a.baseline === b.baseline
  const changes: Change[] = []
  for (const ma of a.modes) {
    const mb = b.modes.find((m) => m.mode === ma.mode)
    if (!mb) continue
    for (const metric of METRICS) {
      const before = ma.metrics[metric.key]
      const after = mb.metrics[metric.key]
      if (before === undefined || after === undefined) continue
      const sa = samplesOf(ma, metric.key, 'metrics')
      const sb = samplesOf(mb, metric.key, 'metrics')
      const change: Change = { mode: ma.mode, metric, before, after, beforeRange: range(sa), afterRange: range(sb), verdict: verdict(sa, sb, metric.better) }
      const ra = ma.ratios[metric.key]
      const rb = mb.ratios[metric.key]
      if (sameBaseline && ra !== undefined && rb !== undefined && ma.mode !== a.baseline) {
        change.ratio = { before: ra, after: rb, verdict: verdict(samplesOf(ma, metric.key, 'ratios'), samplesOf(mb, metric.key, 'ratios'), metric.better) }
      }
      changes.push(change)
    }
  }
  return changes
}

export function formatCompare (a: BenchResult, b: BenchResult, names: [string, string]): string {
  const lines = [
    `before: ${names[0]}: ${describe(a)}`,
    `after:  ${names[1]}: ${describe(b)}`,
    'beyond the noise = every round of one run above every round of the other; (lowest-highest over the rounds)',
  ]
  if (a.host.kernel !== b.host.kernel || a.host.cpuModel !== b.host.cpuModel || a.host.cpus !== b.host.cpus) {
    lines.push('note: the runs are from different hosts or kernels; compare the ratios')
  }
  if (a.baseline !== b.baseline) lines.push(`note: different baselines (${a.baseline ?? 'none'}, ${b.baseline ?? 'none'}): ratios not compared`)
  const only = [...a.modes.filter((m) => !b.modes.some((n) => n.mode === m.mode)).map((m) => `${m.mode} (before only)`),
    ...b.modes.filter((m) => !a.modes.some((n) => n.mode === m.mode)).map((m) => `${m.mode} (after only)`)]
  if (only.length) lines.push(`not compared: ${only.join(', ')}`)
  const ratioHeader = a.baseline === b.baseline && a.baseline ? `ratio to ${a.baseline}` : ''
  lines.push(row(['mode', 'figure', 'before', 'after', 'change', 'verdict', ratioHeader]))
  for (const c of compareResults(a, b)) {
    const change = c.before === 0 ? (c.after === 0 ? '0%' : 'from 0') : `${c.after >= c.before ? '+' : ''}${(100 * (c.after - c.before) / c.before).toFixed(1)}%`
    const ratio = c.ratio ? `${c.ratio.before.toFixed(2)}x -> ${c.ratio.after.toFixed(2)}x, ${beyond(c.ratio.verdict)}` : ''
    lines.push(row([c.mode, c.metric.title, withRange(c.metric, c.before, c.beforeRange), withRange(c.metric, c.after, c.afterRange), change, beyond(c.verdict), ratio]))
  }
  return lines.join('\n')
}

/** Reads two result files and formats their comparison. */
export function compareFiles (before: string, after: string): string {
  return formatCompare(readResult(before), readResult(after), [before, after])
}

function readResult (file: string): BenchResult {
  let r: BenchResult
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as BenchResult
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`)
  }
  if (!Array.isArray(r.modes)) throw new Error(`${file}: not a bench result (no "modes")`)
  return r
}

function describe (r: BenchResult): string {
  const build = r.flatnet ? `flatnet ${r.flatnet.version} ${r.flatnet.commit}${r.flatnet.uncommittedChanges ? '+changes' : ''}, ` : ''
  return `${r.date}, ${build}${r.rounds ?? 1} round(s) of ${r.seconds} s, Linux ${r.host.kernel}`
}

function beyond (v: Verdict): string {
  if (v === 'no spread') return 'no spread (1 round)'
  return v === 'better' || v === 'worse' ? `${v}, beyond the noise` : v
}

function range (values: number[]): [number, number] | undefined {
  return values.length > 1 ? [Math.min(...values), Math.max(...values)] : undefined
}

function withRange (metric: Metric, v: number, r: [number, number] | undefined): string {
  const f = (x: number): string => fmtOf(metric, x)
  return r ? `${f(v)} (${f(r[0])}-${f(r[1])})` : f(v)
}

const WIDTHS = [18, 36, 20, 20, 9, 26]

function row (cells: string[]): string {
  return cells.map((c, i) => i < WIDTHS.length ? c.padEnd(WIDTHS[i] - 1) + ' ' : c).join('').trimEnd()
}
