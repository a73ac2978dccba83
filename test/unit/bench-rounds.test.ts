// Folding interleaved bench rounds: medians of values, medians of ratios paired
// within each round (so a round where the whole machine was slow moves neither), every
// round's value kept, the noisy figures flagged; and the baseline a host can run.
import t from 'tap'
import { chooseBaseline } from '../../bench/modes.js'
import { combineRounds, median } from '../../bench/rounds.js'
import { formatTable, type Metrics, type ModeResult } from '../../bench/report.js'

function mode (name: string, tcp1Gbps: number, rttP50Us?: number, error?: string, more: Metrics = {}, load = 0.5): ModeResult {
  return {
    mode: name,
    description: name,
    userspace: name.startsWith('flatnet'),
    ok: error === undefined,
    error,
    metrics: { tcp1Gbps, ...rttP50Us === undefined ? {} : { rttP50Us }, ...more },
    errors: {},
    ratios: {},
    details: { loadavg: { before: [load, 0, 0], after: [load + 0.5, 0, 0] } },
  }
}

const RUN = {
  version: 2 as const,
  date: '2026-01-01T00:00:00.000Z',
  topology: 'test',
  seconds: 5,
  quick: false,
  host: { cpus: 2, kernel: 'x', node: 'v20', loadavg: { before: [0.5, 0, 0], after: [1.25, 0, 0] } },
  placement: { sender: 0, receiver: 1, pingPong: 0 },
}

t.test('median', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([7]), 7)
})

t.test('one round: ratios to the baseline of that run, its samples, no spread', async (t) => {
  const [k, f] = combineRounds([[mode('kernel-vxlan', 10, 20), mode('flatnet', 5, 50)]], 'kernel-vxlan')
  t.equal(k.ratios.tcp1Gbps, 1)
  t.equal(f.ratios.tcp1Gbps, 0.5)
  t.equal(f.ratios.rttP50Us, 2.5)
  t.same(f.samples, { tcp1Gbps: [5], rttP50Us: [50] })
  t.equal(f.spread, undefined)
  t.same(f.noisy, {})
  t.same(Object.keys(f.details), ['loadavg'], 'the run\'s own details, not nested')
})

t.test('three rounds: median values, median of paired ratios, spread and every round kept', async (t) => {
  // Round 2 ran while the machine was busy: both modes halved, the ratio did not move.
  const rounds = [
    [mode('kernel-vxlan', 16, 20), mode('flatnet', 8, 50)],
    [mode('kernel-vxlan', 8, 40), mode('flatnet', 4, 100)],
    [mode('kernel-vxlan', 18, 20), mode('flatnet', 10.4, 44)],
  ]
  const [k, f] = combineRounds(rounds, 'kernel-vxlan')
  t.equal(k.metrics.tcp1Gbps, 16)
  t.equal(f.metrics.tcp1Gbps, 8)
  t.equal(f.ratios.tcp1Gbps, 0.5, 'the median of 0.5, 0.5, 0.58')
  t.equal(f.ratios.rttP50Us, 2.5, 'the median of 2.5, 2.5, 2.2')
  t.same(f.samples?.tcp1Gbps, [8, 4, 10.4], 'every round\'s value, in order')
  t.same(f.spread?.tcp1Gbps, [4, 10.4])
  t.same(f.ratioSpread?.tcp1Gbps?.map((v) => v.toFixed(2)), ['0.50', '0.58'])
  t.equal((f.details.rounds as unknown[]).length, 3)
  t.ok(f.ok)
  // The values moved 80% of their median, the paired ratios 16%: only the values are noisy.
  t.match(f.noisy?.tcp1Gbps, /^spread 80% of the median \(4\.00-10\.4\); load 0\.50-1\.00 \(1 min\)$/)
  t.notMatch(f.noisy?.tcp1Gbps, /ratio spread/)
})

t.test('noise flags: a spread over 20% of the median, values or paired ratios; never on counts', async (t) => {
  const [k, f] = combineRounds([
    [mode('kernel-vxlan', 10, 20, undefined, { tcp1Retransmits: 0 }), mode('flatnet', 8, 40, undefined, { tcp1Retransmits: 10 })],
    [mode('kernel-vxlan', 10.5, 21, undefined, { tcp1Retransmits: 1000 }), mode('flatnet', 5, 41, undefined, { tcp1Retransmits: 500 })],
    [mode('kernel-vxlan', 11, 22, undefined, { tcp1Retransmits: 3 }), mode('flatnet', 8.2, 42, undefined, { tcp1Retransmits: 30 }, 3.5)],
  ], 'kernel-vxlan')
  t.same(k.noisy, {}, 'within 10%: not noisy')
  t.match(f.noisy?.tcp1Gbps, /^spread 40% of the median \(5\.00-8\.20\); ratio spread 43% of the median \(0\.48-0\.80\); load 0\.50-4\.00 \(1 min\)$/)
  t.equal(f.noisy?.rttP50Us, undefined, '40-42 us: 5%')
  t.equal(f.noisy?.tcp1Retransmits, undefined, 'retransmits swing by chance: spread shown, never flagged')
  t.same(f.spread?.tcp1Retransmits, [10, 500])
})

