// Folding interleaved bench rounds: medians of values, medians of ratios paired
// within each round (so a round where the whole machine was slow moves neither).
import t from 'tap'
import { combineRounds, median } from '../../bench/rounds.js'
import { formatTable, type BenchResult, type ModeResult } from '../../bench/report.js'

function mode (name: string, tcp1Gbps: number, rttP50Us?: number, error?: string): ModeResult {
  return {
    mode: name,
    description: name,
    userspace: name === 'flatnet',
    ok: error === undefined,
    error,
    metrics: rttP50Us === undefined ? { tcp1Gbps } : { tcp1Gbps, rttP50Us },
    errors: {},
    ratios: {},
    details: {},
  }
}

t.test('median', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([7]), 7)
})

t.test('one round: ratios to the baseline of that run, nothing else added', async (t) => {
  const [k, f] = combineRounds([[mode('kernel-vxlan', 10, 20), mode('flatnet', 5, 50)]])
  t.equal(k.ratios.tcp1Gbps, 1)
  t.equal(f.ratios.tcp1Gbps, 0.5)
  t.equal(f.ratios.rttP50Us, 2.5)
  t.same(f.details, {})
})

t.test('three rounds: median values, median of paired ratios, spread and every round kept', async (t) => {
  // Round 2 ran while the machine was busy: both modes halved, the ratio did not move.
  const rounds = [
    [mode('kernel-vxlan', 16, 20), mode('flatnet', 8, 50)],
    [mode('kernel-vxlan', 8, 40), mode('flatnet', 4, 100)],
    [mode('kernel-vxlan', 18, 20), mode('flatnet', 10.8, 44)],
  ]
  const [k, f] = combineRounds(rounds)
  t.equal(k.metrics.tcp1Gbps, 16)
  t.equal(f.metrics.tcp1Gbps, 8)
  t.equal(f.ratios.tcp1Gbps, 0.5, 'the median of 0.5, 0.5, 0.6')
  t.equal(f.ratios.rttP50Us, 2.5, 'the median of 2.5, 2.5, 2.2')
  t.same((f.details.ratioSpread as Record<string, number[]>).tcp1Gbps.map((v) => v.toFixed(2)), ['0.50', '0.60'])
  t.equal((f.details.rounds as unknown[]).length, 3)
  t.ok(f.ok)
})

t.test('a failure in any round is reported with its round', async (t) => {
  const [, f] = combineRounds([
    [mode('kernel-vxlan', 10), mode('flatnet', 5)],
    [mode('kernel-vxlan', 10), mode('flatnet', 6, undefined, 'daemon died')],
  ])
  t.notOk(f.ok)
  t.equal(f.error, 'round 2: daemon died')
  t.equal(f.metrics.tcp1Gbps, 5.5)
})

t.test('the table says how the figures were folded and shows the ratio spread', async (t) => {
  const modes = combineRounds([
    [mode('kernel-vxlan', 16, 20), mode('flatnet', 8, 50)],
    [mode('kernel-vxlan', 10, 20), mode('flatnet', 6, 44)],
  ])
  const result: BenchResult = {
    version: 1,
    date: '2026-01-01T00:00:00.000Z',
    baseline: 'kernel-vxlan',
    topology: 'test',
    seconds: 5,
    rounds: 2,
    quick: false,
    host: { cpus: 2, kernel: 'x', node: 'v20' },
    placement: { sender: 0, receiver: 1, pingPong: 0 },
    modes,
  }
  const table = formatTable(result)
  t.match(table, /medians of 2 interleaved rounds/)
  t.match(table, /TCP 1 stream Gbit\/s\s+13\.0 \(1\.00x\)\s+7\.00 \(0\.55x\)/)
  t.match(table, /lowest-highest over the rounds:\nTCP 1 stream Gbit\/s\s+1\.00-1\.00\s+0\.50-0\.60/)
})
