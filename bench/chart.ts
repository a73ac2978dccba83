// The bench's SVG chart as small multiples: a panel per figure, each with its own scale
// and unit, a bar per mode with its value (and its ratio to the run's baseline under
// it), error bars from the lowest-highest over the rounds, and which way is better.
// Absolute values on separate scales, because a Gbit/s, a microsecond and a count share
// no axis, and ratios alone hide what the baseline did. Hand-written SVG so the
// benchmark needs no dependency; `node dist/bench/chart.js FILE.json` redraws one.
import { readFileSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { fmt, fmtOf, tableMetrics, type BenchResult, type Metric, type ModeResult } from './report.js'

const COLORS = ['#4e79a7', '#9c9c9c', '#e15759', '#f28e2b', '#76b7b2', '#59a14f', '#b07aa1']
const COLUMNS = 4
const BAR = 28
const PANEL_PLOT = 120 // the bars' height at the top of the scale
const PANEL_HEIGHT = 210
const PANEL_LEFT = 46 // room for the scale's labels
const TOP = 60

export function renderChart (result: BenchResult): string {
  const modes = result.modes
  const metrics = tableMetrics(result).filter((m) => modes.some((r) => r.metrics[m.key] !== undefined))
  const panelWidth = Math.max(260, PANEL_LEFT + modes.length * BAR + 16)
  const legendRows = Math.ceil(modes.length / COLUMNS)
  const top = TOP + legendRows * 18 + 10
  const width = COLUMNS * panelWidth + 20
  const height = top + Math.max(1, Math.ceil(metrics.length / COLUMNS)) * PANEL_HEIGHT + 10

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`)
  out.push(text(10, 22, 'flatnet benchmark: each panel on its own scale', 'font-size="16" font-weight="bold"'))
  const rounds = result.rounds ?? 1
  const medians = rounds > 1 ? `medians of ${rounds} rounds, error bars: lowest-highest over the rounds` : 'one round, no error bars'
  const base = result.baseline ? `(x) = ratio to ${result.baseline}` : 'no baseline, no ratios'
  out.push(text(10, 40, `${result.topology}; ${result.seconds} s per test; ${result.date}; ${medians}; ${base}`, 'fill="#555"'))
  modes.forEach((r, i) => {
    const lx = 10 + (i % COLUMNS) * 240
    const ly = TOP + Math.floor(i / COLUMNS) * 18
    out.push(`<rect class="legend" x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`)
    out.push(text(lx + 18, ly, `${r.mode}${r.skipped ? ' (skipped)' : r.ok ? '' : ' (failed)'}`))
  })
  metrics.forEach((metric, n) => {
    const x = 10 + (n % COLUMNS) * panelWidth
    const y = top + Math.floor(n / COLUMNS) * PANEL_HEIGHT
    out.push(panel(metric, modes, x, y, panelWidth - 16, result.baseline))
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** One figure: a title with its unit, which way is better, a scale from 0, a bar (and error bar) per mode. */
function panel (metric: Metric, modes: ModeResult[], x: number, y: number, width: number, baseline: string | undefined): string {
  const highs = modes.flatMap((r) => [r.metrics[metric.key], r.spread?.[metric.key]?.[1]]).filter((v): v is number => v !== undefined)
  const max = niceCeiling(Math.max(0, ...highs))
  const bottom = y + 40 + PANEL_PLOT
  // A tenth of a pixel is finer than any screen: shorter numbers, a smaller file.
  const yOf = (v: number): number => Math.round(10 * (bottom - (max > 0 ? v / max : 0) * PANEL_PLOT)) / 10
  const out: string[] = [`<g class="panel" data-metric="${metric.key}">`]
  out.push(text(x, y + 14, metric.title, 'class="title" font-weight="bold"'))
  out.push(text(x, y + 28, `${metric.better} is better ${metric.better === 'higher' ? '\u2191' : '\u2193'}`, `class="better" fill="${metric.better === 'higher' ? '#2a7a2a' : '#a0522d'}"`))
  for (const v of [0, max / 2, max]) {
    out.push(`<line x1="${x + PANEL_LEFT - 4}" y1="${yOf(v)}" x2="${x + width}" y2="${yOf(v)}" stroke="${v ? '#eee' : '#333'}"/>`)
    out.push(text(x + PANEL_LEFT - 6, yOf(v) + 4, tick(v), 'text-anchor="end" fill="#555" font-size="10"'))
  }
  modes.forEach((r, i) => {
    const bx = x + PANEL_LEFT + i * BAR
    const cx = bx + BAR / 2
    const color = COLORS[i % COLORS.length]
    const v = r.metrics[metric.key]
    if (v === undefined) {
      const why = r.skipped ? 'skip' : r.errors[metric.key] || !r.ok ? 'fail' : 'n/a'
      out.push(text(cx, bottom - 4, why, `class="missing" data-mode="${r.mode}" text-anchor="middle" font-size="9" fill="${color}"`))
      return
    }
    const ratio = r.ratios[metric.key]
    const tip = `${r.mode}: ${fmtOf(metric, v)}${ratio === undefined ? '' : ` (${ratio.toFixed(2)}x ${baseline ?? ''})`}`
    out.push(`<rect class="bar" data-mode="${r.mode}" data-value="${+v.toPrecision(6)}" x="${bx + 3}" y="${yOf(v)}" width="${BAR - 6}" height="${Math.round(10 * (bottom - yOf(v))) / 10}" fill="${color}"><title>${esc(tip)}</title></rect>`)
    const spread = r.spread?.[metric.key]
    if (spread) {
      const [lo, hi] = spread.map(yOf)
      out.push(`<path class="error-bar" data-mode="${r.mode}" data-low="${+spread[0].toPrecision(6)}" data-high="${+spread[1].toPrecision(6)}" d="M${cx} ${lo}V${hi}M${cx - 4} ${lo}H${cx + 4}M${cx - 4} ${hi}H${cx + 4}" stroke="#222" fill="none"><title>${esc(`${r.mode}: ${fmtOf(metric, spread[0])}-${fmtOf(metric, spread[1])} over the rounds`)}</title></path>`)
    }
    const noisy = r.noisy?.[metric.key] ? '!' : ''
    out.push(text(cx, Math.min(yOf(v), spread ? yOf(spread[1]) : Infinity) - 3, `${short(v)}${noisy}`, 'class="value" text-anchor="middle" font-size="9"'))
    if (ratio !== undefined) out.push(text(cx, bottom + 12, `${ratio.toFixed(2)}x`, 'class="ratio" text-anchor="middle" font-size="8" fill="#555"'))
  })
  out.push('</g>')
  return out.join('\n')
}

/** A value in the few characters above a bar: 12.3, 456, 12.3k. */
function short (v: number): string {
  return v >= 10_000 ? `${(v / 1000).toFixed(v >= 100_000 ? 0 : 1)}k` : fmt(v)
}

/** A scale's label: 0, 2.5, 20, 50k. */
function tick (v: number): string {
  return v >= 10_000 ? `${+(v / 1000).toPrecision(3)}k` : String(+v.toPrecision(3))
}

/** Writes the chart next to the JSON file (same name, .svg); returns its path. */
export function writeChart (jsonPath: string, result: BenchResult): string {
  const svgPath = jsonPath.replace(/\.json$/, '') + '.svg'
  writeFileSync(svgPath, renderChart(result))
  return svgPath
}

/** The scale's top: the least of 1, 2, 2.5 or 5 times a power of ten at or above v. */
export function niceCeiling (v: number): number {
  if (!(v > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(v))
  for (const c of [1, 2, 2.5, 5, 10]) if (v <= c * power * (1 + 1e-12)) return c * power
  return 10 * power
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
  console.log(writeChart(file, JSON.parse(readFileSync(file, 'utf8')) as BenchResult))
}
