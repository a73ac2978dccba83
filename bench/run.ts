// `npm run bench`: builds the two-node lab afresh for each data plane, measures pod
// on node 1 -> pod on node 2, prints a table with ratios to kernel VXLAN, and writes
// bench/results/<time>.json plus an SVG chart beside it. A mode that fails is
// reported and the others still run; the exit code is non-zero only when the
// harness itself broke (bad options, no lab, a result it could not write).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster } from '../src/lab/cluster.js'
import { labUnavailable, leftoverNamespaces, removeNamespace } from '../src/lab/netns.js'
import { writeChart } from './chart.js'
import { tcpThroughput, udpSmallPackets } from './iperf.js'
import { roundTrip } from './latency.js'
import { BASELINE, MODES, modeNamed, type Mode } from './modes.js'
import { PING_PONG_CPU, RECEIVER_CPU, SENDER_CPU } from './pinning.js'
import { cpuSeconds, RssSampler } from './process-usage.js'
import { profileDuring, profilerUnavailable } from './profile.js'
import { formatProfile, formatTable, METRICS, type BenchResult, type MetricKey, type ModeResult } from './report.js'
import { combineRounds } from './rounds.js'

const REPO = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url))
const TOPOLOGY = '2 nodes, veth underlay, 1 pod per node, pod n1 -> pod n2'
const USAGE = `usage: npm run bench -- [--quick] [--modes ${MODES.map((m) => m.name).join(',')}] [--seconds N] [--rounds N] [--profile] [--out DIR]`

interface Options {
  quick: boolean
  seconds: number
  rounds: number // every mode this many times, interleaved; medians reported (bench/rounds.ts)
  modes: Mode[]
  out: string
  profile: boolean // perf during an extra 4-stream test of each mode, in the first round (bench/profile.ts)
}

export function parseArgs (argv: string[]): Options {
  let quick = false
  let profile = false
  let seconds: number | undefined
  let rounds = 1
  let modes = MODES
  let out = join(REPO, 'bench/results')
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`)
      return v
    }
    if (a === '--quick') quick = true
    else if (a === '--profile') profile = true
    else if (a === '--seconds') {
      seconds = Number(value())
      if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`--seconds: "${argv[i]}" is not a whole number of seconds >= 1`)
    } else if (a === '--rounds') {
      rounds = Number(value())
      if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: "${argv[i]}" is not a whole number >= 1`)
    } else if (a === '--modes') modes = value().split(',').filter(Boolean).map(modeNamed)
    else if (a === '--out') out = resolve(value())
    else throw new Error(`unknown option "${a}"\n${USAGE}`)
  }
  return { quick, seconds: seconds ?? (quick ? 2 : 5), rounds, modes, out, profile }
}

// Every namespace of this run starts with this, so a sweep can find exactly ours.
const RUN_PREFIX = `flatnet-bench${process.pid}m`
let current: Cluster | undefined

