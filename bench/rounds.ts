// Several rounds of every mode, interleaved (round 1: all modes, round 2: all modes,
// ...), folded into one result per mode. On a shared machine the load drifts over
// minutes, so a ratio is taken within each round, between runs minutes apart at most,
// and the median of those paired ratios is reported; values are per-metric medians.
// Every round's value stays in the result, and a figure that moved too much between
// rounds, or contradicts itself, is flagged noisy with the machine's load at the time.
import { addRatios, fmt, METRICS, NOISE_SPREAD, type MetricKey, type Metrics, type ModeResult, type Spreads } from './report.js'

type Samples = Partial<Record<MetricKey, number[]>>

/** rounds[r][i]: mode i of round r (every round runs the same modes in the same order). */
export function combineRounds (rounds: ModeResult[][], baseline: string | undefined): ModeResult[] {
  for (const round of rounds) addRatios(round, baseline)
  return rounds[0].map((first, i) => {
    const runs = rounds.map((round) => round[i])
    const samples: Samples = {}
    const ratioSamples: Samples = {}
    const metrics: Metrics = {}
    const ratios: Metrics = {}
    const spread: Spreads = {}
    const ratioSpread: Spreads = {}
    for (const { key } of METRICS) {
      const values = runs.map((r) => r.metrics[key]).filter((v): v is number => v !== undefined)
      if (values.length) {
        samples[key] = values
        metrics[key] = median(values)
        if (runs.length > 1) spread[key] = [Math.min(...values), Math.max(...values)]
      }
      const rs = runs.map((r) => r.ratios[key]).filter((v): v is number => v !== undefined)
      if (rs.length) {
        ratioSamples[key] = rs
        ratios[key] = median(rs)
        if (runs.length > 1) ratioSpread[key] = [Math.min(...rs), Math.max(...rs)]
      }
    }
    const folded: ModeResult = {
      ...first,
      metrics,
      ratios,
      samples,
      ratioSamples,
      noisy: noiseFlags(runs, samples, ratioSamples),
    }
    if (runs.length === 1) return folded
    const errors = Object.assign({}, ...runs.map((r) => r.errors))
    // The same error in every round (a mode skipped, say) is said once.
    const sameEverywhere = new Set(runs.map((r) => r.error)).size === 1
    const failed = sameEverywhere ? [first.error].filter(Boolean) : runs.map((r, n) => r.error ? `round ${n + 1}: ${r.error}` : '').filter(Boolean)
    return {
      ...folded,
      ok: runs.every((r) => r.ok),
      error: failed.length ? failed.join('; ') : undefined,
      errors,
      spread,
      ratioSpread,
      details: { rounds: runs.map((r) => ({ metrics: r.metrics, ratios: r.ratios, details: r.details })) },
    }
  })
}

/**
 * The figures of one mode not to be trusted, each with why: a lowest-highest (of the
 * values or of the paired ratios) wider than NOISE_SPREAD of its median, or, where the
 * kernel carries every packet, fewer Gbit/s with 4 streams than with 1 in a round: the
 * kernel spreads streams over the CPUs, so that round lost its CPUs to something else.
 */
export function noiseFlags (runs: ModeResult[], samples: Samples, ratioSamples: Samples): Partial<Record<MetricKey, string>> {
  const why: Partial<Record<MetricKey, string[]>> = {}
  const add = (key: MetricKey, reason: string): void => { (why[key] ??= []).push(reason) }
  for (const { key, noRatio } of METRICS) {
    if (noRatio) continue
    const wide = (values: number[] | undefined): string | undefined => {
      if (!values || values.length < 2) return undefined
      const lo = Math.min(...values)
      const hi = Math.max(...values)
      const mid = median(values)
      return mid > 0 && (hi - lo) / mid > NOISE_SPREAD ? `${(100 * (hi - lo) / mid).toFixed(0)}% of the median (${fmt(lo)}-${fmt(hi)})` : undefined
    }
    const v = wide(samples[key])
    if (v) add(key, `spread ${v}`)
    const r = wide(ratioSamples[key])
    if (r) add(key, `ratio spread ${r}`)
  }
  if (!runs[0]?.userspace) {
    runs.forEach((run, n) => {
      const one = run.metrics.tcp1Gbps
      const four = run.metrics.tcp4Gbps
      if (one === undefined || four === undefined || four >= one) return
      const reason = `4 streams below 1 stream${runs.length > 1 ? ` in round ${n + 1}` : ''} (${fmt(four)} < ${fmt(one)} Gbit/s)`
      add('tcp1Gbps', reason)
      add('tcp4Gbps', reason)
    })
  }
  const load = loadDuring(runs)
  const flags: Partial<Record<MetricKey, string>> = {}
  for (const [key, reasons] of Object.entries(why) as Array<[MetricKey, string[]]>) {
    flags[key] = reasons.join('; ') + (load ? `; ${load}` : '')
  }
  return flags
}

/** The 1-minute load average over the mode's runs, as measureMode records it. */
function loadDuring (runs: ModeResult[]): string | undefined {
  const loads = runs.flatMap((r) => {
    const l = r.details.loadavg as { before: number[], after: number[] } | undefined
    return l ? [l.before[0], l.after[0]] : []
  })
  if (!loads.length) return undefined
  const lo = Math.min(...loads)
  const hi = Math.max(...loads)
  return `load ${lo === hi ? lo.toFixed(2) : `${lo.toFixed(2)}-${hi.toFixed(2)}`} (1 min)`
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
