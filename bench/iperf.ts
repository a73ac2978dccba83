// iperf3 between two pods: server in the receiving pod for one test (`-s -1`),
// client in the sending pod, results from the client's `-J` JSON (which carries
// the receiver's side too).
import type { Pod } from '../src/lab/cluster.js'
import { stopProcess, type Namespace } from '../src/lab/netns.js'
import { udpCounters } from '../src/net/kernel-drops.js'
import { waitListening } from './listening.js'
import { onCpu, RECEIVER_CPU, SENDER_CPU } from './pinning.js'

const PORT = 5201

export interface TcpResult {
  gbps: number // receiver's goodput
  bytes: number // received
  retransmits: number
}

export interface UdpResult {
  pps: number // datagrams the receiving pod read per second
  sentPps: number
  /** Both of the datagrams sent, so the second is a part of the first. */
  lossPct: number // not read by the receiving pod, wherever they were lost
  podLossPct: number // delivered by the data plane but dropped at the pod's full socket
  sent: number
  read: number
  droppedAtPod: number // the pod's UDP RcvbufErrors during the test
  /** iperf3's own figure: gaps in the sequence numbers it read, which misses a lost tail. */
  iperf3LostPct: number
}

/** A receiver-side TCP throughput test with `streams` parallel connections; `pinned`:
 * sender and receiver on their CPUs (pinning.ts), else wherever the scheduler puts them. */
export async function tcpThroughput (from: Pod, to: Pod, seconds: number, streams: number, pinned = true): Promise<TcpResult> {
  const j = await iperf3(from, to, seconds, ['-P', String(streams)], pinned)
  const r = j.end?.sum_received
  if (!r || typeof r.bits_per_second !== 'number') throw new Error('iperf3: no sum_received in its JSON')
  return { gbps: r.bits_per_second / 1e9, bytes: r.bytes, retransmits: j.end?.sum_sent?.retransmits ?? 0 }
}

const UDP_PAYLOAD = 64

/** Small-packet rate: 64-byte UDP payloads sent as fast as iperf3 can (`-b 0`). */
export async function udpSmallPackets (from: Pod, to: Pod, seconds: number): Promise<UdpResult> {
  return await udpFlood(from, to, seconds, UDP_PAYLOAD)
}

export interface UdpBulkResult extends UdpResult {
  gbps: number // payload the receiving pod read
  payload: number // bytes per datagram
  bytes: number // payload read
}

/**
 * Bulk UDP: datagrams that fill the path's MTU (IPv4 and UDP headers aside), sent as
 * fast as iperf3 can. Unlike TCP no segmentation offload carries them: every datagram
 * crosses the data plane on its own, as an underlay frame of its full size.
 */
export async function udpMtuSized (from: Pod, to: Pod, seconds: number, mtu: number): Promise<UdpBulkResult> {
  const payload = mtu - 28
  const r = await udpFlood(from, to, seconds, payload)
  return { ...r, payload, bytes: r.read * payload, gbps: r.pps * payload * 8 / 1e9 }
}

/**
 * The MTU pod traffic to `ip` gets on the sending node: the route's own mtu, else its
 * device's (the TUN, the vxlan device, the tunnel, or the underlay for host routes),
 * and never more than the pod's interface. The lab's pods keep a 1500-byte eth0, so
 * the node's route decides, as the bridge plugin's `mtu` would in a cluster.
 */
export async function pathMtu (pod: Pod, node: Namespace, ip: string): Promise<number> {
  const mtuOf = async (ns: Namespace, dev: string): Promise<number> => Number((await ns.execAsync('cat', [`/sys/class/net/${dev}/mtu`])).trim())
  const route = await node.execAsync('ip', ['-o', 'route', 'get', ip])
  const dev = /\bdev (\S+)/.exec(route)?.[1]
  const own = /\bmtu (\d+)/.exec(route)?.[1]
  if (!dev) throw new Error(`${node.name}: no route to ${ip}: ${route.trim()}`)
  const mtu = Math.min(own ? Number(own) : await mtuOf(node, dev), await mtuOf(pod.ns, 'eth0'))
  if (!(mtu >= 576)) throw new Error(`${node.name}: the MTU towards ${ip} ("${mtu}") is not a number >= 576`)
  return mtu
}

