// The bench's SVG chart: one bar per mode and metric with ratios, error bars from the
// rounds, and a title naming the baseline the ratios are to.
import t from 'tap'
import { renderChart } from '../../bench/chart.js'
import { combineRounds } from '../../bench/rounds.js'
import type { BenchResult, Metrics, ModeResult } from '../../bench/report.js'

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
    host: { cpus: 2, kernel: '6.18', node: 'v20' },
    placement: { sender: 0, receiver: 1, pingPong: 0 },
    modes: combineRounds(rounds.map(([a, b]) => [mode(baseline, a), mode('flatnet', b)]), baseline),
  }
}

t.test('three rounds: a bar and an error bar per mode and metric', async (t) => {
  const svg = renderChart(result([
    [{ tcp1Gbps: 14, rttP50Us: 9 }, { tcp1Gbps: 11, rttP50Us: 30 }],
    [{ tcp1Gbps: 14, rttP50Us: 9 }, { tcp1Gbps: 10, rttP50Us: 33 }],
    [{ tcp1Gbps: 14, rttP50Us: 9 }, { tcp1Gbps: 12, rttP50Us: 31 }],
  ]))
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/)
  t.match(svg, /ratio to kernel-vxlan \(same run\)/)
  t.match(svg, /error bars: lowest-highest over 3 rounds/)
  t.equal(svg.match(/<path /g)?.length, 4, 'two modes, two metrics')
  t.match(svg, /<title>flatnet TCP 1 stream Gbit\/s: ratio 0\.714-0\.857 over the rounds<\/title>/)
  t.match(svg, /higher is better[\s\S]*lower is better/)
})

t.test('one round: no error bars; host-gw named as the baseline when it is', async (t) => {
  const svg = renderChart(result([[{ tcp1Gbps: 16 }, { tcp1Gbps: 12 }]], 'host-gw'))
  t.notMatch(svg, /<path /)
  t.match(svg, /ratio to host-gw \(same run\)/)
})
