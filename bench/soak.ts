// Soak: two flatnet daemons under iperf3 load for a while, flows starting and
// stopping in both directions, then many peers churning (join/leave every 100 ms
// through SIGHUP reloads) while a flow to a stable peer runs. Reports what a leak
// or a lost packet would show: RSS and fd growth of each daemon, and every drop
// accounted for (daemon counters by reason, kernel socket and link drops).
//   npm run soak [-- --seconds 60 --churn-seconds 30]
// The 10-second version runs in CI as test/integration/soak.test.ts.
import { randomInt } from 'node:crypto'
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Cluster, type LabNode, type Pod } from '../src/lab/cluster.js'
import { labUnavailable, reapOnSignals, stopProcess } from '../src/lab/netns.js'
import { queryControl } from '../src/control-socket.js'
import { formatMac, macFromName } from '../src/net/mac.js'
import { udpCounters } from '../src/net/kernel-drops.js'
import { PROBE_DEFAULTS } from '../src/reach/prober.js'
import { waitListening } from './listening.js'

export interface SoakOptions {
  seconds: number // load phase
  churnSeconds: number // peer churn phase (0: skip)
  churnPeers?: number // fake peers toggled in and out, default 20
  log?: (line: string) => void
}

export interface DaemonFigures {
  node: string
  rssStartMB: number // after a warm-up flow
  rssEndMB: number
  rssGrowthMB: number
  rssSamplesMB: number[] // every 2 s: growth that levels off is heap sizing, steady growth a leak
  fdStart: number
  fdEnd: number
}

export interface DirectionAccount {
  from: string
  to: string
  sent: number // datagrams the sender's daemon handed to the kernel
  admitted: number // datagrams the receiver's daemon accepted
  receiverDrops: Record<string, number> // the receiver daemon's drop counters, by reason
  kernelUdpErrors: number // receiver's UDP RcvbufErrors + InErrors (per skb, a GRO train counts once)
  linkDrops: number // sender's underlay tx_dropped + receiver's rx_dropped
  tunQueueDrops: number // sender's TUN tx_dropped: packets the kernel could not queue for the daemon to read
  unexplained: number // sent - admitted - receiver drops, not covered by the kernel counters
}