t.test('noise flags: 4 streams below 1 stream where the kernel carries the packets', async (t) => {
  const hostGw = (one: number, four: number, load?: number): ModeResult => mode('host-gw', one, undefined, undefined, { tcp4Gbps: four }, load)
  const flatnet = (one: number, four: number): ModeResult => mode('flatnet', one, undefined, undefined, { tcp4Gbps: four })
  // The busy-machine run of the issue: host-gw 4 streams 12.9 against 1 stream 16.6.
  const [h, f] = combineRounds([[hostGw(16.6, 12.9, 4.2), flatnet(11, 10.5)]], 'host-gw')
  t.equal(h.noisy?.tcp4Gbps, '4 streams below 1 stream (12.9 < 16.6 Gbit/s); load 4.20-4.70 (1 min)')
  t.equal(h.noisy?.tcp1Gbps, h.noisy?.tcp4Gbps, 'which of the two is off cannot be told: both flagged')
  t.same(f.noisy, {}, 'a daemon may well carry 4 streams slower than 1')
  const [h3] = combineRounds([[hostGw(16, 33)], [hostGw(16.2, 15)], [hostGw(16.1, 32)]], 'host-gw')
  t.match(h3.noisy?.tcp4Gbps, /4 streams below 1 stream in round 2 \(15\.0 < 16\.2 Gbit\/s\)/)
})

t.test('request/response and connection rate: medians, paired ratios, noise flags like every figure', async (t) => {
  // Round 3's flatnet TCP_RR ran beside a busy neighbour: 14,000 transactions/s against 20,000-21,000.
  const rr = (tps: number, p99: number, cpu: number, cps: number): Metrics => ({ tcpRr64Tps: tps, tcpRr64P99Us: p99, tcpRr64CpuUsPerTx: cpu, tcpCrrCps: cps })
  const [k, f] = combineRounds([
    [mode('kernel-vxlan', 14, 9, undefined, rr(50_000, 20, 30, 3400)), mode('flatnet', 11, 30, undefined, rr(20_000, 52, 80, 2100))],
    [mode('kernel-vxlan', 14, 9, undefined, rr(51_000, 21, 31, 3300)), mode('flatnet', 11, 30, undefined, rr(21_000, 50, 84, 2150))],
    [mode('kernel-vxlan', 14, 9, undefined, rr(49_000, 20, 29, 3350)), mode('flatnet', 11, 30, undefined, rr(14_000, 51, 82, 2120))],
  ], 'kernel-vxlan')
  t.equal(k.ratios.tcpRr64Tps, 1)
  t.equal(f.metrics.tcpRr64Tps, 20_000)
  t.same(f.samples?.tcpRr64Tps, [20_000, 21_000, 14_000], 'the sample of every round')
  t.equal(f.ratios.tcpRr64Tps?.toFixed(3), '0.400', 'the median of 0.400, 0.412, 0.286')
  t.equal(f.ratios.tcpRr64CpuUsPerTx?.toFixed(2), '2.71', 'CPU per transaction, the median of 2.67, 2.71, 2.83: above 1 costs more')
  t.equal(f.ratios.tcpCrrCps?.toFixed(3), '0.633')
  t.match(f.noisy?.tcpRr64Tps, /^spread 35% of the median \(14000-21000\); ratio spread 32% of the median/)
  t.equal(f.noisy?.tcpRr64P99Us, undefined, '50-52 us: 4%')
  t.equal(f.noisy?.tcpCrrCps, undefined)
  const table = formatTable({ ...RUN, baseline: 'kernel-vxlan', rounds: 3, rrSizes: [64], modes: [k, f] })
  t.match(table, /\nTCP_RR 64 B trans\/s +50000 \(1\.00x\) +20000 \(0\.40x\)! *\n p50 us +- +- *\n p90 us +- +- *\n p99 us +20\.0 \(1\.00x\) +51\.0 \(2\.55x\) *\n CPU us\/trans, all +30\.0 \(1\.00x\) +82\.0 \(2\.71x\) *\n/)
  t.match(table, /\nTCP_CRR conn\/s +3350 \(1\.00x\) +2120 \(0\.63x\) *\n/)
  t.notMatch(table, /TCP_RR 14 B|TCP_RR 1024 B|UDP_RR 1024 B/, 'only the sizes the run measured')
  t.match(table, /\n {2}flatnet TCP_RR 64 B, transactions\/s: spread 35% of the median/, 'the noisy list names the test')
})

