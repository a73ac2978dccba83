// An SVG bar chart of a benchmark result: per metric, one bar per mode, each the
// ratio to the run's baseline (kernel VXLAN, or host-gw without it; the dashed line at 1). Hand-written SVG so
// the benchmark needs no dependency; `node dist/bench/chart.js FILE.json` redraws one.
import { readFileSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { addRatios, METRICS, type BenchResult } from './report.js'

const COLORS = ['#4e79a7', '#9c9c9c', '#e15759', '#f28e2b', '#76b7b2', '#59a14f', '#b07aa1']
const BAR = 26
const GAP = 36
const MIN_GROUP = 150 // room for the metric's label
const Y_CAP = 4 // taller bars are clipped (and say their value), so small ratios stay visible
const PLOT_HEIGHT = 300
const TOP = 70
const LEFT = 60
const BOTTOM = 80

export function renderChart (result: BenchResult): string {
  const modes = result.modes
  // Only metrics the baseline has (daemon CPU and memory have no kernel counterpart).
  const metrics = METRICS.filter((m) => modes.some((r) => r.ratios[m.key] !== undefined))
  const groupWidth = Math.max(MIN_GROUP, modes.length * BAR + GAP)
  const width = LEFT + Math.max(1, metrics.length) * groupWidth + 20
  const legendRows = Math.ceil(modes.length / 3)
  const height = TOP + PLOT_HEIGHT + BOTTOM + legendRows * 20
  const ratios = metrics.flatMap((m) => modes.map((r) => r.ratios[m.key] ?? 0))
  const yMax = niceCeiling(Math.min(Y_CAP, Math.max(1.2, ...ratios)))
  const y = (v: number): number => TOP + PLOT_HEIGHT - (Math.min(v, yMax) / yMax) * PLOT_HEIGHT

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`)
  out.push(text(LEFT, 24, `flatnet benchmark: ratio to ${result.baseline ?? 'no baseline'} (same run)`, 'font-size="16" font-weight="bold"'))
  const bars = (result.rounds ?? 1) > 1 ? `; error bars: lowest-highest over ${result.rounds} rounds` : ''
  out.push(text(LEFT, 44, `${result.topology}; ${result.seconds} s per test; ${result.date}; ^ = clipped at ${yMax}x${bars}`, 'fill="#555"'))
  // Y axis with ticks.
  // Steps that land on 1x, the baseline.
  const step = yMax <= 1.5 ? 0.25 : yMax <= 3 ? 0.5 : yMax <= 10 ? 1 : yMax / 5
  for (let i = 0; i * step <= yMax + 1e-9; i++) {
    const v = step * i
    out.push(`<line x1="${LEFT}" y1="${y(v)}" x2="${width - 20}" y2="${y(v)}" stroke="#eee"/>`)
    out.push(text(LEFT - 6, y(v) + 4, `${+v.toFixed(2)}x`, 'text-anchor="end" fill="#555"'))
  }
  out.push(`<line x1="${LEFT}" y1="${y(1)}" x2="${width - 20}" y2="${y(1)}" stroke="#333" stroke-dasharray="5,4"/>`)
  metrics.forEach((metric, g) => {
    const x0 = LEFT + g * groupWidth + (groupWidth - modes.length * BAR) / 2
    modes.forEach((r, i) => {
      const x = x0 + i * BAR
      const v = r.ratios[metric.key]
      if (v === undefined) {
        out.push(text(x + BAR / 2, y(0) - 4, 'n/a', `text-anchor="middle" font-size="9" fill="${COLORS[i % COLORS.length]}"`))
        return
      }
      out.push(`<rect x="${x + 2}" y="${y(v)}" width="${BAR - 4}" height="${y(0) - y(v)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(`${r.mode} ${metric.label}: ${r.metrics[metric.key]} (${v.toFixed(3)}x)`)}</title></rect>`)
      // Error bar: the lowest-highest of the paired ratios over the rounds.
      const spread = r.ratioSpread?.[metric.key]
      if (spread) {
        const cx = x + BAR / 2
        out.push(`<path d="M${cx} ${y(spread[0])}V${y(spread[1])}M${cx - 4} ${y(spread[0])}H${cx + 4}M${cx - 4} ${y(spread[1])}H${cx + 4}" stroke="#222" fill="none"><title>${esc(`${r.mode} ${metric.label}: ratio ${spread[0].toFixed(3)}-${spread[1].toFixed(3)} over the rounds`)}</title></path>`)
      }
      out.push(text(x + BAR / 2, y(Math.max(v, spread?.[1] ?? v)) - 4, v > yMax ? `${v.toFixed(v >= 10 ? 0 : 1)}^` : v.toFixed(2), 'text-anchor="middle" font-size="9"'))
    })
    const cx = x0 + (modes.length * BAR) / 2
    out.push(text(cx, y(0) + 18, metric.label, 'text-anchor="middle"'))
    out.push(text(cx, y(0) + 34, `${metric.better} is better`, 'text-anchor="middle" fill="#777" font-size="10"'))
  })
  out.push(`<line x1="${LEFT}" y1="${y(0)}" x2="${width - 20}" y2="${y(0)}" stroke="#333"/>`)
  modes.forEach((r, i) => {
    const lx = LEFT + (i % 3) * 220
    const ly = TOP + PLOT_HEIGHT + 56 + Math.floor(i / 3) * 20
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`)
    out.push(text(lx + 18, ly, `${r.mode}${r.ok ? '' : ' (failed)'}`))
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** Writes the chart next to the JSON file (same name, .svg); returns its path. */
export function writeChart (jsonPath: string, result: BenchResult): string {
  const svgPath = jsonPath.replace(/\.json$/, '') + '.svg'
  writeFileSync(svgPath, renderChart(result))
  return svgPath
}

function niceCeiling (v: number): number {
  for (const c of [1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 20, 50, 100]) if (v <= c) return c
  return Math.ceil(v)
}

function text (x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x}" y="${y}" ${attrs}>${esc(s)}</text>`
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2]
  if (!file) {
    console.error('usage: node dist/bench/chart.js RESULT.json  (writes RESULT.svg beside it)')
    process.exit(2)
  }
  const result = JSON.parse(readFileSync(file, 'utf8')) as BenchResult
  // With today's rules for which metrics have ratios; a multi-round file keeps its paired medians.
  if ((result.rounds ?? 1) === 1) addRatios(result.modes, result.baseline)
  console.log(writeChart(file, result))
}