export interface SoakResult {
  seconds: number
  flows: number
  gbytes: number
  retransmits: number
  daemons: DaemonFigures[]
  accounts: DirectionAccount[]
  senderDrops: Record<string, Record<string, number>> // transmit-side counters per node
  churn?: { seconds: number, reloads: number, peersMax: number, flowGbytes: number, flowStalls: number, pingSent: number, pingReceived: number, daemonAlive: boolean, rssGrowthMB: number, rssSamplesMB: number[], heapUsedMB: [number, number], fdGrowth: number }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function rssKB (pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
}

function fdCount (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** The fewest descriptors in looks 100 ms apart for longer than a peer probe may take: a leak
 *  stays, while a child process's pipes (an nft or ip run), a closing connection and the socket of
 *  a probe to a peer just removed (held until its timeout) come and go. */
async function steadyFdCount (pid: number): Promise<number> {
  let least = fdCount(pid)
  for (let i = 0; i < (PROBE_DEFAULTS.timeoutMs + 500) / 100; i++) {
    await sleep(100)
    least = Math.min(least, fdCount(pid))
  }
  return least
}

const RX_REASONS = ['too_short', 'bad_flags', 'wrong_vni', 'unknown_peer', 'wrong_dst_mac', 'not_ip', 'bad_inner_ip',
  'spoofed_source', 'foreign_destination', 'bad_checksum', 'tun_write']

interface Stats { stats: { tx: { packets: number }, rx: { packets: number }, drops: Record<string, number> } }

async function statsOf (cluster: Cluster, n: LabNode): Promise<Stats['stats']> {
  return ((await queryControl(join(cluster.dir, `${n.name}.sock`), 'stats')) as unknown as Stats).stats
}

/** The kernel's UDP error counters in a namespace (/proc/net/snmp is per namespace). */
function udpErrors (n: LabNode): number {
  const udp = udpCounters(n.ns.exec('cat', '/proc/net/snmp'))
  return (udp.RcvbufErrors ?? 0) + (udp.InErrors ?? 0)
}

function linkStat (n: LabNode, dir: 'rx_dropped' | 'tx_dropped', dev = 'eth0'): number {
  return Number(n.ns.exec('cat', `/sys/class/net/${dev}/statistics/${dir}`).trim())
}

interface IperfJson { end?: { sum_received?: { bytes: number }, sum_sent?: { retransmits?: number } }, intervals?: Array<{ sum: { bytes: number } }> }

async function iperfClient (from: Pod, to: Pod, port: number, seconds: number, args: string[]): Promise<IperfJson> {
  let out: string
  try {
    out = await from.ns.execAsync('iperf3', ['-c', to.ip, '-p', String(port), '-t', String(seconds), '-J', ...args], (seconds + 20) * 1000)
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? '{}'
  }
  return JSON.parse(out || '{}') as IperfJson
}

/** Back-to-back iperf3 runs of 1-3 s, 1-4 streams, sometimes reversed, until the deadline. */
async function flowLoop (from: Pod, to: Pod, port: number, deadline: number, totals: { flows: number, bytes: number, retransmits: number }): Promise<void> {
  while (Date.now() + 1500 < deadline) {
    const seconds = Math.max(1, Math.min(randomInt(1, 4), Math.floor((deadline - Date.now()) / 1000)))
    const args = ['-P', String(randomInt(1, 5)), ...(randomInt(2) ? ['-R'] : [])]
    const j = await iperfClient(from, to, port, seconds, args)
    totals.flows++
    totals.bytes += j.end?.sum_received?.bytes ?? 0
    totals.retransmits += j.end?.sum_sent?.retransmits ?? 0
    await sleep(randomInt(50, 300)) // gaps: flows stop, idle, start again
  }
}

function daemonPid (n: LabNode): number {
  const pid = n.daemon?.pid
  if (!pid || n.daemon?.exitCode !== null) throw new Error(`${n.name}: daemon not running`)
  return pid
}

export async function soakLoad (cluster: Cluster, seconds: number, log: (l: string) => void): Promise<Omit<SoakResult, 'churn'>> {
  const [n1, n2] = cluster.nodes
  const [p1, p2] = [n1.pods[0], n2.pods[0]]
  p2.ns.spawn('iperf3', ['-s', '-p', '5301'])
  p1.ns.spawn('iperf3', ['-s', '-p', '5302'])
  await waitListening(p2.ns, 'tcp', 5301)
  await waitListening(p1.ns, 'tcp', 5302)
  // Warm-up: buffers allocated and JIT settled before the baseline is taken.
  await iperfClient(p1, p2, 5301, 2, ['-P', '2'])
  await iperfClient(p2, p1, 5302, 1, ['-P', '2'])
  await Promise.all([n1, n2].map((n) => statsOf(cluster, n))) // the same control connections as at the end
  await sleep(500)
  const pids = [n1, n2].map(daemonPid)
  const start = await Promise.all(pids.map(async (pid) => ({ rss: rssKB(pid), fds: await steadyFdCount(pid) })))
  const before = await Promise.all([n1, n2].map((n) => statsOf(cluster, n)))
  const beforeKernel = { udp: [n1, n2].map(udpErrors), rx: [n1, n2].map((n) => linkStat(n, 'rx_dropped')), tx: [n1, n2].map((n) => linkStat(n, 'tx_dropped')), tun: [n1, n2].map((n) => linkStat(n, 'tx_dropped', 'flatnet0')) }
  log(`load: ${seconds} s of iperf3 flows starting and stopping, both directions`)
  const totals = { flows: 0, bytes: 0, retransmits: 0 }
  const deadline = Date.now() + seconds * 1000
  const samples: number[][] = [[], []]
  const sampler = setInterval(() => pids.forEach((pid, i) => samples[i].push(Math.round(rssKB(pid) / 102.4) / 10)), 2000)
  await Promise.all([flowLoop(p1, p2, 5301, deadline, totals), flowLoop(p2, p1, 5302, deadline, totals)])
  clearInterval(sampler)
  await sleep(1000) // in-flight packets land, counters settle
  const after = await Promise.all([n1, n2].map((n) => statsOf(cluster, n)))
  await sleep(500) // the stats connections close on the daemon side too
  const afterKernel = { udp: [n1, n2].map(udpErrors), rx: [n1, n2].map((n) => linkStat(n, 'rx_dropped')), tx: [n1, n2].map((n) => linkStat(n, 'tx_dropped')), tun: [n1, n2].map((n) => linkStat(n, 'tx_dropped', 'flatnet0')) }
  const fdEnds = await Promise.all(pids.map(steadyFdCount))
  const daemons = [n1, n2].map((n, i): DaemonFigures => {
    const rssEnd = rssKB(pids[i])
    return {
      node: n.name,
      rssStartMB: start[i].rss / 1024,
      rssEndMB: rssEnd / 1024,
      rssGrowthMB: (rssEnd - start[i].rss) / 1024,
      rssSamplesMB: samples[i],
      fdStart: start[i].fds,
      fdEnd: fdEnds[i],
    }
  })
  const delta = (i: number, k: string): number => (after[i].drops[k] ?? 0) - (before[i].drops[k] ?? 0)
  const accounts = [[0, 1], [1, 0]].map(([s, r]): DirectionAccount => {
    const sent = after[s].tx.packets - before[s].tx.packets
    const admitted = after[r].rx.packets - before[r].rx.packets
    const receiverDrops = Object.fromEntries(RX_REASONS.map((k) => [k, delta(r, k)]).filter(([, v]) => v !== 0))
    // tun_write and bad_checksum are counted after admission; the rest instead of it.
    const beforeAdmission = Object.entries(receiverDrops).filter(([k]) => k !== 'tun_write' && k !== 'bad_checksum').reduce((a, [, v]) => a + (v as number), 0)
    const kernelUdpErrors = afterKernel.udp[r] - beforeKernel.udp[r]
    const linkDrops = (afterKernel.tx[s] - beforeKernel.tx[s]) + (afterKernel.rx[r] - beforeKernel.rx[r])
    const missing = sent - admitted - beforeAdmission
    return {
      from: cluster.nodes[s].name,
      to: cluster.nodes[r].name,
      sent,
      admitted,
      receiverDrops,
      kernelUdpErrors,
      linkDrops,
      tunQueueDrops: afterKernel.tun[s] - beforeKernel.tun[s],
      // A kernel-counted skb may be a GRO train of up to 64 datagrams.
      unexplained: Math.max(0, missing - 64 * kernelUdpErrors - linkDrops),
    }
  })
  const senderDrops = Object.fromEntries([n1, n2].map((n, i) => [n.name, Object.fromEntries(
    ['no_route', 'bad_tun_packet', 'send_error'].map((k) => [k, delta(i, k)]).filter(([, v]) => v !== 0))]))
  return { seconds, flows: totals.flows, gbytes: totals.bytes / 1e9, retransmits: totals.retransmits, daemons, accounts, senderDrops }
}

/** Fake peers join and leave n1's static peers every 100 ms (file rewrite + SIGHUP) while p1 -> p2 carries a flow. */
export async function soakChurn (cluster: Cluster, seconds: number, peers: number, log: (l: string) => void): Promise<NonNullable<SoakResult['churn']>> {
  const [n1, n2] = cluster.nodes
  const [p1, p2] = [n1.pods[0], n2.pods[0]]
  const file = n1.configFile as string
  const base = JSON.parse(readFileSync(file, 'utf8')) as { peers: unknown[] }
  const stable = base.peers
  const fake = Array.from({ length: peers }, (_, i) => ({
    nodeName: `churn-${i}`, podCIDR: `10.244.${100 + i}.0/24`, address: `192.168.77.${100 + i}`, vtepMAC: formatMac(macFromName(`churn-${i}`)),
  }))
  const pid = daemonPid(n1)
  const logStart = cluster.log(n1).length
  await sleep(300)
  const heap = async (): Promise<number> => Math.round(((await queryControl(join(cluster.dir, 'n1.sock'), 'stats')) as { heapUsed: number }).heapUsed / 1e5) / 10
  const heap0 = await heap()
  await sleep(200)
  const rss0 = rssKB(pid)
  const fd0 = await steadyFdCount(pid)
  const rssSamplesMB: number[] = []
  const sampler = setInterval(() => rssSamplesMB.push(Math.round(rssKB(pid) / 102.4) / 10), 2000)
  log(`churn: ${fake.length} peers joining and leaving every 100 ms for ${seconds} s, a flow n1 -> n2 meanwhile`)
  const flow = iperfClient(p1, p2, 5301, seconds, ['-i', '1'])
  const pings = p1.ns.execAsync('ping', ['-i', '0.1', '-W', '1', '-w', String(seconds), '-q', p2.ip], (seconds + 10) * 1000)
    .catch((err: { stdout?: string }) => err.stdout ?? '')
  const deadline = Date.now() + seconds * 1000
  let peersMax = 0
  while (Date.now() < deadline) {
    const present = fake.filter(() => randomInt(2) === 1)
    peersMax = Math.max(peersMax, present.length)
    const tmp = `${file}.tmp`
    writeFileSync(tmp, JSON.stringify({ ...base, peers: [...stable, ...present] }))
    renameSync(tmp, file) // whole files only: a reload never sees half of one
    n1.daemon?.kill('SIGHUP')
    await sleep(100)
  }
  const j = await flow
  const pingOut = await pings
  clearInterval(sampler)
  const heap1 = await heap()
  writeFileSync(file, JSON.stringify(base)) // back to the stable peers
  n1.daemon?.kill('SIGHUP')
  await sleep(500)
  const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut)
  const alive = n1.daemon?.exitCode === null && n1.daemon?.signalCode === null
  const fd1 = alive ? await steadyFdCount(pid) : NaN
  const reloads = cluster.log(n1).slice(logStart).split('\n').filter((l) => l.includes('"msg":"peers reloaded"')).length
  return {
    seconds,
    reloads,
    peersMax,
    flowGbytes: (j.end?.sum_received?.bytes ?? 0) / 1e9,
    flowStalls: (j.intervals ?? []).filter((iv) => iv.sum.bytes === 0).length, // 1-s intervals with nothing through
    pingSent: Number(m?.[1] ?? 0),
    pingReceived: Number(m?.[2] ?? 0),
    daemonAlive: alive,
    rssGrowthMB: alive ? (rssKB(pid) - rss0) / 1024 : NaN,
    rssSamplesMB,
    heapUsedMB: [heap0, heap1],
    fdGrowth: alive ? fd1 - fd0 : NaN,
  }
}

export async function runSoak (o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => console.log(l))
  const cluster = await Cluster.create({ nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }], tag: `soak${randomInt(1000, 9999)}` })
  try {
    const result: SoakResult = await soakLoad(cluster, o.seconds, log)
    if (o.churnSeconds > 0) result.churn = await soakChurn(cluster, o.churnSeconds, o.churnPeers ?? 20, log)
    for (const n of cluster.nodes) if (n.daemon) await stopProcess(n.daemon)
    return result
  } finally {
    await cluster.destroy()
  }
}

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const why = labUnavailable()
  if (why) {
    console.error(`soak: ${why}`)
    process.exit(2)
  }
  reapOnSignals()
  const result = await runSoak({ seconds: arg('seconds', 60), churnSeconds: arg('churn-seconds', 30), churnPeers: arg('churn-peers', 20) })
  console.log(JSON.stringify(result, null, 2))
  const bad = [
    ...result.daemons.filter((d) => d.rssGrowthMB >= 5).map((d) => `${d.node}: RSS grew ${d.rssGrowthMB.toFixed(1)} MB`),
    ...result.daemons.filter((d) => d.fdEnd > d.fdStart).map((d) => `${d.node}: fds ${d.fdStart} -> ${d.fdEnd}`),
    ...result.accounts.filter((a) => a.unexplained > 0).map((a) => `${a.from} -> ${a.to}: ${a.unexplained} datagrams lost without a counter`),
    ...(result.churn && (!result.churn.daemonAlive || result.churn.flowGbytes === 0) ? ['churn: daemon died or the flow stopped'] : []),
  ]
  console.log(bad.length ? `soak FAILED: ${bad.join('; ')}` : 'soak passed')
  process.exit(bad.length ? 1 : 0)
}
