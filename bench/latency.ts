// Round-trip time between two pods: sockperf ping-pong over UDP (server in the
// receiving pod), or when sockperf fails, ping every 2 ms and its percentiles.
import type { Pod } from '../src/lab/cluster.js'
import { stopProcess } from '../src/lab/netns.js'
import { waitListening } from './listening.js'
import { onCpu, PING_PONG_CPU } from './pinning.js'
import { countingSwitches } from './proc-stat.js'

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
    return await sockperf(from, to, seconds, cpu)
  } catch (err) {
    const reason = (err as Error).message
    return { ...await ping(from, to, seconds, cpu), fallbackReason: reason }
  }
}

async function sockperf (from: Pod, to: Pod, seconds: number, cpu: number): Promise<RttResult> {
  const server = to.ns.spawn(...onCpu(cpu, 'sockperf', ['sr', '-i', to.ip, '-p', String(PORT)]))
  try {
    await waitListening(to.ns, 'udp', PORT)
    // --full-rtt: without it sockperf reports half the round trip.
    const [out, switches] = await countingSwitches(async () => await from.ns.execAsync(
      ...onCpu(cpu, 'sockperf', ['pp', '-i', to.ip, '-p', String(PORT), '-t', String(seconds), '--full-rtt']), (seconds + 15) * 1000))
    // eslint-disable-next-line no-control-regex
    const text = out.replace(/\x1b\[[0-9;]*m/g, '')
    const p = (q: string): number => {
      const m = new RegExp(`percentile ${q} =\\s*([0-9.]+)`).exec(text)
      if (!m) throw new Error(`sockperf: no ${q} percentile in its output`)
      return Number(m[1])
    }
    // Warm-up included: the switches were counted over the whole run too.
    const total = /\[Total Run\].*ReceivedMessages=(\d+)/.exec(text)
    if (!total) throw new Error('sockperf: no [Total Run] ReceivedMessages in its output')
    const roundTrips = Number(total[1])
    return { p50Us: p('50.000'), p99Us: p('99.000'), roundTrips, switchesPerRoundTrip: switches / roundTrips, tool: 'sockperf' }
  } finally {
    await stopProcess(server, 1000)
  }
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
