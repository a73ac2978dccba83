// `npm run bench`: builds the two-node lab afresh for each data plane, measures pod
// on node 1 -> pod on node 2, prints a table with ratios to kernel VXLAN (host-gw on a
// host without it), and writes bench/results/<time>.json plus an SVG chart beside it.
// A mode that fails is reported and the others still run; the exit code is non-zero
// only when the harness itself broke (bad options, no lab, a result it could not write).
// `--compare A.json B.json` prints what changed between two such files instead.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, release } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster } from '../src/lab/cluster.js'
import { labUnavailable, leftoverNamespaces, removeNamespace } from '../src/lab/netns.js'
import { COMMIT, VERSION } from '../src/version.js'
import { writeChart } from './chart.js'
import { compareFiles } from './compare.js'
import { markdownFile } from './markdown.js'
import { pathMtu, tcpThroughput, udpMtuSized, udpSmallPackets } from './iperf.js'
import { roundTrip } from './latency.js'
import { chooseBaseline, unavailableModes, type Mode } from './modes.js'
import { parseArgs, USAGE, type Options } from './options.js'
import { PING_PONG_CPU, RECEIVER_CPU, SENDER_CPU } from './pinning.js'
import { countingBusyCpu } from './proc-stat.js'
import { cpuSeconds, RssSampler } from './process-usage.js'
import { profileDuring, profilerUnavailable } from './profile.js'
import { formatProfile, formatTable, metricsOfRun, rrKey, type BenchResult, type MetricKey, type ModeResult } from './report.js'
import { combineRounds } from './rounds.js'
import { connectRate, requestResponse } from './transactions.js'

const REPO = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url))
const TOPOLOGY = '2 nodes, veth underlay, 2 pods on n1 and 1 on n2: pod n1 -> pod n2, and pod n1 -> pod n1 (same node)'
// Every namespace of this run starts with this, so a sweep can find exactly ours.
const RUN_PREFIX = `flatnet-bench${process.pid}m`
let current: Cluster | undefined

