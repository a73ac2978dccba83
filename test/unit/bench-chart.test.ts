// The bench's SVG chart, parsed (there is no renderer here): small multiples, a panel
// per figure with its title and unit, which way is better, a bar per mode on the
// panel's own scale, error bars from the rounds' lowest-highest.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { niceCeiling, renderChart } from '../../bench/chart.js'
import { combineRounds } from '../../bench/rounds.js'
import type { BenchResult, Metrics, ModeResult } from '../../bench/report.js'

interface Element { name: string, attrs: Record<string, string>, children: Element[], text: string }

/** A strict parser for the SVG the chart writes: every tag closed in order, attributes quoted, text escaped. */
function parseXml (xml: string): Element {
  const root: Element = { name: '#document', attrs: {}, children: [], text: '' }
  const stack = [root]
  const tag = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y
  let i = 0
  while (i < xml.length) {
    const lt = xml.indexOf('<', i)
    const textEnd = lt === -1 ? xml.length : lt
    const between = xml.slice(i, textEnd)
    if (/&(?!amp;|lt;|gt;|quot;)/.test(between) || between.includes('>')) throw new Error(`unescaped text at ${i}: ${between.slice(0, 40)}`)
    stack[stack.length - 1].text += between.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&')
    if (lt === -1) break
    tag.lastIndex = lt
    const m = tag.exec(xml)
    if (!m) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 60)}`)
    const [, close, name, attrText, selfClose] = m
    if (close) {
      const open = stack.pop()
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`)
    } else {
      const attrs = Object.fromEntries([...attrText.matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]]))
      const el: Element = { name, attrs, children: [], text: '' }
      stack[stack.length - 1].children.push(el)
      if (!selfClose) stack.push(el)
    }
    i = tag.lastIndex
  }
  if (stack.length !== 1) throw new Error(`<${stack[stack.length - 1].name}> never closed`)
  if (root.children.length !== 1 || root.text.trim() !== '') throw new Error('not a single root element')
  return root.children[0]
}

function all (el: Element, test: (e: Element) => boolean): Element[] {
  return [...(test(el) ? [el] : []), ...el.children.flatMap((c) => all(c, test))]
}
const byClass = (el: Element, name: string): Element[] => all(el, (e) => (e.attrs.class ?? '').split(' ').includes(name))

function mode (name: string, metrics: Metrics): ModeResult {
  return { mode: name, description: name, userspace: false, ok: true, metrics, errors: {}, ratios: {}, details: {} }
}

function result (rounds: Array<[Metrics, Metrics]>, baseline = 'kernel-vxlan'): BenchResult {
  return {
    version: 2,
    date: '2026-12-01T00:00:00.000Z',
    baseline,
    topology: 'test',
    seconds: 5,
    rounds: rounds.length,
    quick: false,
    rrSizes: [64],
    host: { cpus: 2, kernel: '6.18', node: 'v20' },
    placement: { sender: 0, receiver: 1, pingPong: 0 },
    modes: combineRounds(rounds.map(([a, b]) => [mode(baseline, a), mode('flatnet', b)]), baseline),
  }
}

const THREE_ROUNDS = result([
  [{ tcp1Gbps: 14, rttP50Us: 9, tcpRr64Tps: 50_000, tcpRr64CpuUsPerTx: 30 }, { tcp1Gbps: 11, rttP50Us: 30, tcpRr64Tps: 20_000, tcpRr64CpuUsPerTx: 80 }],
  [{ tcp1Gbps: 14, rttP50Us: 9, tcpRr64Tps: 52_000, tcpRr64CpuUsPerTx: 31 }, { tcp1Gbps: 10, rttP50Us: 33, tcpRr64Tps: 21_000, tcpRr64CpuUsPerTx: 84 }],
  [{ tcp1Gbps: 14, rttP50Us: 9, tcpRr64Tps: 51_000, tcpRr64CpuUsPerTx: 29 }, { tcp1Gbps: 12, rttP50Us: 31, tcpRr64Tps: 19_000, tcpRr64CpuUsPerTx: 82 }],
])

