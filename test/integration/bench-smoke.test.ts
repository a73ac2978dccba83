// The benchmark harness end to end, briefly: `--quick --profile` over host-gw, kernel
// VXLAN and flatnet (--quick's request/response tests at 64 bytes and TCP_CRR included),
// as `npm run bench` runs it (a child process of the compiled runner), the same on a host
// emulated without the vxlan module, then the peer-table and convergence benchmarks. No
// thresholds: each metric must have been measured, each mode profiled, the chart
// written, the provenance recorded, nothing left.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { profilerUnavailable } from '../../bench/profile.js'
import { leftoverNamespaces } from '../../src/lab/netns.js'
import { labSkipReason } from '../lib/lab.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const RUNNER = join(REPO, 'dist/bench/run.js')
const MODES = ['host-gw', 'kernel-vxlan', 'flatnet']
const COMMON_METRICS = ['tcp1Gbps', 'tcp1Retransmits', 'tcp4Gbps', 'tcp4Retransmits', 'udp64Kpps', 'udp64LossPct', 'udp64PodLossPct',
  'rttP50Us', 'rttP99Us', 'rttSwitches', 'tcp1CpuSecPerGbit', 'tcp4CpuSecPerGbit',
  ...['tcp', 'udp'].flatMap((p) => ['Tps', 'P50Us', 'P90Us', 'P99Us', 'CpuUsPerTx'].map((f) => `${p}Rr64${f}`)), 'tcpCrrCps', 'tcpCrrCpuUsPerConn',
  'udpMtuGbps', 'udpMtuLossPct', 'udpMtuCpuSecPerGbit', 'sameTcp1Gbps', 'sameTcp1CpuSecPerGbit', 'sameTcpRr64Tps', 'sameTcpRr64P50Us']
const USERSPACE_METRICS = ['cpuSecPerGbit', 'rssPeakMB'] // where a daemon carries the packets

const run = promisify(execFile)
// Four benchmarks of a minute or two each: past tap's default per file.
t.setTimeout(600_000)

/** False (and the test skipped, saying why) where namespaces cannot be made; CI must make them. */
function labOrSkip (t: Test): boolean {
  const why = labSkipReason('the bench smoke tests', ['iperf3', 'sockperf', 'openvpn'])
  if (!why) return true
  t.pass(`bench smoke test skipped: ${why}`, { skip: true })
  return false
}