async function measureMode (mode: Mode, index: number, options: Options, profile: boolean, why: string | undefined): Promise<ModeResult> {
  const { seconds } = options
  const result: ModeResult = { mode: mode.name, description: mode.description, userspace: mode.userspace ?? false, ok: false, metrics: {}, errors: {}, ratios: {}, details: {} }
  if (why) {
    result.skipped = true
    result.error = `skipped: ${why}`
    return result
  }
  const started = Date.now()
  const loadBefore = loadavg()
  let sampler: RssSampler | undefined
  try {
    current = await Cluster.create({
      ...mode.cluster, nodes: [mode.node, mode.node], podsPerNode: 2, underlay: 'veth', tag: `bench${process.pid}m${index}`,
    })
    const [from, to] = current.nodes.map((n) => n.pods[0])
    const sender = current.nodes[0].ns
    const neighbour = current.nodes[0].pods[1]
    await waitReachable(from.ns, to.ip)
    await waitReachable(from.ns, neighbour.ip)
    const pids = current.nodes.map((n) => n.daemon?.pid).filter((p): p is number => p !== undefined)
    if (pids.length) sampler = new RssSampler(pids)

    const measure = async (keys: MetricKey[], fn: () => Promise<void>): Promise<void> => {
      try {
        await fn()
      } catch (err) {
        for (const k of keys) result.errors[k] = (err as Error).message
      }
    }
    await measure(['tcp1Gbps', 'tcp1Retransmits', 'tcp1CpuSecPerGbit', 'cpuSecPerGbit'], async () => {
      const cpuBefore = pids.map(cpuSeconds)
      const [tcp, busy] = await countingBusyCpu(() => tcpThroughput(from, to, seconds, 1))
      result.metrics.tcp1Gbps = tcp.gbps
      result.metrics.tcp1Retransmits = tcp.retransmits
      result.metrics.tcp1CpuSecPerGbit = busy / (tcp.bytes * 8 / 1e9)
      result.details.tcp1 = { ...tcp, busyCpuSeconds: busy }
      if (pids.length) {
        const cpu = pids.map(cpuSeconds).reduce((sum, v, i) => sum + v - cpuBefore[i], 0)
        result.metrics.cpuSecPerGbit = cpu / (tcp.bytes * 8 / 1e9)
        result.details.cpuSecondsTcp1 = cpu
      }
    })
    await measure(['tcp4Gbps', 'tcp4Retransmits', 'tcp4CpuSecPerGbit'], async () => {
      const [tcp, busy] = await countingBusyCpu(() => tcpThroughput(from, to, seconds, 4))
      result.metrics.tcp4Gbps = tcp.gbps
      result.metrics.tcp4Retransmits = tcp.retransmits
      result.metrics.tcp4CpuSecPerGbit = busy / (tcp.bytes * 8 / 1e9)
      result.details.tcp4 = { ...tcp, busyCpuSeconds: busy }
    })
    await measure(['udp64Kpps', 'udp64LossPct', 'udp64PodLossPct'], async () => {
      const udp = await udpSmallPackets(from, to, seconds)
      result.metrics.udp64Kpps = udp.pps / 1000
      result.metrics.udp64LossPct = udp.lossPct
      result.metrics.udp64PodLossPct = udp.podLossPct
      result.details.udp64 = udp
    })
    await measure(['udpMtuGbps', 'udpMtuLossPct', 'udpMtuCpuSecPerGbit'], async () => {
      const mtu = await pathMtu(from, sender, to.ip)
      const [udp, busy] = await countingBusyCpu(() => udpMtuSized(from, to, seconds, mtu))
      result.metrics.udpMtuGbps = udp.gbps
      result.metrics.udpMtuLossPct = udp.lossPct
      result.metrics.udpMtuCpuSecPerGbit = busy / (udp.bytes * 8 / 1e9)
      result.details.udpMtu = { ...udp, mtu, busyCpuSeconds: busy }
    })
    await measure(['rttP50Us', 'rttP99Us', 'rttSwitches'], async () => {
      const rtt = await roundTrip(from, to, seconds)
      result.metrics.rttP50Us = rtt.p50Us
      result.metrics.rttP99Us = rtt.p99Us
      result.metrics.rttSwitches = rtt.switchesPerRoundTrip
      result.details.rtt = rtt
    })
    for (const proto of ['tcp', 'udp'] as const) {
      for (const size of options.rrSizes) {
        const key = (figure: Parameters<typeof rrKey>[2]): MetricKey => rrKey(proto, size, figure)
        await measure([key('Tps'), key('P50Us'), key('P90Us'), key('P99Us'), key('CpuUsPerTx')], async () => {
          const rr = await requestResponse(from, to, proto, size, seconds)
          result.metrics[key('Tps')] = rr.transactionsPerSecond
          result.metrics[key('P50Us')] = rr.p50Us
          result.metrics[key('P90Us')] = rr.p90Us
          result.metrics[key('P99Us')] = rr.p99Us
          result.metrics[key('CpuUsPerTx')] = rr.cpuUsPerTransaction
          result.details[`${proto}Rr${size}`] = rr
        })
      }
    }
    await measure(['tcpCrrCps', 'tcpCrrCpuUsPerConn'], async () => {
      const crr = await connectRate(from, to, seconds)
      result.metrics.tcpCrrCps = crr.connectionsPerSecond
      result.metrics.tcpCrrCpuUsPerConn = crr.cpuUsPerConnection
      result.details.tcpCrr = crr
    })
    await measure(['sameTcp1Gbps', 'sameTcp1CpuSecPerGbit'], async () => {
      const [tcp, busy] = await countingBusyCpu(() => tcpThroughput(from, neighbour, seconds, 1))
      result.metrics.sameTcp1Gbps = tcp.gbps
      result.metrics.sameTcp1CpuSecPerGbit = busy / (tcp.bytes * 8 / 1e9)
      result.details.sameTcp1 = { ...tcp, busyCpuSeconds: busy }
    })
    await measure(['sameTcpRr64Tps', 'sameTcpRr64P50Us'], async () => {
      const rr = await requestResponse(from, neighbour, 'tcp', 64, seconds)
      result.metrics.sameTcpRr64Tps = rr.transactionsPerSecond
      result.metrics.sameTcpRr64P50Us = rr.p50Us
      result.details.sameTcpRr64 = rr
    })
    if (profile) {
      // Its own test, after the measured ones, so that perf's own cost (10-15% of the
      // throughput here) moves none of them. Sampled from 1.5 s in (iperf3 starts
      // ~0.5 s after its server), past slow start and the move of bulk flows, until
      // shortly before the end.
      const testSeconds = Math.max(seconds, 4)
      try {
        result.profile = await profileDuring(() => tcpThroughput(from, to, testSeconds, 4), testSeconds - 2.5, 1500)
      } catch (err) {
        result.profileError = (err as Error).message
      }
    }
    if (sampler) {
      result.metrics.rssPeakMB = sampler.stop()
      sampler = undefined
    }
    const failed = Object.entries(result.errors)
    if (failed.length) result.error = failed.map(([k, e]) => `${k}: ${e}`).join('; ')
    result.ok = metricsOfRun(options.rrSizes, mode.userspace ?? false).every((m) => result.metrics[m.key] !== undefined)
  } catch (err) {
    result.error = (err as Error).message
  } finally {
    sampler?.stop()
    const cluster = current
    current = undefined
    await cluster?.destroy().catch((err: Error) => { result.error = `${result.error ?? ''} (teardown: ${err.message})` })
    sweep()
    result.details.wallSeconds = (Date.now() - started) / 1000
    result.details.loadavg = { before: loadBefore, after: loadavg() }
  }
  return result
}

/** The data plane may need a moment (a daemon's peer table, openvpn's peer). */
async function waitReachable (ns: Cluster['nodes'][number]['ns'], ip: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await ns.execAsync('ping', ['-n', '-c', '1', '-W', '1', ip], 5000)
      return
    } catch {
      if (Date.now() > deadline) throw new Error(`pod ${ip} not reachable by ping from ${ns.name} after ${timeoutMs / 1000} s`)
    }
  }
}