t.test('three rounds: a panel per figure, titled with its unit and its direction, a bar and an error bar per mode', async (t) => {
  const svg = parseXml(renderChart(THREE_ROUNDS))
  t.equal(svg.name, 'svg')
  t.equal(svg.attrs.xmlns, 'http://www.w3.org/2000/svg')
  const panels = byClass(svg, 'panel')
  t.same(panels.map((p) => p.attrs['data-metric']), ['tcp1Gbps', 'rttP50Us', 'tcpRr64Tps', 'tcpRr64CpuUsPerTx'], 'only the figures measured, in the table\'s order')
  const title = (p: Element): string => byClass(p, 'title')[0]?.text
  const better = (p: Element): string => byClass(p, 'better')[0]?.text
  t.same(panels.map(title), ['TCP 1 stream, Gbit/s', 'RTT p50 (UDP ping-pong), us', 'TCP_RR 64 B, transactions/s', 'TCP_RR 64 B CPU, us/transaction'])
  t.same(panels.map(better), ['higher is better \u2191', 'lower is better \u2193', 'higher is better \u2191', 'lower is better \u2193'])
  for (const p of panels) {
    t.same(byClass(p, 'bar').map((b) => b.attrs['data-mode']), ['kernel-vxlan', 'flatnet'], `${title(p)}: a bar per mode`)
    t.same(byClass(p, 'error-bar').map((b) => b.attrs['data-mode']), ['kernel-vxlan', 'flatnet'], `${title(p)}: an error bar per mode`)
  }
  const rr = panels[2]
  const [kBar, fBar] = byClass(rr, 'bar')
  t.equal(Number(kBar.attrs['data-value']), 51_000, 'the median, absolute')
  t.equal(Number(fBar.attrs['data-value']), 20_000)
  // One scale per panel, from 0: bar heights in proportion to the values.
  t.ok(Math.abs(Number(fBar.attrs.height) / Number(kBar.attrs.height) / (20_000 / 51_000) - 1) < 0.01, 'bar heights in proportion')
  const fErr = byClass(rr, 'error-bar')[1]
  t.same([fErr.attrs['data-low'], fErr.attrs['data-high']], ['19000', '21000'], 'the error bar: the rounds\' lowest-highest')
  t.same(byClass(rr, 'ratio').map((r) => r.text), ['1.00x', '0.40x'], 'under each bar the median of its paired ratios (0.40, 0.40, 0.37)')
  t.same(byClass(rr, 'value').map((r) => r.text), ['51.0k', '20.0k'])
  t.match(all(svg, (e) => e.name === 'text').map((e) => e.text).join('\n'), /medians of 3 rounds, error bars: lowest-highest over the rounds; \(x\) = ratio to kernel-vxlan/)
})

t.test('one round: no error bars; a figure a mode lacks says so', async (t) => {
  const r = result([[{ tcp1Gbps: 16, tcpCrrCps: 4000 }, { tcp1Gbps: 12 }]], 'host-gw')
  r.modes[1].errors.tcpCrrCps = 'TCP_CRR: 3 connection(s) failed'
  r.modes[1].ok = false
  const svg = parseXml(renderChart(r))
  t.same(byClass(svg, 'error-bar'), [])
  const crr = byClass(svg, 'panel').find((p) => p.attrs['data-metric'] === 'tcpCrrCps') as Element
  t.same(byClass(crr, 'bar').map((b) => b.attrs['data-mode']), ['host-gw'])
  t.same(byClass(crr, 'missing').map((b) => b.text), ['fail'])
  t.match(all(svg, (e) => e.name === 'text').map((e) => e.text).join('\n'), /one round, no error bars; \(x\) = ratio to host-gw/)
})

t.test('the checked-in example: what the chart draws from its JSON, a panel for every figure measured', async (t) => {
  const dir = new URL('../../bench/results/', import.meta.url)
  const json = JSON.parse(readFileSync(new URL('example.json', dir), 'utf8')) as BenchResult
  const text = readFileSync(new URL('example.svg', dir), 'utf8')
  t.equal(text, renderChart(json), 'up to date (node dist/bench/chart.js bench/results/example.json redraws it)')
  const svg = parseXml(text)
  const panels = byClass(svg, 'panel')
  const measured = new Set(json.modes.flatMap((m) => Object.keys(m.metrics)))
  t.same(new Set(panels.map((p) => p.attrs['data-metric'])), measured)
  t.ok(measured.has('tcpRr64Tps') && measured.has('udpRr64P99Us') && measured.has('tcpCrrCpuUsPerConn'), 'the request/response and connection-rate figures')
  for (const p of panels) {
    t.match(byClass(p, 'title')[0]?.text, /, (Gbit\/s|kpps|us|count|% of sent|transactions\/s|us\/transaction|connections\/s|us\/connection|s\/Gbit|MB|per round trip)$/, `${p.attrs['data-metric']}: a title with its unit`)
    t.match(byClass(p, 'better')[0]?.text, /^(higher|lower) is better/)
    t.ok(byClass(p, 'bar').length >= 1)
  }
})

t.test('the parser refuses what a renderer would', async (t) => {
  t.throws(() => parseXml('<svg><g></svg>'), /closes <g>/)
  t.throws(() => parseXml('<svg><text>a & b</text></svg>'), /unescaped/)
  t.throws(() => parseXml('<svg x=1></svg>'), /malformed/)
})

t.test('each panel\'s scale ends at 1, 2, 2.5 or 5 times a power of ten', async (t) => {
  t.same([0.3, 1, 1.2, 2.2, 4, 7, 14.2, 35, 51_000, 0].map(niceCeiling), [0.5, 1, 2, 2.5, 5, 10, 20, 50, 100_000, 1])
})