async function udpFlood (from: Pod, to: Pod, seconds: number, payload: number): Promise<UdpResult> {
  // A flood loses packets in the data plane or, once delivered, at a receiver that cannot
  // keep up: the receiving pod's UDP receive-buffer errors tell the two apart.
  const before = await udpReceiveBufferErrors(to)
  const j = await iperf3(from, to, seconds, ['-u', '-l', String(payload), '-b', '0'])
  return udpLoss(j, await udpReceiveBufferErrors(to) - before, payload)
}

/**
 * Loss from one set of counts, all against the datagrams sent: what the receiver read
 * (its bytes over the payload size) and what the pod's socket dropped. iperf3's own
 * lost_packets counts gaps below the highest sequence number it read, so datagrams lost
 * at the end of the test (still queued in a daemon, or arriving once the receiver has
 * stopped reading) are in the socket's drops but not in its loss.
 */
export function udpLoss (j: IperfJson, droppedAtPod: number, payload = UDP_PAYLOAD): UdpResult {
  const r = j.end?.sum_received
  const s = j.end?.sum_sent
  if (!r || typeof r.bytes !== 'number' || !r.seconds) throw new Error('iperf3: no UDP sum_received in its JSON')
  if (!s || typeof s.packets !== 'number' || !s.packets) throw new Error('iperf3: no UDP sum_sent packets in its JSON')
  const read = Math.round(r.bytes / payload)
  return {
    pps: read / r.seconds,
    sentPps: s.packets / s.seconds,
    lossPct: 100 * (s.packets - read) / s.packets,
    podLossPct: 100 * droppedAtPod / s.packets,
    sent: s.packets,
    read,
    droppedAtPod,
    iperf3LostPct: r.lost_percent,
  }
}

/** RcvbufErrors of the pod's namespace: iperf3's is its only UDP socket. */
async function udpReceiveBufferErrors (pod: Pod): Promise<number> {
  return udpCounters(await pod.ns.execAsync('cat', ['/proc/net/snmp'])).RcvbufErrors ?? NaN
}

export interface IperfJson {
  error?: string
  end?: {
    sum_received?: { bits_per_second: number, bytes: number, packets: number, lost_packets: number, lost_percent: number, seconds: number }
    sum_sent?: { retransmits?: number, packets: number, seconds: number }
  }
}

async function iperf3 (from: Pod, to: Pod, seconds: number, args: string[], pinned = true): Promise<IperfJson> {
  const on = (cpu: number, cmd: string, args: string[]): [string, string[]] => pinned ? onCpu(cpu, cmd, args) : [cmd, args]
  const server = to.ns.spawn(...on(RECEIVER_CPU, 'iperf3', ['-s', '-1', '-p', String(PORT)]))
  try {
    await waitListening(to.ns, 'tcp', PORT)
    let stdout: string
    try {
      stdout = await from.ns.execAsync(...on(SENDER_CPU, 'iperf3', ['-c', to.ip, '-p', String(PORT), '-t', String(seconds), '-J', ...args]),
        (seconds + 20) * 1000)
    } catch (err) {
      // iperf3 -J reports its own errors in the JSON on stdout, and exits 1.
      const out = (err as { stdout?: string }).stdout
      const why = out ? parseJson(out).error : undefined
      throw new Error(`iperf3 ${args.join(' ')}: ${why ?? (err as Error).message}`)
    }
    const j = parseJson(stdout)
    if (j.error) throw new Error(`iperf3 ${args.join(' ')}: ${j.error}`)
    return j
  } finally {
    await stopProcess(server, 1000)
  }
}

function parseJson (text: string): IperfJson {
  try {
    return JSON.parse(text) as IperfJson
  } catch {
    return { error: `unparsable output: ${text.slice(0, 200)}` }
  }
}
