// Node-to-node health as an operator meets it: a peer whose data plane dies (kill -9) or
// whose VXLAN is filtered on the underlay while the node stays up is reported unreachable
// through the overlay — a log line, flatnet_peer_reachable, `flatnet status` — and
// reachable again when it is back; a kernel vxlan peer (configured as flannel does) is
// probed like any other. Three nodes on a bridge underlay, as a cluster's nodes share a
// network, so one peer's failure leaves the others' answers to compare with.
import t from 'tap'
import { once } from 'node:events'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { CLI, type Cluster, type LabNode } from '../../src/lab/cluster.js'
import { until } from '../../src/lab/until.js'
import type { Status } from '../../src/status.js'
import { withCluster } from '../lib/lab.js'
import { metricsGet, sample } from '../lib/health.js'

const execFileAsync = promisify(execFile)

async function cli (cluster: Cluster, n: LabNode, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [CLI, ...args, '--socket', join(cluster.dir, `${n.name}.sock`)], { timeout: 10_000 })
  return stdout
}

async function status (cluster: Cluster, n: LabNode): Promise<Status> {
  return JSON.parse(await cli(cluster, n, 'status', '--json')) as Status
}

/** The overlay state of one peer as n's status has it: 'reachable', 'unreachable' or 'unknown'. */
async function overlayOf (cluster: Cluster, n: LabNode, peer: string): Promise<{ state: string, underlay: string, lost?: number }> {
  const s = await status(cluster, n)
  const probes = s.peers.probes
  if (!probes) throw new Error('probes off')
  const down = (path: 'overlay' | 'underlay'): boolean => probes[path].down.some((d) => d.peer === peer)
  const health = JSON.parse(await cli(cluster, n, 'peers', '--json')) as Array<{ nodeName: string, health?: Record<string, { reachable?: boolean, lost: number }> }>
  const h = health.find((p) => p.nodeName === peer)?.health
  const state = (path: 'overlay' | 'underlay'): string => down(path) ? 'unreachable' : h?.[path]?.reachable === true ? 'reachable' : 'unknown'
  return { state: state('overlay'), underlay: state('underlay'), lost: h?.overlay?.lost }
}

