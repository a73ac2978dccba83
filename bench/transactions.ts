// Request/response and connection-rate tests between two pods, as netperf's TCP_RR,
// UDP_RR and TCP_CRR: one transaction in flight, the next sent when the reply is in.
// RR is a sockperf ping-pong (bench/latency.ts); CRR is the project's own generator
// (bench/crr.ts). Both ends run on the ping-pong CPU, as the RTT test's do. CPU cost is
// netperf's service demand: the machine's busy CPU time (/proc/stat) per transaction.
import { fileURLToPath } from 'node:url'
import type { Pod } from '../src/lab/cluster.js'
import { stopProcess } from '../src/lab/netns.js'
import type { CrrReport } from './crr.js'
import { pingPong } from './latency.js'
import { waitListening } from './listening.js'
import { onCpu, PING_PONG_CPU } from './pinning.js'

// The RTT test uses 11111; a port per test, so no test meets the last one's sockets.
const RR_PORT = 11112
const CRR_PORT = 11113
const CRR_SCRIPT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? './crr.js' : '../dist/bench/crr.js', import.meta.url))

export interface RrResult {
  transactionsPerSecond: number
  p50Us: number
  p90Us: number
  p99Us: number
  cpuUsPerTransaction: number
  transactions: number // warm-up included, as the CPU time is
  busyCpuSeconds: number
  switchesPerTransaction: number
}

export async function requestResponse (from: Pod, to: Pod, proto: 'tcp' | 'udp', size: number, seconds: number): Promise<RrResult> {
  const r = await pingPong(from, to, { seconds, cpu: PING_PONG_CPU, proto, port: RR_PORT, size })
  return {
    transactionsPerSecond: r.perSecond,
    p50Us: r.p50Us,
    p90Us: r.p90Us,
    p99Us: r.p99Us,
    cpuUsPerTransaction: rrCpuUs(r.busyCpuSeconds, r.roundTrips),
    transactions: r.roundTrips,
    busyCpuSeconds: r.busyCpuSeconds,
    switchesPerTransaction: r.switches / r.roundTrips,
  }
}

/** Microseconds of busy CPU (all CPUs) per transaction. */
export function rrCpuUs (busyCpuSeconds: number, transactions: number): number {
  if (!(transactions > 0)) throw new Error('no transaction completed')
  return 1e6 * busyCpuSeconds / transactions
}

export interface CrrResult extends CrrReport {
  connectionsPerSecond: number
  cpuUsPerConnection: number
}

/** TCP_CRR for `seconds`: connections per second and the CPU each cost. */
export async function connectRate (from: Pod, to: Pod, seconds: number): Promise<CrrResult> {
  // One connection at a time closed by the client leaves one TIME_WAIT socket each:
  // tens of thousands in a test, past the default ephemeral range (28,232 ports).
  // Reusing them for new outgoing connections (RFC 6191, with timestamps) and a wider
  // range keep the client from running out; both are the pod namespace's own.
  await from.ns.execAsync('sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65535'])
  const server = to.ns.spawn(...node(['server', to.ip, String(CRR_PORT)]))
  try {
    await waitListening(to.ns, 'tcp', CRR_PORT)
    const out = await from.ns.execAsync(...node(['client', to.ip, String(CRR_PORT), String(seconds)]), (seconds + 15) * 1000)
    return crrResult(JSON.parse(out) as CrrReport)
  } finally {
    await stopProcess(server, 1000)
  }
}

/** The figures of one client report; a run with failed connections is an error, not a slower figure. */
export function crrResult (r: CrrReport): CrrResult {
  if (r.errors) throw new Error(`TCP_CRR: ${r.errors} connection(s) failed (first: ${r.firstError ?? 'unknown'}), ${r.connections} completed`)
  if (!(r.connections > 0) || !(r.seconds > 0)) throw new Error('TCP_CRR: no connection completed')
  return { ...r, connectionsPerSecond: r.connections / r.seconds, cpuUsPerConnection: rrCpuUs(r.busyCpuSeconds, r.connections) }
}

/** The generator under Node, pinned; without NODE_OPTIONS, which a test runner may have set for its own children. */
function node (args: string[]): [string, string[]] {
  return onCpu(PING_PONG_CPU, 'env', ['-u', 'NODE_OPTIONS', process.execPath, CRR_SCRIPT, ...args])
}