async function measureMode (mode: Mode, index: number, seconds: number, profile: boolean): Promise<ModeResult> {
  const result: ModeResult = { mode: mode.name, description: mode.description, userspace: mode.userspace ?? false, ok: false, metrics: {}, errors: {}, ratios: {}, details: {} }
  const why = mode.unavailable?.()
  if (why) {
    result.error = `skipped: ${why}`
    return result
  }
  const started = Date.now()
  let sampler: RssSampler | undefined
  try {
    current = await Cluster.create({
      nodes: [mode.node, mode.node], podsPerNode: 1, underlay: 'veth', tag: `bench${process.pid}m${index}`,
    })
    const [from, to] = current.nodes.map((n) => n.pods[0])
    await waitReachable(from.ns, to.ip)
    const pids = current.nodes.map((n) => n.daemon?.pid).filter((p): p is number => p !== undefined)
    if (pids.length) sampler = new RssSampler(pids)

    const measure = async (keys: MetricKey[], fn: () => Promise<void>): Promise<void> => {
      try {
        await fn()
      } catch (err) {
        for (const k of keys) result.errors[k] = (err as Error).message
      }
    }
    await measure(['tcp1Gbps', 'cpuSecPerGbit'], async () => {
      const cpuBefore = pids.map(cpuSeconds)
      const tcp = await tcpThroughput(from, to, seconds, 1)
      result.metrics.tcp1Gbps = tcp.gbps
      result.details.tcp1 = tcp
      if (pids.length) {
        const cpu = pids.map(cpuSeconds).reduce((sum, v, i) => sum + v - cpuBefore[i], 0)
        result.metrics.cpuSecPerGbit = cpu / (tcp.bytes * 8 / 1e9)
        result.details.cpuSecondsTcp1 = cpu
      }
    })
    await measure(['tcp4Gbps'], async () => {
      const tcp = await tcpThroughput(from, to, seconds, 4)
      result.metrics.tcp4Gbps = tcp.gbps
      result.details.tcp4 = tcp
    })
    await measure(['udp64Kpps', 'udp64LossPct', 'udp64PodLossPct'], async () => {
      const udp = await udpSmallPackets(from, to, seconds)
      result.metrics.udp64Kpps = udp.pps / 1000
      result.metrics.udp64LossPct = udp.lossPct
      result.metrics.udp64PodLossPct = udp.podLossPct
      result.details.udp64 = udp
    })
    await measure(['rttP50Us', 'rttP99Us', 'rttSwitches'], async () => {
      const rtt = await roundTrip(from, to, seconds)
      result.metrics.rttP50Us = rtt.p50Us
      result.metrics.rttP99Us = rtt.p99Us
      result.metrics.rttSwitches = rtt.switchesPerRoundTrip
      result.details.rtt = rtt
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
    result.ok = METRICS.every((m) => (m.processOnly && !mode.userspace) || result.metrics[m.key] !== undefined)
  } catch (err) {
    result.error = (err as Error).message
  } finally {
    sampler?.stop()
    const cluster = current
    current = undefined
    await cluster?.destroy().catch((err: Error) => { result.error = `${result.error ?? ''} (teardown: ${err.message})` })
    sweep()
    result.details.wallSeconds = (Date.now() - started) / 1000
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
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE)
    return 0
  }
  let options: Options
  try {
    options = parseArgs(process.argv.slice(2))
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
  if (!options.modes.some((m) => m.name === BASELINE)) console.error(`note: ${BASELINE} not in --modes, so no ratios`)

  const rounds: ModeResult[][] = []
  for (let round = 0; round < options.rounds; round++) {
    const results: ModeResult[] = []
    for (const [i, mode] of options.modes.entries()) {
      process.stderr.write(`${options.rounds > 1 ? `round ${round + 1}/${options.rounds} ` : ''}${mode.name}: `)
      const r = await measureMode(mode, round * options.modes.length + i, options.seconds, options.profile && round === 0)
      process.stderr.write(`${r.ok ? 'done' : 'FAILED'} in ${r.details.wallSeconds} s${r.error ? ` (${r.error.split('\n')[0]})` : ''}\n`)
      results.push(r)
    }
    rounds.push(results)
  }
  const modes = combineRounds(rounds)
  const result: BenchResult = {
    version: 1,
    date: new Date().toISOString(),
    baseline: BASELINE,
    topology: TOPOLOGY,
    seconds: options.seconds,
    rounds: options.rounds,
    quick: options.quick,
    host: {
      cpus: cpus().length,
      kernel: release(),
      node: process.version,
      // New namespaces inherit the host's default, and it moves single-stream figures:
      // flatnet/kernel was 0.43x under bbr and 0.53x under cubic on the same machine.
      tcpCongestionControl: readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim(),
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

main().then((code) => { process.exitCode = code }, (err: Error) => {
  console.error(`bench: harness error: ${err.stack ?? err.message}`)
  sweep()
  process.exitCode = 1
})
