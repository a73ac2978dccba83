// The node's HTTP endpoint as the kubelet's probes and Prometheus see it, fetched
// from inside the node's namespace: /healthz and /readyz answer 200 once the daemon
// is ready, /readyz turns 503 (saying why) when the cluster route goes and back
// when the healer restores it, and /metrics carries per-peer and per-reason series after traffic,
// and what the kernel dropped around a stalled daemon.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { queryControl } from '../../src/control-socket.js'
import type { LabNode, Pod } from '../../src/lab/cluster.js'
import { readLog } from '../../src/lab/netns.js'
import { until } from '../../src/lab/until.js'
import { socketDrops } from '../../src/net/kernel-drops.js'
import { labTools, ping, withCluster } from '../lib/lab.js'
import { COMMIT, VERSION } from '../../src/version.js'
import { healthGet, metricsGet, sample } from '../lib/health.js'

labTools('ping')

const PORT = 9472 // the default healthPort, as the DaemonSet's probes expect
const METRICS_PORT = 9473 // the default metricsPort
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
        const r = await fetch('http://127.0.0.1:${PORT}/readyz'); const body = await r.text()
        if (seen.at(-1)?.status !== r.status) seen.push({ status: r.status, body })
        if (r.status === 200 && seen.length > 1) break
      }
      process.stdout.write(JSON.stringify(seen)) })()`
  let seen: Array<{ status: number, body: string }> = []
  // The healer may run in the few ms between the delete and the first fetch: try again then.
  for (let attempt = 0; attempt < 5 && seen[0]?.status !== 503; attempt++) {
    seen = JSON.parse(await n1.ns.execAsync(process.execPath, ['-e', watch], 10_000))
  }
  t.equal(seen[0]?.status, 503, '/readyz 503 without the cluster route')
  t.match(seen[0]?.body, 'route 10.244.0.0/16 dev flatnet0 is missing', '/readyz says why')
  t.equal(seen.at(-1)?.status, 200, '/readyz 200 again once the route is healed')
  t.equal((await get(n1, '/healthz')).status, 200, '/healthz 200 throughout: alive')

  // Traffic to every peer, one packet to nowhere (no_route) and one malformed datagram from a peer (bad_flags).
  for (const p of cluster.nodes.slice(1)) t.ok(await ping(n1.pods[0], p.pods[0].ip, 3), `n1 pod -> ${p.name} pod`)
  await ping(n1.pods[0], '10.244.99.1', 1)
  await n2.ns.execAsync(process.execPath, [SEND_UDP, n2.underlayIP, n1.underlayIP, '8472', '00'.repeat(64)])

  const metrics = await metricsGet(n1)
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
  t.equal(sample(m, 'flatnet_build_info', { version: VERSION, commit: COMMIT }), 1, `flatnet_build_info{version="${VERSION}",commit="${COMMIT}"} 1`)
  // The log as kubectl logs shows it: JSON lines, level names, ISO times, the version at ready.
  const ready = JSON.parse(cluster.log(n1).split('\n').find((l) => l.includes('"msg":"ready"')) as string) as { level: string, time: string, version: string }
  t.same([ready.level, ready.version], ['info', VERSION], 'the ready line: level by name, the version')
  t.match(ready.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'and an ISO time')
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

// Finding 1 of the security review: the probes and /metrics shared one listener on all
// addresses, so any pod could scrape it hard enough that the kubelet's liveness probe timed out
// and the daemon was restarted. Now the probes listen on 127.0.0.1 (the kubelet probes a
// hostNetwork pod from the node itself) and /metrics on its own bounded listener.
t.test('a pod flooding /metrics and holding connections: the probes still answer, and are out of its reach', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1] = cluster.nodes
  const pod = n1.pods[0]
  const node = `10.244.${n1.index}.1` // the pod's gateway: the node, as any pod reaches it
  const seconds = 5

  const reach = async (port: number): Promise<string> => await pod.ns.execAsync(process.execPath, ['-e',
    `require('net').connect(${port}, '${node}').on('connect', function () { process.stdout.write('open'); this.destroy() }).on('error', (e) => process.stdout.write(e.code))`], 10_000)
  t.equal(await reach(PORT), 'ECONNREFUSED', 'the health port is closed to pods')
  t.equal(await reach(METRICS_PORT), 'open', 'the metrics port is open to them, as Prometheus needs')

  // From the pod: 600 connections opened and left idle (each would hold a slot and a buffer),
  // and 64 clients scraping /metrics back to back, each on a new connection, for the whole window.
  const attack = `const net = require('net'); const http = require('http'); const end = Date.now() + ${seconds * 1000}
    const out = { idle: 0, idleClosed: 0, scrapes: 0, refused: 0 }; const alive = setInterval(() => {}, 1000)
    for (let i = 0; i < 600; i++) { const s = net.connect(${METRICS_PORT}, '${node}'); s.on('connect', () => out.idle++); s.on('close', () => out.idleClosed++); s.on('error', () => {}) }
    const get = () => new Promise((resolve) => http.get({ host: '${node}', port: ${METRICS_PORT}, path: '/metrics', agent: false }, (r) => { r.resume(); r.on('end', () => { out.scrapes++; resolve() }); r.on('error', resolve) })
      .on('error', () => { out.refused++; resolve() }))
    const scrape = async () => { while (Date.now() < end) await get() }
    const done = () => { if (out.idleClosed < 600 && Date.now() < end + 20000) return setTimeout(done, 100); process.stdout.write(JSON.stringify(out)); process.exit(0) }
    Promise.all(Array.from({ length: 64 }, scrape)).then(done)`
  // From the node: the kubelet's probe every 100 ms with its default 1 s timeout, and
  // Prometheus' scrape every second (another client address than the pod's).
  const node1 = `const end = Date.now() + ${seconds * 1000}; const probes = []; const scrapes = []
    const timed = async (url, ms, into) => { const s = performance.now(); try { const r = await fetch(url, { signal: AbortSignal.timeout(ms) }); await r.text(); into.push([r.status, performance.now() - s]) } catch (e) { into.push([0, performance.now() - s]) } }
    const every = async (url, ms, timeout, into) => { await new Promise((r) => setTimeout(r, 300)); while (Date.now() < end) { await timed(url, timeout, into); await new Promise((r) => setTimeout(r, ms)) } }
    Promise.all([every('http://127.0.0.1:${PORT}/healthz', 100, 1000, probes), every('http://127.0.0.1:${METRICS_PORT}/metrics', 1000, 10000, scrapes)])
      .then(() => process.stdout.write(JSON.stringify({ probes, scrapes })))`
  const [attacked, seen] = await Promise.all([
    pod.ns.execAsync(process.execPath, ['-e', attack], (seconds + 30) * 1000).then((o) => JSON.parse(o) as { idle: number, idleClosed: number, scrapes: number, refused: number }),
    n1.ns.execAsync(process.execPath, ['-e', node1], (seconds + 30) * 1000).then((o) => JSON.parse(o) as Record<'probes' | 'scrapes', Array<[number, number]>>),
  ])
  const ms = seen.probes.map(([, m]) => m).sort((a, b) => a - b)
  const p99 = ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))]
  t.comment(`under the flood: ${ms.length} probes, p50 ${ms[ms.length >> 1].toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${ms.at(-1)?.toFixed(1)} ms; ` +
    `the pod: ${attacked.scrapes} scrapes answered, ${attacked.refused} refused, ${attacked.idle} of 600 idle connections accepted (then closed)`)
  t.ok(ms.length >= seconds * 5, `${ms.length} probes made`)
  t.same(seen.probes.filter(([status]) => status !== 200), [], 'every /healthz probe answered 200 within the kubelet\'s 1 s timeout')
  t.ok(seen.scrapes.length >= seconds - 1, `${seen.scrapes.length} scrapes from the node`)
  t.same(seen.scrapes.filter(([status]) => status !== 200), [], 'Prometheus (another address) scrapes throughout: the pod holds only its own share of connections')
  t.equal(attacked.idleClosed, 600, 'every idle connection was closed by the daemon: refused past the bounds, timed out (10 s) within them')
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${n1.daemon?.pid as number}/status`, 'utf8'))?.[1]) / 1024
  t.comment(`daemon RSS after the flood: ${rss.toFixed(0)} MiB`)
  t.equal((await metricsGet(n1)).status, 200, 'Prometheus on the node still scrapes once the pod stops')
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
    sample((await metricsGet(n)).body, 'flatnet_kernel_drops_total', { where })
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
