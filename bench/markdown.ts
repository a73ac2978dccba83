// `npm run bench -- --markdown RESULT.json [--rows key,key,...]`: a result file's table as
// Markdown, for the README and docs/performance.md: a row per figure (or the rows named),
// a column per mode, "value (ratio x)" with `!` on noisy figures, and the run's
// provenance above it, so a published table is always regenerated, never retyped.
import { readFileSync } from 'node:fs'
import { fmtOf, METRICS, tableMetrics, type BenchResult, type Metric } from './report.js'

export function markdownTable (result: BenchResult, rows?: string[]): string {
  const known = tableMetrics(result)
  let metrics: Metric[] = known
  if (rows) {
    metrics = rows.map((key) => {
      const m = METRICS.find((k) => k.key === key)
      if (!m) throw new Error(`--rows: no figure "${key}"; known: ${METRICS.map((k) => k.key).join(', ')}`)
      return m
    })
  }
  const { modes } = result
  const when = result.date.slice(0, 16).replace('T', ' ')
  const commit = result.flatnet ? ` flatnet ${result.flatnet.version} (${result.flatnet.commit}${result.flatnet.uncommittedChanges ? ', uncommitted changes' : ''})` : ''
  const rounds = (result.rounds ?? 1) > 1 ? `medians of ${result.rounds as number} rounds, ` : ''
  const lines = [
    `${when} UTC, \`${result.command ?? 'npm run bench'}\`,${commit}; ${result.host.cpus} CPUs (${result.host.cpuModel ?? 'unknown CPU'}), Linux ${result.host.kernel}; ` +
      `${rounds}${result.baseline ? `ratios to ${result.baseline} in the same run` : 'no baseline ran'}${modes.some((m) => m.noisy && Object.keys(m.noisy).length) ? '; ! = noisy (spread over 20% of the median)' : ''}:`,
    '',
    `| figure | ${modes.map((m) => m.mode).join(' | ')} |`,
    `|---|${modes.map(() => '---|').join('')}`,
  ]
  for (const metric of metrics) {
    const cells = modes.map((m) => {
      const v = m.metrics[metric.key]
      if (v === undefined) return m.skipped ? 'skipped' : ''
      const r = m.ratios[metric.key]
      return `${fmtOf(metric, v)}${r === undefined ? '' : ` (${r.toFixed(2)}x)`}${m.noisy?.[metric.key] ? ' !' : ''}`
    })
    lines.push(`| ${metric.title} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

export function markdownFile (file: string, rows?: string[]): string {
  return markdownTable(JSON.parse(readFileSync(file, 'utf8')) as BenchResult, rows)
}
