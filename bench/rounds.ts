// Several rounds of every mode, interleaved (round 1: all modes, round 2: all modes,
// ...), folded into one result per mode. On a shared machine the load drifts over
// minutes, so a ratio is taken within each round, between runs minutes apart at most,
// and the median of those paired ratios is reported; values are per-metric medians.
import { addRatios, METRICS, type Metrics, type ModeResult } from './report.js'

/** rounds[r][i]: mode i of round r (every round runs the same modes in the same order). */
export function combineRounds (rounds: ModeResult[][]): ModeResult[] {
  for (const round of rounds) addRatios(round)
  if (rounds.length === 1) return rounds[0]
  return rounds[0].map((first, i) => {
    const runs = rounds.map((round) => round[i])
    const metrics: Metrics = {}
    const ratios: Metrics = {}
    const spread: Record<string, [number, number]> = {}
    for (const { key } of METRICS) {
      const values = runs.map((r) => r.metrics[key]).filter((v): v is number => v !== undefined)
      if (values.length) metrics[key] = median(values)
      const rs = runs.map((r) => r.ratios[key]).filter((v): v is number => v !== undefined)
      if (rs.length) {
        ratios[key] = median(rs)
        spread[key] = [Math.min(...rs), Math.max(...rs)]
      }
    }
    const errors = Object.assign({}, ...runs.map((r) => r.errors))
    const failed = runs.map((r, n) => r.error ? `round ${n + 1}: ${r.error}` : '').filter(Boolean)
    return {
      ...first,
      ok: runs.every((r) => r.ok),
      error: failed.length ? failed.join('; ') : undefined,
      metrics,
      errors,
      ratios,
      details: { ratioSpread: spread, rounds: runs.map((r) => ({ metrics: r.metrics, ratios: r.ratios, details: r.details })) },
    }
  })
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