/** Removes any namespace of this run still present: kills the processes inside it (by PID), then deletes it. */
function sweep (): void {
  for (const name of leftoverNamespaces(RUN_PREFIX)) removeNamespace(name)
}

function onSignal (signal: NodeJS.Signals): void {
  console.error(`\n${signal}: tearing down`)
  const cluster = current
  current = undefined
  const done = (): never => {
    sweep()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  if (cluster) cluster.destroy().then(done, done)
  else done()
}

async function main (): Promise<number> {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE)
    return 0
  }
  if (argv.includes('--compare')) {
    const files = argv.filter((a) => a !== '--compare')
    if (files.length !== 2 || files.some((f) => f.startsWith('--'))) {
      console.error(`--compare takes two result files and nothing else\n${USAGE}`)
      return 2
    }
    try {
      console.log(compareFiles(files[0], files[1]))
    } catch (err) {
      console.error(`--compare: ${(err as Error).message}`)
      return 2
    }
    return 0
  }
  if (argv.includes('--markdown')) {
    const rowsAt = argv.indexOf('--rows')
    const rows = rowsAt === -1 ? undefined : argv[rowsAt + 1]?.split(',').filter(Boolean)
    const files = argv.filter((a, i) => a !== '--markdown' && (rowsAt === -1 || (i !== rowsAt && i !== rowsAt + 1)))
    if (files.length !== 1 || files[0].startsWith('--') || (rowsAt !== -1 && !rows?.length)) {
      console.error(`--markdown takes one result file (and --rows key,...)\n${USAGE}`)
      return 2
    }
    try {
      console.log(markdownFile(files[0], rows))
    } catch (err) {
      console.error(`--markdown: ${(err as Error).message}`)
      return 2
    }
    return 0
  }
  let options: Options
  try {
    options = parseArgs(argv)
  } catch (err) {
    console.error((err as Error).message)
    return 2
  }
  const why = labUnavailable()
  if (why) {
    console.error(`bench: cannot build the namespace lab: ${why}`)
    return 1
  }
  const noPerf = options.profile ? await profilerUnavailable() : undefined
  if (noPerf) {
    console.error(`--profile: ${noPerf}`)
    return 2
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const started = new Date()
  const loadBefore = loadavg()
  const unavailable = await unavailableModes(options.modes)
  const { baseline, note } = chooseBaseline(options.modes.map((m) => m.name), unavailable)
  if (note) console.error(`note: ${note}`)

  const rounds: ModeResult[][] = []
  for (let round = 0; round < options.rounds; round++) {
    const results: ModeResult[] = []
    for (const [i, mode] of options.modes.entries()) {
      process.stderr.write(`${options.rounds > 1 ? `round ${round + 1}/${options.rounds} ` : ''}${mode.name}: `)
      const r = await measureMode(mode, round * options.modes.length + i, options, options.profile && round === 0, unavailable.get(mode.name))
      if (r.skipped) process.stderr.write(`${r.error as string}\n`)
      else process.stderr.write(`${r.ok ? 'done' : 'FAILED'} in ${r.details.wallSeconds as number} s${r.error ? ` (${r.error.split('\n')[0]})` : ''}\n`)
      results.push(r)
    }
    rounds.push(results)
  }
  const modes = combineRounds(rounds, baseline)
  const result: BenchResult = {
    version: 2,
    date: new Date().toISOString(),
    started: started.toISOString(),
    command: ['npm run bench --', ...argv].join(' '),
    flatnet: { version: VERSION, commit: COMMIT, uncommittedChanges: uncommittedChanges() },
    baseline,
    baselineNote: note,
    topology: TOPOLOGY,
    seconds: options.seconds,
    rounds: options.rounds,
    quick: options.quick,
    rrSizes: [...options.rrSizes],
    host: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim(),
      kernel: release(),
      node: process.version,
      // New namespaces inherit the host's default, and it moves single-stream figures.
      tcpCongestionControl: readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim(),
      loadavg: { before: loadBefore, after: loadavg() },
    },
    placement: { sender: SENDER_CPU, receiver: RECEIVER_CPU, pingPong: PING_PONG_CPU },
    modes,
  }
  console.log(formatTable(result))
  const profile = formatProfile(result)
  if (profile) console.log(profile)
  mkdirSync(options.out, { recursive: true })
  const jsonPath = join(options.out, `bench-${result.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(jsonPath, JSON.stringify(result, null, 2) + '\n')
  const svgPath = writeChart(jsonPath, result)
  console.log(`results: ${jsonPath}\nchart:   ${svgPath}`)
  return 0
}

/** Whether the checkout's tracked files differ from its commit (false outside a git checkout). */
function uncommittedChanges (): boolean {
  try {
    return execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== ''
  } catch {
    return false
  }
}

main().then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(`bench: harness error: ${err.stack ?? err.message}`)
  sweep()
  process.exitCode = 1
})
