// `npm run bench -- --compare A.json B.json`: the change per figure and whether it is
// beyond the noise, on fixed result files: one written before every round's value was
// kept at the top (details.rounds only), one after.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { compareResults, formatCompare, samplesOf, verdict } from '../../bench/compare.js'
import { combineRounds } from '../../bench/rounds.js'
import type { BenchResult, Metrics, ModeResult } from '../../bench/report.js'

const RUNNER = fileURLToPath(new URL('../../dist/bench/run.js', import.meta.url))

function mode (name: string, metrics: Metrics): ModeResult {
  return { mode: name, description: name, userspace: name === 'flatnet', ok: true, metrics, errors: {}, ratios: {}, details: {} }
}

function run (rounds: Array<[Metrics, Metrics]>, extra: Partial<BenchResult> = {}): BenchResult {
  return {
    version: 2,
    date: '2026-12-01T00:00:00.000Z',
    flatnet: { version: '0.1.0', commit: '0123456789ab' },
    baseline: 'kernel-vxlan',
    topology: 'test',
    seconds: 5,
    rounds: rounds.length,
    quick: false,
    host: { cpus: 2, cpuModel: 'Test CPU', kernel: '6.18', node: 'v20' },
    placement: { sender: 0, receiver: 1, pingPong: 0 },
    modes: combineRounds(rounds.map(([k, f]) => [mode('kernel-vxlan', k), mode('flatnet', f)]), 'kernel-vxlan'),
    ...extra,
  }
}

// Before: flatnet 10.7-11.9 Gbit/s, RTT 30-32 us. After: 12.4-13.0 (every round above), RTT 29-33 (overlapping).
const BEFORE = run([
  [{ tcp1Gbps: 14.2, rttP50Us: 9 }, { tcp1Gbps: 11.3, rttP50Us: 31 }],
  [{ tcp1Gbps: 13.8, rttP50Us: 9.2 }, { tcp1Gbps: 10.7, rttP50Us: 30 }],
  [{ tcp1Gbps: 14.6, rttP50Us: 9.1 }, { tcp1Gbps: 11.9, rttP50Us: 32 }],
])
const AFTER = run([
  [{ tcp1Gbps: 14.0, rttP50Us: 9.1 }, { tcp1Gbps: 12.4, rttP50Us: 29 }],
  [{ tcp1Gbps: 14.4, rttP50Us: 9.0 }, { tcp1Gbps: 13.0, rttP50Us: 33 }],
  [{ tcp1Gbps: 14.1, rttP50Us: 9.3 }, { tcp1Gbps: 12.8, rttP50Us: 30 }],
])

t.test('verdicts: beyond the noise only when the rounds do not overlap, in the metric\'s direction', async (t) => {
  t.equal(verdict([10, 11], [12, 13], 'higher'), 'better')
  t.equal(verdict([10, 11], [12, 13], 'lower'), 'worse')
  t.equal(verdict([30, 32], [25, 29], 'lower'), 'better')
  t.equal(verdict([10, 12], [11.5, 13], 'higher'), 'within the noise')
  t.equal(verdict([10], [20], 'higher'), 'no spread', 'one round says nothing of its noise')
})

t.test('the changes of two runs, values and paired ratios', async (t) => {
  const changes = compareResults(BEFORE, AFTER)
  const f = (key: string): (typeof changes)[number] | undefined => changes.find((c) => c.mode === 'flatnet' && c.metric.key === key)
  t.same([f('tcp1Gbps')?.before, f('tcp1Gbps')?.after], [11.3, 12.8])
  t.same(f('tcp1Gbps')?.beforeRange, [10.7, 11.9])
  t.equal(f('tcp1Gbps')?.verdict, 'better')
  t.equal(f('tcp1Gbps')?.ratio?.verdict, 'better', 'ratios 0.78-0.82 before, 0.89-0.91 after')
  t.equal(f('rttP50Us')?.verdict, 'within the noise')
  t.equal(changes.find((c) => c.mode === 'kernel-vxlan' && c.metric.key === 'tcp1Gbps')?.ratio, undefined, 'the baseline against itself: no ratio')
})

