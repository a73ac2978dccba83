// The node's HTTP endpoint as the kubelet's probes and Prometheus see it, fetched
// from inside the node's namespace: /healthz and /readyz answer 200 once the daemon
// is ready, /readyz turns 503 (saying why) when the cluster route goes and back
// when the healer restores it, and /metrics carries per-peer and per-reason series after traffic,
// and what the kernel dropped around a stalled daemon.
import t from 'tap'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { queryControl } from '../../src/control-socket.js'
import type { LabNode, Pod } from '../../src/lab/cluster.js'
import { readLog } from '../../src/lab/netns.js'
import { until } from '../../src/lab/until.js'
import { socketDrops } from '../../src/net/kernel-drops.js'
import { labTools, ping, withCluster } from '../lib/lab.js'
import { healthGet, sample } from '../lib/health.js'

labTools('ping')

const PORT = 9472 // the default healthPort, as the DaemonSet's probes expect
const SEND_UDP = fileURLToPath(new URL('../fixtures/send-udp.mjs', import.meta.url))

const get = async (n: LabNode, path: string): Promise<{ status: number, body: string }> => await healthGet(n, path, PORT)

t.test('healthz, readyz and metrics on a 3-node cluster', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes

  t.same(await get(n1, '/healthz'), { status: 200, body: 'ok\n' }, '/healthz 200 once ready')
  t.same(await get(n1, '/readyz'), { status: 200, body: 'ok\n' }, '/readyz 200 once ready')
  t.equal((await get(n1, '/nope')).status, 404, 'unknown path 404')

  // Not ready without the cluster route, until the healer (src/heal.ts, every 250 ms) puts it back:
  // delete it and poll /readyz from one script, so the window is not missed.
  const watch = `(async () => { await fetch('http://127.0.0.1:${PORT}/readyz') // warm: the first fetch is slow
      require('child_process').execFileSync('ip', ['route', 'del', '10.244.0.0/16', 'dev', 'flatnet0'])
      const seen = []; const t0 = Date.now()
      while (Date.now() - t0 < 3000) {
        // The route only comes back: metrics read before a 503 saw it gone too, and
        // metrics read after a 200 see it back (one read could fall either side).
        const metric = async () => Number(/^flatnet_ready (\\d)/m.exec(await (await fetch('http://127.0.0.1:${PORT}/metrics')).text())?.[1])
        const before = await metric()
        const r = await fetch('http://127.0.0.1:${PORT}/readyz'); const body = await r.text()
        const ready = r.status === 503 ? before : await metric()
        if (seen.at(-1)?.status !== r.status) seen.push({ status: r.status, body, ready })
        if (r.status === 200 && seen.length > 1) break
      }
      process.stdout.write(JSON.stringify(seen)) })()`
  let seen: Array<{ status: number, body: string, ready: number }> = []
  // The healer may run in the few ms between the delete and the first fetch: try again then.
  for (let attempt = 0; attempt < 5 && seen[0]?.status !== 503; attempt++) {
    seen = JSON.parse(await n1.ns.execAsync(process.execPath, ['-e', watch], 10_000))
  }
  t.equal(seen[0]?.status, 503, '/readyz 503 without the cluster route')
  t.match(seen[0]?.body, 'no route for 10.244.0.0/16 via flatnet0', '/readyz says why')
  t.equal(seen[0]?.ready, 0, 'flatnet_ready 0 meanwhile')
  t.equal(seen.at(-1)?.status, 200, '/readyz 200 again once the route is healed')
  t.equal(seen.at(-1)?.ready, 1, 'flatnet_ready 1 again')
  t.equal((await get(n1, '/healthz')).status, 200, '/healthz 200 throughout: alive')

  // Traffic to every peer, one packet to nowhere (no_route) and one malformed datagram from a peer (bad_flags).
  for (const p of cluster.nodes.slice(1)) t.ok(await ping(n1.pods[0], p.pods[0].ip, 3), `n1 pod -> ${p.name} pod`)
  await ping(n1.pods[0], '10.244.99.1', 1)
  await n2.ns.execAsync(process.execPath, [SEND_UDP, n2.underlayIP, n1.underlayIP, '8472', '00'.repeat(64)])

  const metrics = await get(n1, '/metrics')
  t.equal(metrics.status, 200, '/metrics 200')
  const m = metrics.body
  for (const name of ['flatnet_packets_total', 'flatnet_bytes_total', 'flatnet_coalesced_segments_total', 'flatnet_gso_joined_packets_total', 'flatnet_drops_total',
    'flatnet_peer_packets_total', 'flatnet_peer_bytes_total', 'flatnet_offload_enabled', 'flatnet_dataplane_info', 'flatnet_peers', 'flatnet_source_up', 'flatnet_ready']) {
    t.match(m, new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'), `${name} exported`)
  }
  for (const p of ['n2', 'n3']) {
    for (const direction of ['tx', 'rx']) {
      t.ok((sample(m, 'flatnet_peer_packets_total', { peer: p, direction }) ?? 0) >= 3, `flatnet_peer_packets_total{peer="${p}",direction="${direction}"} >= 3`)
      t.ok((sample(m, 'flatnet_peer_bytes_total', { peer: p, direction }) ?? 0) >= 3 * 84, `flatnet_peer_bytes_total{peer="${p}",direction="${direction}"} >= 3 pings`)
    }
  }
  t.ok((sample(m, 'flatnet_packets_total', { direction: 'tx' }) ?? 0) >= 6, 'flatnet_packets_total{direction="tx"}')
  t.ok((sample(m, 'flatnet_drops_total', { reason: 'no_route' }) ?? 0) >= 1, 'flatnet_drops_total{reason="no_route"} counts the packet to nowhere')
  t.equal(sample(m, 'flatnet_drops_total', { reason: 'bad_flags' }), 1, 'flatnet_drops_total{reason="bad_flags"} counts the malformed datagram')
  t.equal(sample(m, 'flatnet_drops_total', { reason: 'spoofed_source' }), 0, 'every reason is exported, zero included')
  t.equal(sample(m, 'flatnet_peers'), 2, 'flatnet_peers 2')
  t.equal(sample(m, 'flatnet_ready'), 1, 'flatnet_ready 1')
  t.equal(sample(m, 'flatnet_source_up', { source: 'static' }), 1, 'flatnet_source_up{source="static"} 1')
  t.ok(sample(m, 'flatnet_offload_enabled', { feature: 'tun_tso' }) !== undefined, 'flatnet_offload_enabled{feature="tun_tso"}')
  const perCpu = availableParallelism() > 1 // the default, workers auto, as root
  const layout = perCpu ? { workers: 'per-cpu', queues: String(availableParallelism()), socket_steering: 'flow' } : { workers: 'pipeline', queues: '1', socket_steering: 'none' }
  t.equal(sample(m, 'flatnet_dataplane_info', layout), 1, `flatnet_dataplane_info{workers="${layout.workers}",queues="${layout.queues}",socket_steering="${layout.socket_steering}"} 1`)

  // Stopped: the port closes with the daemon; restarted: ready again.
  await cluster.stopDaemon(n1)
  t.equal((await get(n1, '/readyz')).status, 0, 'no answer once stopped')
  await cluster.startDaemon(n1)
  t.equal((await get(n1, '/readyz')).status, 200, '/readyz 200 after restart')
})