t.test('a failure in any round is reported with its round', async (t) => {
  const [, f] = combineRounds([
    [mode('kernel-vxlan', 10), mode('flatnet', 5)],
    [mode('kernel-vxlan', 10), mode('flatnet', 6, undefined, 'daemon died')],
  ], 'kernel-vxlan')
  t.notOk(f.ok)
  t.equal(f.error, 'round 2: daemon died')
  t.equal(f.metrics.tcp1Gbps, 5.5)
  const skipped = (): ModeResult => ({ ...mode('openvpn', 0, undefined, 'skipped: openvpn is not installed'), metrics: {}, skipped: true })
  const [, o] = combineRounds([[mode('kernel-vxlan', 10), skipped()], [mode('kernel-vxlan', 10), skipped()]], 'kernel-vxlan')
  t.equal(o.error, 'skipped: openvpn is not installed', 'the same in every round: said once')
  t.ok(o.skipped)
})

t.test('the table: medians with ratios, the spread of values and of ratios, the noisy figures with the load', async (t) => {
  const modes = combineRounds([
    [mode('kernel-vxlan', 16, 20, undefined, { tcp1Retransmits: 12 }), mode('flatnet', 8, 50, undefined, { tcp1Retransmits: 60 })],
    [mode('kernel-vxlan', 10, 20, undefined, { tcp1Retransmits: 14 }), mode('flatnet', 6, 44, undefined, { tcp1Retransmits: 80 })],
  ], 'kernel-vxlan')
  const table = formatTable({ ...RUN, baseline: 'kernel-vxlan', rounds: 2, modes })
  t.match(table, /medians of 2 interleaved rounds, ratios paired within each round; ! = noisy/)
  t.match(table, /load average \(1 min\) 0\.50 at the start, 1\.25 at the end; 2 CPUs/)
  t.match(table, /TCP 1 stream Gbit\/s\s+13\.0 \(1\.00x\)!\s+7\.00 \(0\.55x\)!/)
  t.match(table, /TCP 1 stream Gbit\/s\s+13\.0[^\n]*\n retransmits\s+13\s+70\s*\n/, 'retransmits under their test, no ratio')
  t.match(table, /lowest-highest over the rounds \(spread as % of the median\):\nTCP 1 stream Gbit\/s\s+10\.0-16\.0 \(46%\)\s+6\.00-8\.00 \(29%\)/)
  t.match(table, /ratio to kernel-vxlan, lowest-highest over the rounds:\nTCP 1 stream Gbit\/s\s+1\.00-1\.00\s+0\.50-0\.60/)
  t.match(table, /noisy \(!\): spread over 20% of the median, or an ordering that cannot be:\n {2}kernel-vxlan TCP 1 stream, Gbit\/s: spread 46% of the median \(10\.0-16\.0\); load 0\.50-1\.00 \(1 min\)/)
})

t.test('the baseline: kernel VXLAN where the host has it, else host-gw, saying why', async (t) => {
  const all = ['host-gw', 'kernel-vxlan', 'flatnet']
  t.same(chooseBaseline(all, new Map()), { baseline: 'kernel-vxlan' })
  const refused = new Map([['kernel-vxlan', 'the kernel refused a vxlan device (emulated by FLATNET_LAB_NO_VXLAN=1)']])
  t.same(chooseBaseline(all, refused), {
    baseline: 'host-gw',
    note: 'ratios to host-gw, not kernel-vxlan: kernel-vxlan cannot run here: the kernel refused a vxlan device (emulated by FLATNET_LAB_NO_VXLAN=1)',
  })
  t.same(chooseBaseline(['host-gw', 'flatnet'], new Map()), { baseline: 'host-gw', note: 'ratios to host-gw, not kernel-vxlan: kernel-vxlan not in --modes' })
  t.same(chooseBaseline(['flatnet'], new Map()), { note: 'no ratios: kernel-vxlan not in --modes, and host-gw not in --modes' })

  // A run on such a host: kernel-vxlan skipped, every ratio to host-gw, the table says so.
  const { baseline, note } = chooseBaseline(all, refused)
  const skipped: ModeResult = { mode: 'kernel-vxlan', description: '', userspace: false, ok: false, skipped: true, error: `skipped: ${refused.get('kernel-vxlan') as string}`, metrics: {}, errors: {}, ratios: {}, details: {} }
  const modes = combineRounds([[mode('host-gw', 16, 8), skipped, mode('flatnet', 12, 32)]], baseline)
  t.equal(modes[2].ratios.tcp1Gbps, 0.75)
  t.equal(modes[2].ratios.rttP50Us, 4)
  const table = formatTable({ ...RUN, baseline, baselineNote: note, rounds: 1, modes })
  t.match(table, /\(x\) = ratio to host-gw of this run\nratios to host-gw, not kernel-vxlan: kernel-vxlan cannot run here/)
  t.match(table, /TCP 1 stream Gbit\/s\s+16\.0 \(1\.00x\)\s+skipped\s+12\.0 \(0\.75x\)/)
  t.match(table, /not run here:\n {2}kernel-vxlan: skipped: the kernel refused a vxlan device/)
  t.notMatch(table, /failures:/)
})