t.test('the printed comparison', async (t) => {
  const text = formatCompare(BEFORE, AFTER, ['a.json', 'b.json'])
  t.match(text, /^before: a\.json: 2026-12-01T00:00:00\.000Z, flatnet 0\.1\.0 0123456789ab, 3 round\(s\) of 5 s, Linux 6\.18\n/)
  t.match(text, /\nflatnet +TCP 1 stream, Gbit\/s +11\.3 \(10\.7-11\.9\) +12\.8 \(12\.4-13\.0\) +\+13\.3% +better, beyond the noise +0\.80x -> 0\.90x, better, beyond the noise\n/)
  t.match(text, /\nflatnet +RTT p50 \(UDP ping-pong\), us +31\.0 \(30\.0-32\.0\) +30\.0 \(29\.0-33\.0\) +-3\.2% +within the noise +3\.44x -> 3\.23x, within the noise$/)
  t.notMatch(text, /note:/, 'same host, same baseline')

  const other = run([[{ tcp1Gbps: 16 }, { tcp1Gbps: 12 }]], { baseline: 'host-gw', host: { cpus: 4, kernel: '6.1', node: 'v20' } })
  const text2 = formatCompare(BEFORE, other, ['a.json', 'c.json'])
  t.match(text2, /note: the runs are from different hosts or kernels; compare the ratios/)
  t.match(text2, /note: different baselines \(kernel-vxlan, host-gw\): ratios not compared/)
  t.match(text2, /flatnet +TCP 1 stream, Gbit\/s +11\.3 \(10\.7-11\.9\) +12\.0 +\+6\.2% +no spread \(1 round\)$/)
})

t.test('request/response and connection rate compared like every figure, in their direction', async (t) => {
  const rr = (tps: number, p99: number, cps: number, cpu: number): Metrics => ({ udpRr1024Tps: tps, udpRr1024P99Us: p99, tcpCrrCps: cps, tcpCrrCpuUsPerConn: cpu })
  // After: more transactions/s and connections/s in every round; p99 and CPU overlap.
  const before = run([[rr(90_000, 20, 3400, 300), rr(30_000, 60, 2000, 700)], [rr(91_000, 21, 3300, 310), rr(31_000, 58, 2050, 720)], [rr(89_000, 20, 3350, 305), rr(29_000, 61, 2020, 690)]])
  const after = run([[rr(90_000, 20, 3400, 300), rr(36_000, 59, 2300, 700)], [rr(90_500, 21, 3300, 300), rr(35_000, 55, 2250, 650)], [rr(89_500, 20, 3350, 310), rr(37_000, 60, 2280, 680)]])
  const changes = compareResults(before, after)
  const f = (key: string): (typeof changes)[number] | undefined => changes.find((c) => c.mode === 'flatnet' && c.metric.key === key)
  t.equal(f('udpRr1024Tps')?.verdict, 'better')
  t.equal(f('udpRr1024Tps')?.ratio?.verdict, 'better')
  t.equal(f('udpRr1024P99Us')?.verdict, 'within the noise')
  t.equal(f('tcpCrrCps')?.verdict, 'better')
  t.equal(f('tcpCrrCpuUsPerConn')?.verdict, 'within the noise')
  const text = formatCompare(before, after, ['a.json', 'b.json'])
  t.match(text, /\nflatnet +UDP_RR 1024 B, transactions\/s +30000 \(29000-31000\) +36000 \(35000-37000\) +\+20\.0% +better, beyond the noise/)
  t.match(text, /\nflatnet +TCP_CRR CPU, us\/connection +700 \(690-720\) +680 \(650-700\) +-2\.9% +within the noise/)
  // Lower is better: fewer microseconds in every round is better, more is worse.
  t.equal(verdict([700, 720], [600, 650], 'lower'), 'better')
})

t.test('a file from before samples were kept: its rounds read from details.rounds', async (t) => {
  const old = mode('flatnet', { tcp1Gbps: 11.3 })
  old.details = { rounds: [{ metrics: { tcp1Gbps: 10.7 }, ratios: { tcp1Gbps: 0.75 } }, { metrics: { tcp1Gbps: 11.3 }, ratios: { tcp1Gbps: 0.76 } }] }
  t.same(samplesOf(old, 'tcp1Gbps', 'metrics'), [10.7, 11.3])
  t.same(samplesOf(old, 'tcp1Gbps', 'ratios'), [0.75, 0.76])
  t.same(samplesOf(mode('flatnet', { tcp1Gbps: 9 }), 'tcp1Gbps', 'metrics'), [9], 'one round: its value')
})

t.test('npm run bench -- --compare A B: prints, exits 0 (no root, no lab)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-compare-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'a.json'), JSON.stringify(BEFORE))
  writeFileSync(join(dir, 'b.json'), JSON.stringify(AFTER))
  const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, '--compare', join(dir, 'a.json'), join(dir, 'b.json')], { encoding: 'utf8' })
  t.match(stdout, /flatnet +TCP 1 stream, Gbit\/s .* better, beyond the noise/)
  const bad = await promisify(execFile)(process.execPath, [RUNNER, '--compare', join(dir, 'a.json')]).catch((err: { code: number, stderr: string }) => err)
  t.equal((bad as { code: number }).code, 2, 'one file: usage error')
})