t.test('a peer\'s data plane killed or its VXLAN filtered: unreachable through the overlay, named everywhere, then back', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'kernel-vxlan' }] }, ['nft'])
  if (!cluster) return
  const [n1, n2, n3] = cluster.nodes
  const allUp = async (): Promise<boolean> => {
    const p = (await status(cluster, n1)).peers.probes
    return p !== null && p.overlay.reachable === 2 && p.underlay.reachable === 2
  }
  const settled = await until(allUp, 30_000, 200)
  t.ok(settled >= 0, `both peers reachable through the overlay and on the underlay after ${settled} ms`)
  const human = await cli(cluster, n1, 'status')
  t.match(human, /^flatnet \S+ \([0-9a-f]{12}\) on n1: ready \(up /, 'status: version, commit, node, ready')
  t.match(human, /overlay 2\/2 reachable; underlay 2\/2 reachable/, 'status: peers reachable per path')
  t.match(human, /policy +off/, 'status: policy off, said so')
  t.match(human, /data plane +flatnet0 mtu \d+/, 'status: the data plane')
  const peers = await cli(cluster, n1, 'peers')
  t.match(peers, /OVERLAY +UNDERLAY/, 'peers: reachability columns')
  t.equal(peers.split('\n').filter((l) => / ok \d+\.\d+ms +ok /.test(l)).length, 2, `peers: both answer on both paths\n${peers}`)
  // --all asks each peer's daemon through the overlay: from inside n1's namespace, where the CLI runs on a node.
  const all = async (): Promise<string> => await n1.ns.execAsync(process.execPath, [CLI, 'status', '--all', '--socket', join(cluster.dir, 'n1.sock')], 20_000)
  // n2's own probes settle on their own schedule (its first underlay round spreads over 15 s:
  // its underlay column may still say "probing").
  let matrix = ''
  await until(async () => /^n2 +\S+ +2\/2 +\S/m.test(matrix = await all()), 30_000, 500)
  t.match(matrix, /^n1 +\S+ +2\/2 +2\/2 +-$/m, `--all: n1's own view\n${matrix}`)
  t.match(matrix, /^n2 +\S+ +2\/2 +/m, '--all: n2 answered through the overlay with its view')
  t.match(matrix, /^n3 +NO ANSWER +ECONNREFUSED/m, '--all: the kernel vxlan node has no daemon to ask (its kernel refuses)')

  // The underlay filters VXLAN to n2 (a firewall, a security group): the node answers, its overlay does not.
  n2.ns.exec('sh', '-c', 'nft add table inet flatnet-test && nft add chain inet flatnet-test in "{ type filter hook input priority -300; }" && ' +
    'nft add rule inet flatnet-test in udp dport 8472 drop')
  let from = Date.now()
  let ms = await until(async () => (await overlayOf(cluster, n1, 'n2')).state === 'unreachable', 30_000, 100)
  t.ok(ms >= 0, `VXLAN to n2 filtered: n2 unreachable through the overlay after ${Date.now() - from} ms`)
  const filtered = await overlayOf(cluster, n1, 'n2')
  t.equal(filtered.underlay, 'reachable', 'n2 itself still answers on the underlay: the overlay is what is broken')
  t.ok((filtered.lost ?? 0) >= 3, `${filtered.lost ?? 0} overlay probes lost: three misses decide`)
  t.equal((await overlayOf(cluster, n1, 'n3')).state, 'reachable', 'the kernel vxlan peer n3 is undisturbed')
  t.match(cluster.log(n1), /"level":"warn".*"peer":"n2","path":"overlay".*"underlayReachable":true.*"msg":"peer unreachable"/, 'a warning names n2 and the path')
  const metrics = (await metricsGet(n1)).body
  t.equal(sample(metrics, 'flatnet_peer_reachable', { peer: 'n2', path: 'overlay' }), 0, 'flatnet_peer_reachable{peer="n2",path="overlay"} 0')
  t.equal(sample(metrics, 'flatnet_peer_reachable', { peer: 'n3', path: 'overlay' }), undefined, 'no series for a reachable peer')
  t.equal(sample(metrics, 'flatnet_peers_reachable', { path: 'overlay', state: 'unreachable' }), 1, 'flatnet_peers_reachable{state="unreachable"} 1')
  t.ok((sample(metrics, 'flatnet_peer_probe_rtt_seconds_count', { path: 'overlay' }) ?? 0) > 0, 'round trips observed in the aggregate histogram')
  const human2 = await cli(cluster, n1, 'status')
  t.match(human2, /1 UNREACHABLE/, 'status: the count')
  t.match(human2, /n2: overlay unreachable for \d+s \(timeout, \d+\/\d+ lost\)/, `status names n2 and why\n${human2}`)
  t.match(human2, /peer unreachable peer=n2 path=overlay/, 'status: the warning among the recent ones')
  const matrix2 = await all()
  t.match(matrix2, /^n1 +\S+ +1\/2 +2\/2 +n2 \(overlay\)$/m, `--all: n1 names n2\n${matrix2}`)
  t.match(matrix2, /^n2 +NO ANSWER +no answer/m, '--all: n2 cannot be asked through the overlay')

  n2.ns.exec('nft', 'delete', 'table', 'inet', 'flatnet-test')
  ms = await until(async () => (await overlayOf(cluster, n1, 'n2')).state === 'reachable', 30_000, 100)
  t.ok(ms >= 0, `filter removed: n2 reachable again after ${ms} ms`)
  t.match(cluster.log(n1), /"peer":"n2","path":"overlay".*"msg":"peer reachable"/, 'an info line says so')

  // The data plane dies with its process: nothing decapsulates on n2 any more.
  const d = n2.daemon
  if (!d) throw new Error('n2 has no daemon')
  from = Date.now()
  d.kill('SIGKILL')
  await once(d, 'exit')
  ms = await until(async () => (await overlayOf(cluster, n1, 'n2')).state === 'unreachable', 30_000, 100)
  t.ok(ms >= 0, `n2's daemon killed: unreachable through the overlay after ${Date.now() - from} ms`)
  t.comment(`detection after kill -9: ${Date.now() - from} ms (probe interval 4 s +-25%, 3 misses of 1 s)`)
  t.equal((await overlayOf(cluster, n1, 'n2')).underlay, 'reachable', 'the node is up: only its data plane is gone')
  await cluster.startDaemon(n2)
  ms = await until(async () => (await overlayOf(cluster, n1, 'n2')).state === 'reachable', 30_000, 100)
  t.ok(ms >= 0, `n2's daemon restarted: reachable again ${ms} ms after its ready line`)
  t.equal((await overlayOf(cluster, n2, 'n1')).state === 'unreachable', false, 'the restarted n2 does not see n1 unreachable')

  // The whole underlay link cut on n2 (its process alive): both paths go, and status says so.
  n2.ns.exec('sh', '-c', 'nft add table inet flatnet-cut && nft add chain inet flatnet-cut in "{ type filter hook input priority -300; }" && ' +
    'nft add rule inet flatnet-cut in iifname eth0 drop')
  from = Date.now()
  ms = await until(async () => { const o = await overlayOf(cluster, n1, 'n2'); return o.state === 'unreachable' && o.underlay === 'unreachable' }, 30_000, 100)
  t.ok(ms >= 0, `n2's link cut: unreachable through the overlay and on the underlay after ${Date.now() - from} ms`)
  t.equal(n2.daemon?.exitCode, null, 'n2\'s daemon still runs')
  t.match(await cli(cluster, n1, 'status'), /n2: overlay unreachable for \d+s \(timeout, \d+\/\d+ lost, underlay down too\)/, 'status: both paths down')
  n2.ns.exec('nft', 'delete', 'table', 'inet', 'flatnet-cut')
  // The underlay, reported down, is probed again within 8-40 s (the back-off): the overlay says the link is back.
  ms = await until(async () => (await overlayOf(cluster, n1, 'n2')).state === 'reachable', 30_000, 100)
  t.ok(ms >= 0, `link back: reachable through the overlay after ${ms} ms`)
  t.same(n3.ns.exec('ip', '-o', 'link', 'show', 'flannel.1').includes('flannel.1'), true, 'n3 runs the kernel\'s vxlan (flannel.1)')
})
