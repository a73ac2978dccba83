// Round-trip time between two pods: sockperf ping-pong (server in the receiving pod,
// client in the sender's), or when sockperf fails, ping every 2 ms and its percentiles.
// The same ping-pong, over TCP or UDP at a chosen message size, is the bench's
// request/response test (bench/transactions.ts).
import type { Pod } from '../src/lab/cluster.js'
import { stopProcess } from '../src/lab/netns.js'
import { waitListening } from './listening.js'
import { onCpu, PING_PONG_CPU } from './pinning.js'
import { busyCpuSeconds, contextSwitches, countingSwitches } from './proc-stat.js'

const PORT = 11111

export interface RttResult {
  p50Us: number
  p99Us: number
  roundTrips: number
  /**
   * The machine's context switches during the test per round trip (a CPU changing
   * thread, to or from idle included): kernel VXLAN's round trip has two, client to
   * server and back; every thread that carries the packet on the way adds its own.
   */
  switchesPerRoundTrip: number
  tool: 'sockperf' | 'ping'
  fallbackReason?: string
}

/** Both ends run on cpu (the bench's PING_PONG_CPU unless a test picks another). */
export async function roundTrip (from: Pod, to: Pod, seconds: number, cpu = PING_PONG_CPU): Promise<RttResult> {
  try {
    const pp = await pingPong(from, to, { seconds, cpu, proto: 'udp', port: PORT })
    return { p50Us: pp.p50Us, p99Us: pp.p99Us, roundTrips: pp.roundTrips, switchesPerRoundTrip: pp.switches / pp.roundTrips, tool: 'sockperf' }
  } catch (err) {
    const reason = (err as Error).message
    return { ...await ping(from, to, seconds, cpu), fallbackReason: reason }
  }
}

export interface PingPongOptions {
  seconds: number
  cpu: number
  proto: 'tcp' | 'udp'
  port: number
  /** Bytes per message, each way; sockperf's default (and least) is 14, its own header. */
  size?: number
}

export interface PingPongResult extends SockperfFigures {
  /** The machine's context switches and busy CPU seconds over the whole run, warm-up included, as roundTrips is. */
  switches: number
  busyCpuSeconds: number
}

/**
 * One back-to-back ping-pong: a message, its echo, the next (sockperf's ping-pong
 * sends at the rate the echoes come back), as netperf's TCP_RR and UDP_RR do.
 */
export async function pingPong (from: Pod, to: Pod, o: PingPongOptions): Promise<PingPongResult> {
  const tcp = o.proto === 'tcp' ? ['--tcp'] : []
  const size = o.size === undefined ? [] : ['-m', String(o.size)]
  const server = to.ns.spawn(...onCpu(o.cpu, 'sockperf', ['sr', ...tcp, '-i', to.ip, '-p', String(o.port)]))
  try {
    await waitListening(to.ns, o.proto, o.port)
    const switchesBefore = contextSwitches()
    const busyBefore = busyCpuSeconds()
    // --full-rtt: without it sockperf reports half the round trip.
    const out = await from.ns.execAsync(...onCpu(o.cpu, 'sockperf',
      ['pp', ...tcp, ...size, '-i', to.ip, '-p', String(o.port), '-t', String(o.seconds), '--full-rtt']), (o.seconds + 15) * 1000)
    const busy = busyCpuSeconds() - busyBefore
    return { ...parseSockperf(out), switches: contextSwitches() - switchesBefore, busyCpuSeconds: busy }
  } finally {
    await stopProcess(server, 1000)
  }
}

export interface SockperfFigures {
  p50Us: number
  p90Us: number
  p99Us: number
  /** Round trips of the whole run, warm-up included. */
  roundTrips: number
  /** Round trips per second after the warm-up ("[Valid Duration]"). */
  perSecond: number
}

/** The figures of a `sockperf ping-pong --full-rtt` report. */
export function parseSockperf (out: string): SockperfFigures {
  // eslint-disable-next-line no-control-regex
  const text = out.replace(/\x1b\[[0-9;]*m/g, '')
  const p = (q: string): number => {
    const m = new RegExp(`percentile ${q} =\\s*([0-9.]+)`).exec(text)
    if (!m) throw new Error(`sockperf: no ${q} percentile in its output`)
    return Number(m[1])
  }
  const total = /\[Total Run\].*ReceivedMessages=(\d+)/.exec(text)
  if (!total) throw new Error('sockperf: no [Total Run] ReceivedMessages in its output')
  const valid = /\[Valid Duration\] RunTime=([0-9.]+) sec;.*ReceivedMessages=(\d+)/.exec(text)
  if (!valid || !(Number(valid[1]) > 0)) throw new Error('sockperf: no [Valid Duration] RunTime and ReceivedMessages in its output')
  return { p50Us: p('50.000'), p90Us: p('90.000'), p99Us: p('99.000'), roundTrips: Number(total[1]), perSecond: Number(valid[2]) / Number(valid[1]) }
}

async function ping (from: Pod, to: Pod, seconds: number, cpu: number): Promise<RttResult> {
  const count = Math.max(100, seconds * 500)
  const [out, switches] = await countingSwitches(async () => await from.ns.execAsync(
    ...onCpu(cpu, 'ping', ['-n', '-i', '0.002', '-c', String(count), '-w', String(seconds + 5), to.ip]), (seconds + 15) * 1000))
  const times = [...out.matchAll(/time=([0-9.]+) ms/g)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b)
  if (times.length === 0) throw new Error(`ping ${to.ip}: no replies`)
  // ping sleeps between requests, which adds its own switches to every mode alike.
  return { p50Us: percentile(times, 50), p99Us: percentile(times, 99), roundTrips: times.length, switchesPerRoundTrip: switches / times.length, tool: 'ping' }
}

/** Nearest-rank percentile of sorted values. */
export function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]
}