t.test('npm run bench -- --quick', async (t) => {
  if (!labOrSkip(t)) return
  t.ok(existsSync(RUNNER), `${RUNNER} exists (npm test compiles it in pretest; else run npx tsc -p .)`)
  const out = mkdtempSync(join(tmpdir(), 'flatnet-bench-smoke-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))

  // --profile needs perf (Debian's linux-perf, which .ci/run installs); elsewhere the run goes without.
  const noPerf = await profilerUnavailable()
  if (noPerf && process.env.CI) throw new Error(`--profile must be tested in CI but cannot: ${noPerf}`)
  const running = run(process.execPath,
    [RUNNER, '--quick', '--seconds', '1', ...noPerf ? [] : ['--profile'], '--modes', MODES.join(','), '--out', out], { encoding: 'utf8', timeout: 200_000 })
  // The runner names its namespaces flatnet-bench<its pid>m<mode index>-...
  const prefix = `flatnet-bench${running.child.pid}m`
  const { stdout, stderr } = await running
  t.comment(stdout)
  t.comment(stderr)

  const files = readdirSync(out)
  const json = files.find((f) => f.endsWith('.json'))
  if (!json) throw new Error(`no result JSON in ${out}: ${files.join(', ')}`)
  t.ok(files.includes(json.replace(/\.json$/, '.svg')), 'the SVG chart is written beside the JSON')
  const svg = readFileSync(join(out, json.replace(/\.json$/, '.svg')), 'utf8')
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/, 'the chart is one SVG element')
  const panels = [...svg.matchAll(/<g class="panel" data-metric="(\w+)">/g)].map((m) => m[1])
  t.ok(COMMON_METRICS.every((k) => panels.includes(k)), 'a chart panel per figure, the new tests\' included')

  const result = JSON.parse(readFileSync(join(out, json), 'utf8'))
  t.same(result.modes.map((m: { mode: string }) => m.mode), MODES, 'one result per mode, in order')
  t.equal(result.baseline, 'kernel-vxlan')
  t.equal(result.rounds, 1, '--quick: one round')
  t.same(result.rrSizes, [64], '--quick: request/response at 64 bytes only')
  t.match(result.flatnet, { version: /^\d+\.\d+\.\d+/, commit: String }, 'the flatnet version and commit')
  t.match(result.host, { kernel: String, cpuModel: String, cpus: Number, loadavg: { before: Array, after: Array } }, 'kernel, CPU, load')
  t.match(result.command, /^npm run bench -- --quick/, 'the command line')
  t.ok(Date.parse(result.started) <= Date.parse(result.date), 'when it started and ended')
  t.match(stdout, / retransmits +\d+ +\d+ +\d+/, 'the table shows the retransmits')
  for (const row of ['TCP_RR 64 B trans/s', 'UDP_RR 64 B trans/s', 'TCP_CRR conn/s']) {
    t.match(stdout, new RegExp(`\\n${row} +\\d+ \\([\\d.]+x\\)!? +\\d+ \\(1\\.00x\\)!? +\\d+ \\([\\d.]+x\\)`), `the table: ${row}, with ratios`)
  }
  t.notMatch(stdout, /_RR (14|1024) B/, '--quick: no other sizes')
  for (const m of result.modes) {
    const keys = m.mode.startsWith('flatnet') ? [...COMMON_METRICS, ...USERSPACE_METRICS] : COMMON_METRICS
    for (const key of keys) {
      t.type(m.metrics[key], 'number', `${m.mode}: ${key} measured${m.error ? ` (error: ${m.error})` : ''}`)
      t.ok(Number.isFinite(m.metrics[key]), `${m.mode}: ${key} is finite`)
    }
    t.ok(m.ok, `${m.mode}: every figure that applies measured`)
    if (m.mode !== 'kernel-vxlan') t.type(m.ratios.tcp1Gbps, 'number', `${m.mode}: TCP ratio to kernel-vxlan`)
    if (m.mode !== 'kernel-vxlan') t.type(m.ratios.tcpRr64Tps, 'number', `${m.mode}: TCP_RR ratio to kernel-vxlan`)
    t.ok(m.metrics.tcpRr64P50Us <= m.metrics.tcpRr64P90Us && m.metrics.tcpRr64P90Us <= m.metrics.tcpRr64P99Us, `${m.mode}: TCP_RR percentiles in order`)
    t.equal(m.details.tcpCrr?.errors, 0, `${m.mode}: TCP_CRR without a failed connection`)
    t.same(m.samples?.tcp1Gbps, [m.metrics.tcp1Gbps], `${m.mode}: every sample kept`)
    t.ok(m.metrics.udp64PodLossPct <= m.metrics.udp64LossPct, `${m.mode}: the pod's share of the UDP loss is part of it`)
    // The largest datagram the path carries: the overlay's 50 bytes of VXLAN below the underlay's 1500.
    t.equal(m.details.udpMtu?.mtu, m.mode === 'host-gw' ? 1500 : 1450, `${m.mode}: UDP datagrams sized to the path's MTU`)
    t.type(m.noisy, 'object', `${m.mode}: noise flags recorded`)
    if (noPerf) continue
    t.notOk(m.profileError, `${m.mode}: profiled${m.profileError ? ` (error: ${m.profileError})` : ''}`)
    t.ok(m.profile?.samples > 0 && m.profile.gbps > 0, `${m.mode}: the profile has samples and its test's throughput`)
    t.ok(m.profile?.secPerGbit.copies > 0, `${m.mode}: the kernel's copies are found in it`)
    if (m.mode === 'flatnet') t.ok(m.profile?.sharePct.dataPlane > 0, 'flatnet: its workers\' own code is found in it')
  }
  if (noPerf) t.pass(`--profile not tried: ${noPerf}`, { skip: true })
  else t.match(stdout, /where the CPU goes, TCP 4 streams/, 'the profile table is printed')
  t.same(leftoverNamespaces(prefix), [], 'no namespace of the run left behind')
})

t.test('npm run bench -- --quick on a host without the vxlan module (emulated): host-gw ratios', async (t) => {
  if (!labOrSkip(t)) return
  const out = mkdtempSync(join(tmpdir(), 'flatnet-bench-novxlan-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { stdout, stderr } = await run(process.execPath, [RUNNER, '--quick', '--seconds', '1', '--modes', MODES.join(','), '--out', out],
    { encoding: 'utf8', timeout: 200_000, env: { ...process.env, FLATNET_LAB_NO_VXLAN: '1' } })
  t.comment(stdout)
  t.comment(stderr)
  t.match(stderr, /note: ratios to host-gw, not kernel-vxlan: kernel-vxlan cannot run here: the kernel refused a vxlan device/)
  t.match(stdout, /\(x\) = ratio to host-gw of this run\nratios to host-gw, not kernel-vxlan/, 'the table says which baseline')
  const json = readdirSync(out).find((f) => f.endsWith('.json'))
  if (!json) throw new Error(`no result JSON in ${out}`)
  const result = JSON.parse(readFileSync(join(out, json), 'utf8'))
  t.equal(result.baseline, 'host-gw')
  const [hostGw, kernel, flatnet] = result.modes
  t.match(kernel, { skipped: true, error: /^skipped: the kernel refused a vxlan device/ }, 'kernel-vxlan skipped, saying why')
  t.match(stdout, /TCP 1 stream Gbit\/s +[\d.]+ \(1\.00x\)!? +skipped +[\d.]+ \([\d.]+x\)/, 'the table: skipped, not failed')
  t.equal(hostGw.ratios.tcp1Gbps, 1)
  t.type(flatnet.ratios.tcp1Gbps, 'number', 'flatnet measured against host-gw')
  t.type(flatnet.ratios.rttP50Us, 'number')
  t.type(flatnet.ratios.tcpCrrCps, 'number', 'the connection rate too')
})

t.test('npm run bench:peers', async (t) => {
  if (!labOrSkip(t)) return
  const { stdout } = await run(process.execPath, [join(REPO, 'dist/bench/peers.js')], { encoding: 'utf8', timeout: 120_000 })
  t.comment(stdout)
  const rows = stdout.split('\n').filter((l) => /peers: update of one peer +\d+ ns +lookup +[\d.]+ ns +fib lookup +[\d.]+ ns\/packet +\(ok\)/.test(l))
  t.equal(rows.length, 6, '10 / 1,000 / 5,000 peers, for the TypeScript side and the native push, every lookup found')
  t.match(stdout, /push: native updatePeers on a running Dataplane/)
  t.same(leftoverNamespaces('flatnet-peers'), [], 'its namespace removed')
})

t.test('npm run bench:convergence -- --rounds 1', async (t) => {
  if (!labOrSkip(t)) return
  const { stdout } = await run(process.execPath, [join(REPO, 'dist/bench/convergence.js'), '--rounds', '1'], { encoding: 'utf8', timeout: 120_000 })
  t.comment(stdout)
  for (const event of ['graceful stop', 'start', 'join: every table', 'join: all 14 pod pairs', 'kill -9']) {
    t.match(stdout, new RegExp(`^\\| ${event}[^|]* \\| [\\d.]+ \\| \\d+ \\|`, 'm'), `${event}: measured`)
  }
  t.same(leftoverNamespaces('flatnet-cv'), [], 'its namespaces removed')
})
