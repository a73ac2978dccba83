// The bench's --profile: perf's report parsed, each sample sorted into a kind of work,
// and the kinds put per Gbit carried. The report lines are real ones from this
// machine's 4-stream tests (perf 6.1, Linux 6.18), trimmed.
import t from 'tap'
import { categorize, parsePerfReport, summarize, type PerfLine } from '../../bench/profile.js'
import { formatProfile, type BenchResult, type ModeResult } from '../../bench/report.js'

const REPORT = [
  ' 12.91% |000|swapper        |[kernel.kallsyms]                  |[k] pv_native_safe_halt',
  ' 9.42%  |001|flatnet-cpu1   |[kernel.kallsyms]                  |[k] _copy_to_iter',
  ' 7.52%  |000|iperf3         |[kernel.kallsyms]                  |[k] _copy_from_iter',
  ' 3.39%  |001|flatnet-cpu1   |flatnet.node                       |[.] flatnet::checksumCopy',
  ' 1.60%  |000|swapper        |[kernel.kallsyms]                  |[k] handle_softirqs',
  ' 1.13%  |001|flatnet-cpu1   |[kernel.kallsyms]                  |[k] __check_object_size',
  ' 1.19%  |001|openvpn        |[kernel.kallsyms]                  |[k] csum_partial',
  ' 0.82%  |001|flatnet-cpu1   |flatnet.node                       |[.] flatnet::gsoSplit',
  ' 0.37%  |001|flatnet-cpu1   |libc.so.6                          |[.] __GI___libc_write',
  ' 0.40%  |000|iperf3         |libiperf.so.0.0.0                  |[.] iperf_send',
  ' 0.30%  |001|node           |[JIT] tid 7875                     |[.] 0x00007f2a1c0a1b2c',
  ' 0.20%  |001|openvpn        |openvpn                            |[.] process_incoming_tun',
  ' 0.10%  |001|flatnet-cpu0   |[kernel.kallsyms]                  |[k] operator|',
].join('\n')

t.test('perf report lines are parsed, whatever the padding; a "|" in a symbol stays', async (t) => {
  const lines = parsePerfReport(`# a comment\n\n${REPORT}\nnot a line`)
  t.equal(lines.length, 13)
  t.same(lines[0], { percent: 12.91, cpu: 0, comm: 'swapper', dso: '[kernel.kallsyms]', kernel: true, symbol: 'pv_native_safe_halt' })
  t.same(lines[3], { percent: 3.39, cpu: 1, comm: 'flatnet-cpu1', dso: 'flatnet.node', kernel: false, symbol: 'flatnet::checksumCopy' })
  t.equal(lines[12].symbol, 'operator|')
})

t.test('each sample has its kind of work', async (t) => {
  const kinds = parsePerfReport(REPORT).map((l) => [l.comm, l.symbol, categorize(l)])
  t.same(kinds, [
    ['swapper', 'pv_native_safe_halt', undefined], // idle
    ['flatnet-cpu1', '_copy_to_iter', 'copies'],
    ['iperf3', '_copy_from_iter', 'copies'],
    ['flatnet-cpu1', 'flatnet::checksumCopy', 'checksums'],
    ['swapper', 'handle_softirqs', 'kernel'], // an idle CPU's softirq work is work
    ['flatnet-cpu1', '__check_object_size', 'copies'], // hardened usercopy, part of every copy
    ['openvpn', 'csum_partial', 'checksums'],
    ['flatnet-cpu1', 'flatnet::gsoSplit', 'dataPlane'],
    ['flatnet-cpu1', '__GI___libc_write', 'dataPlane'], // libc in a worker thread
    ['iperf3', 'iperf_send', 'otherUser'],
    ['node', '0x00007f2a1c0a1b2c', 'otherUser'], // the bench's or a daemon's JavaScript
    ['openvpn', 'process_incoming_tun', 'dataPlane'],
    ['flatnet-cpu0', 'operator|', 'kernel'],
  ])
})

function line (percent: number, comm: string, symbol: string, kernel = true, cpu = 0): PerfLine {
  return { percent, cpu, comm, dso: kernel ? '[kernel.kallsyms]' : 'flatnet.node', kernel, symbol }
}

t.test('shares of all CPUs, and CPU seconds per Gbit carried', async (t) => {
  const p = summarize([
    line(20, 'swapper', 'pv_native_safe_halt'),
    line(40, 'iperf3', '_copy_from_iter'),
    line(30, 'flatnet-cpu1', 'tun_do_read'),
    line(10, 'flatnet-cpu1', 'flatnet::gsoSplit', false),
  ], 2, 2, 10, 4000)
  t.equal(p.idlePct, 20)
  t.same(p.idlePctByCpu, [40, 0], 'all the idle on CPU 0: 40% of its own time')
  t.same(p.sharePct, { copies: 40, checksums: 0, dataPlane: 10, kernel: 30, otherUser: 0 })
  // 40% of 2 CPUs is 0.8 CPU-seconds each second, while 10 Gbit went through.
  t.equal(p.secPerGbit.copies, 0.08)
  t.equal(p.secPerGbit.busy.toFixed(3), '0.160')
  t.equal(p.top[0].symbol, '_copy_from_iter', 'the heaviest symbols first')
  t.equal(p.samples, 4000)
})

t.test('the table: cost per kind, the busy total against the baseline, failures', async (t) => {
  const profiled = (name: string, copies: number, idle: number, gbps: number): ModeResult => ({
    mode: name,
    description: name,
    userspace: false,
    ok: true,
    metrics: {},
    errors: {},
    ratios: {},
    details: {},
    profile: summarize([line(idle, 'swapper', 'default_idle'), line(100 - idle - copies, 'iperf3', 'tcp_ack'), line(copies, 'iperf3', '_copy_to_iter')], 2, 2, gbps, 1000),
  })
  const result: BenchResult = {
    version: 1,
    date: '2026-01-01T00:00:00.000Z',
    baseline: 'kernel-vxlan',
    topology: 'test',
    seconds: 2,
    quick: true,
    host: { cpus: 2, kernel: 'x', node: 'v20' },
    placement: { sender: 0, receiver: 1, pingPong: 0 },
    modes: [
      profiled('kernel-vxlan', 30, 0, 20),
      profiled('flatnet', 30, 10, 12),
      { mode: 'openvpn', description: '', userspace: true, ok: true, metrics: {}, errors: {}, ratios: {}, details: {}, profileError: 'perf record exited 1: no' },
    ],
  }
  const table = formatProfile(result) ?? ''
  t.match(table, /kernel copies\s+0\.0300 \(30%\)\s+0\.0500 \(30%\)\s+failed/)
  // 2 CPUs busy for 20 Gbit/s: 0.1 s/Gbit; 1.8 for 12: 0.15, 1.5x.
  t.match(table, /busy, all\s+0\.1000 \(1\.00x\)\s+0\.1500 \(1\.50x\)/)
  t.match(table, /idle %, all \(by CPU\)\s+0 \(0\/0\)\s+10 \(20\/0\)/)
  t.match(table, /profile failures:\n {2}openvpn: perf record exited 1: no/)
  t.equal(formatProfile({ ...result, modes: result.modes.map((m) => ({ ...m, profile: undefined, profileError: undefined })) }), undefined,
    'no table without --profile')
})