/** 64-byte UDP datagrams from `from` to `to` (a closed port) as fast as node sends them, for `ms`; returns how many. */
async function flood (from: Pod, to: string, ms: number): Promise<number> {
  const script = `const s = require('dgram').createSocket('udp4'); const b = Buffer.alloc(64); const end = Date.now() + ${ms}; let n = 0
    const burst = () => { for (let i = 0; i < 64; i++) s.send(b, 9, '${to}', () => {}); n += 64
      if (Date.now() < end) setImmediate(burst); else setTimeout(() => { s.close(); process.stdout.write(String(n)) }, 100) }
    s.bind(0, burst)`
  return Number(await from.ns.execAsync(process.execPath, ['-e', script], ms + 10_000))
}

t.test('kernel drops: a stalled daemon\'s TUN queue and underlay sockets overflow; /metrics and stats count them', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const kernelDrops = async (n: LabNode, where: string): Promise<number | undefined> =>
    sample((await get(n, '/metrics')).body, 'flatnet_kernel_drops_total', { where })
  /** Runs fn with n's daemon stopped (SIGSTOP: its workers read nothing), as a daemon starved of CPU would be. */
  const stalled = async (n: LabNode, fn: () => Promise<number>): Promise<number> => {
    const pid = n.daemon?.pid as number
    process.kill(pid, 'SIGSTOP')
    try { return await fn() } finally { process.kill(pid, 'SIGCONT') }
  }
  for (const where of ['tun_queue', 'tun_write', 'underlay_socket']) t.equal(await kernelDrops(n1, where), 0, `${where}: 0 at start`)

  // n1 stalled: what its pod sends piles up in n1's TUN queue (1,000 packets) and the rest is dropped there.
  const sent = await stalled(n1, async () => await flood(n1.pods[0], n2.pods[0].ip, 300))
  const queue = await kernelDrops(n1, 'tun_queue') ?? 0
  t.ok(queue > 0 && queue < sent, `tun_queue: ${queue} of ${sent} datagrams sent to a stalled node`)

  // n2 stalled: n1 forwards, and n2's receive sockets (32 MB buffers) fill, then drop: flooded
  // a second at a time until the kernel's count (read straight from n2's namespace) moves.
  const sent2 = await stalled(n2, async () => {
    let n = 0
    for (let i = 0; i < 10 && socketDrops(await n2.ns.execAsync('cat', ['/proc/net/udp']), 8472) === 0; i++) n += await flood(n1.pods[0], n2.pods[0].ip, 1000)
    return n
  })
  const underlay = await kernelDrops(n2, 'underlay_socket') ?? 0
  t.ok(underlay > 0, `underlay_socket: ${underlay} datagrams dropped at n2 of ${sent2} sent`)
  const stats = await queryControl(join(cluster.dir, `${n2.name}.sock`), 'stats') as { kernelDrops: Record<string, number> }
  t.ok(stats.kernelDrops.underlaySocket >= underlay, '`flatnet stats` reports them as kernelDrops')
  t.equal(await kernelDrops(n2, 'tun_write'), 0, 'tun_write: nothing the kernel refused')

  t.ok(await ping(n1.pods[0], n2.pods[0].ip, 3), 'both daemons forward again once running')

  // The daemon checks every 5 s and says so in its log.
  const logLine = (msg: string): { kernelDrops?: Record<string, number> } | undefined => {
    const line = readLog(n1.logFile as string).split('\n').filter((l) => l.includes(msg)).at(-1)
    return line ? JSON.parse(line) : undefined
  }
  const WARNING = 'the kernel dropped packets around the data plane'
  await until(() => logLine(WARNING) !== undefined, 8000, 100)
  t.ok((logLine(WARNING)?.kernelDrops?.tunQueue ?? 0) >= queue, 'a warning in the log counts them')

  await cluster.stopDaemon(n1)
  t.ok((logLine('"msg":"stopped"')?.kernelDrops?.tunQueue ?? 0) >= queue, 'the daemon\'s last log line carries them')
})
