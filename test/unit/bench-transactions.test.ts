// The request/response and connection-rate tests' figures: sockperf's report parsed
// from a fixed sample, CPU per transaction, the TCP_CRR report's checks, and the
// TCP_CRR generator itself on loopback (no root, no lab; nothing timed is asserted).
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { CrrReport } from '../../bench/crr.js'
import { parseSockperf } from '../../bench/latency.js'
import { metricsOfRun } from '../../bench/report.js'
import { crrResult, rrCpuUs } from '../../bench/transactions.js'

const CRR = fileURLToPath(new URL('../../dist/bench/crr.js', import.meta.url))

// `sockperf pp --tcp -m 1024 --full-rtt -t 1` (3.7), as it prints it, colours included.
const SOCKPERF_TCP_1024 = `sockperf: == version #3.7-no.git ==
[ 0] IP = 127.0.0.1       PORT = 12346 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; SentMessages=174416; ReceivedMessages=174415
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=95885; ReceivedMessages=95885
sockperf: \x1b[2;35m====> avg-rtt=5.705 (std-dev=21.472)\x1b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Round trip is 5.705 usec
sockperf: Total 95885 observations; each percentile contains 958.85 observations
sockperf: ---> <MAX> observation = 6451.043
sockperf: ---> percentile 99.999 =  618.867
sockperf: ---> percentile 99.990 =  187.924
sockperf: ---> percentile 99.900 =   60.434
sockperf: ---> percentile 99.000 =   12.741
sockperf: ---> percentile 90.000 =    6.378
sockperf: ---> percentile 75.000 =    5.099
sockperf: ---> percentile 50.000 =    4.886
sockperf: ---> percentile 25.000 =    4.796
sockperf: ---> <MIN> observation =    4.376
`

t.test('sockperf ping-pong: percentiles, the rate after the warm-up, the round trips of the whole run', async (t) => {
  const f = parseSockperf(SOCKPERF_TCP_1024)
  t.same({ p50Us: f.p50Us, p90Us: f.p90Us, p99Us: f.p99Us, roundTrips: f.roundTrips }, { p50Us: 4.886, p90Us: 6.378, p99Us: 12.741, roundTrips: 174415 })
  t.equal(f.perSecond.toFixed(0), '174336', '95885 in the 0.550 s after the warm-up')
  t.throws(() => parseSockperf(SOCKPERF_TCP_1024.replace(/.*percentile 90\.000.*\n/, '')), /sockperf: no 90\.000 percentile/)
  t.throws(() => parseSockperf(SOCKPERF_TCP_1024.replace(/.*\[Valid Duration\].*\n/, '')), /no \[Valid Duration\]/)
})

t.test('CPU per transaction: busy seconds of all CPUs over the transactions, in microseconds', async (t) => {
  t.equal(rrCpuUs(2.19, 71873).toFixed(2), '30.47')
  t.throws(() => rrCpuUs(1, 0), /no transaction completed/)
})

const REPORT: CrrReport = { connections: 4220, seconds: 2.0005, busyCpuSeconds: 3.11, p50Us: 357, p90Us: 626, p99Us: 2850, errors: 0 }

t.test('TCP_CRR report: connections per second and CPU per connection; failed connections are an error', async (t) => {
  const r = crrResult(REPORT)
  t.equal(r.connectionsPerSecond.toFixed(1), '2109.5')
  t.equal(r.cpuUsPerConnection.toFixed(1), '737.0')
  t.equal(r.p99Us, 2850, 'the report kept with it')
  t.throws(() => crrResult({ ...REPORT, errors: 3, firstError: 'connect EADDRNOTAVAIL 10.244.2.10:11113' }),
    /TCP_CRR: 3 connection\(s\) failed \(first: connect EADDRNOTAVAIL 10\.244\.2\.10:11113\), 4220 completed/)
  t.throws(() => crrResult({ ...REPORT, connections: 0 }), /TCP_CRR: no connection completed/)
})

t.test('the figures a run sets out to measure: its request/response sizes; daemon figures only where a process carries the packets', async (t) => {
  const quick = metricsOfRun([64], false).map((m) => m.key)
  t.ok(quick.includes('tcpRr64Tps') && quick.includes('udpRr64CpuUsPerTx') && quick.includes('tcpCrrCps'))
  t.notOk(quick.some((k) => /Rr(14|1024)/.test(k) || k === 'rssPeakMB'))
  const full = metricsOfRun([14, 64, 1024], true).map((m) => m.key)
  t.equal(full.filter((k) => /^(tcp|udp)Rr\d+Tps$/.test(k)).length, 6, 'TCP_RR and UDP_RR at 14, 64 and 1024 bytes')
  t.ok(full.includes('rssPeakMB'))
})

t.test('the TCP_CRR generator on loopback: connect, 1 byte each way, close, one at a time', async (t) => {
  // A free port: listen on 0, read it, close.
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port
      probe.close(() => resolve(p))
    })
  })
  const server = spawn(process.execPath, [CRR, 'server', '127.0.0.1', String(port)], { stdio: 'ignore' })
  t.teardown(() => { server.kill() })
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = createServer().once('error', () => resolve(true)).listen(port, '127.0.0.1', () => c.close(() => resolve(false)))
    })
    if (up) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const { stdout } = await promisify(execFile)(process.execPath, [CRR, 'client', '127.0.0.1', String(port), '0.3'], { encoding: 'utf8' })
  const report = JSON.parse(stdout) as CrrReport
  t.equal(report.errors, 0, `no failed connection${report.firstError ? ` (${report.firstError})` : ''}`)
  t.ok(report.connections > 0, 'connections completed')
  t.ok(report.seconds >= 0.3, 'ran for the time asked')
  t.ok(report.p50Us > 0 && report.p50Us <= report.p90Us && report.p90Us <= report.p99Us, 'percentiles in order')
  t.ok(report.busyCpuSeconds >= 0)
  const bad = await promisify(execFile)(process.execPath, [CRR, 'client', '127.0.0.1']).catch((err: { code: number }) => err)
  t.equal((bad as { code: number }).code, 2, 'usage error')
})
