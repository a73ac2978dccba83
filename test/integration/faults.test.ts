// Faults a real cluster does to a node, each in namespaces with real processes:
// the daemon SIGKILLed and restarted, the TUN or the cluster route deleted by
// someone else, the underlay link bounced, a peer node restarted, and a reload
// with an invalid config file. Each fails if flatnet does not recover by itself.
import t, { type Test } from 'tap'
import { availableParallelism } from 'node:os'
import { msUntilPing, steadyPing } from '../lib/echo.js'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLI, type Cluster, type LabNode } from '../../src/lab/cluster.js'
import { queryControl } from '../../src/control-socket.js'
import { TUN_QUEUE_LEN } from '../../src/net/link.js'
import { labTools, ping, withCluster } from '../lib/lab.js'

labTools('ping')

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function kill9 (n: LabNode): Promise<void> {
  const d = n.daemon!
  d.kill('SIGKILL')
  if (d.exitCode === null && d.signalCode === null) await once(d, 'exit')
}

function count (text: string, what: string): number {
  return text.split('\n').filter((l) => l.includes(what)).length
}

/** Routes, TUN and bridge addresses: exactly one of each, nothing left over. */
function checkNodeState (t: Test, n: LabNode, label: string): void {
  if (n.podCIDR6) {
    const routes6 = n.ns.ip('-6', 'route', 'show', 'exact', 'fd00:10:244::/48')
    t.equal(count(routes6, 'dev flatnet0'), 1, `${label}: one IPv6 cluster route via flatnet0`)
  }
  const routes = n.ns.ip('route', 'show', 'exact', '10.244.0.0/16')
  t.equal(count(routes, 'dev flatnet0'), 1, `${label}: one cluster route via flatnet0 (${routes.trim()})`)
  t.equal(routes.trim().split('\n').length, 1, `${label}: no other cluster route`)
  const links = n.ns.ip('-o', 'link', 'show')
  t.equal(count(links, ' flatnet0:'), 1, `${label}: one TUN`)
  t.equal(JSON.parse(n.ns.ip('-j', 'link', 'show', 'flatnet0'))[0].txqlen, TUN_QUEUE_LEN, `${label}: TUN queue length ${TUN_QUEUE_LEN}`)
  t.equal(count(links, ' cni0:'), 1, `${label}: one bridge`)
  const tunAddrs = n.ns.ip('-o', '-4', 'addr', 'show', 'dev', 'flatnet0')
  t.equal(count(tunAddrs, 'inet '), 1, `${label}: one TUN address (${n.podCIDR.replace('/24', '/32')})`)
  t.equal(count(n.ns.ip('-o', '-4', 'addr', 'show', 'dev', 'cni0'), 'inet '), 1, `${label}: one gateway address on the bridge`)
}

async function cluster3 (t: Test): Promise<Cluster | undefined> {
  return await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet' }] })
}

t.test('daemon SIGKILLed and restarted: idempotent setup, traffic back within 2 s, other peers undisturbed', async (t) => {
  const cluster = await cluster3(t)
  if (!cluster) return
  const [n1, n2, n3] = cluster.nodes
  const [p1, p2, p3] = cluster.nodes.map((n) => n.pods[0])
  t.ok(await ping(p2, p1.ip), 'n2 -> n1 before')
  // n2 <-> n3 keep talking the whole time n1 is down and coming back.
  const bystander = steadyPing(p2, p3.ip, 6)
  await sleep(500)
  for (const round of [1, 2]) {
    await kill9(n1)
    t.notOk(n1.ns.ip('-o', 'link').includes('flatnet0'), `round ${round}: the killed daemon's TUN went with its fd`)
    const spawned = Date.now()
    await cluster.startDaemon(n1)
    const ready = Date.now()
    const ms = await msUntilPing(p2, p1.ip, 5_000, ready)
    t.ok(ms >= 0 && ms <= 2000, `round ${round}: n2 -> n1 pod traffic back ${ms} ms after ready (${ready - spawned} ms from spawn to ready)`)
    t.comment(`recovery after SIGKILL: spawn->ready ${ready - spawned} ms, ready->traffic ${ms} ms`)
    checkNodeState(t, n1, `round ${round}`)
  }
  const [sent, received] = await bystander
  t.ok(sent > 50 && sent - received <= 1, `n2 -> n3 undisturbed meanwhile: ${received}/${sent} answered`)
  for (const n of [n2, n3]) t.equal(n.daemon?.exitCode, null, `${n.name} daemon still running`)
})

// n1, the node the faults hit, in each worker layout: per-cpu reopens a TUN queue
// per worker and its steering program.
for (const workers of ['pipeline', 'per-cpu']) {
  t.test(`TUN deleted, set down, cluster route deleted: healed within 2 s and logged (workers ${workers})`, async (t) => {
    const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', extra: { workers } }, { kind: 'flatnet' }, { kind: 'flatnet' }], dualStack: true })
    if (!cluster) return
    const [n1, n2] = cluster.nodes
    const [p1, p2] = [n1.pods[0], n2.pods[0]]
    t.ok(await ping(p2, p1.ip), 'n2 -> n1 before')
    const pid = n1.daemon!.pid
    const faults: Array<[string, string[]]> = [
      ['ip link del flatnet0', ['link', 'del', 'flatnet0']],
      ['ip route del 10.244.0.0/16', ['route', 'del', '10.244.0.0/16']],
      ['ip link set flatnet0 down', ['link', 'set', 'flatnet0', 'down']],
      ['ip -6 route del fd00:10:244::/48', ['-6', 'route', 'del', 'fd00:10:244::/48']],
      ['ip link del flatnet0 (again)', ['link', 'del', 'flatnet0']],
    ]
    for (const [what, args] of faults) {
      const v6 = what.includes('-6')
      const logBefore = cluster.log(n1).length
      const at = Date.now()
      n1.ns.ip(...args)
      // Both directions: p1's replies go out through n1's TUN and route.
      const ms = await msUntilPing(p2, v6 ? p1.ip6! : p1.ip, 5_000, at)
      t.ok(ms >= 0 && ms <= 2000, `${what}: traffic back in ${ms} ms`)
      const back = await msUntilPing(p1, v6 ? p2.ip6! : p2.ip, 2_000)
      t.ok(back >= 0, `${what}: n1 -> n2 works too`)
      const logged = cluster.log(n1).slice(logBefore)
      t.match(logged, /"msg":"healed the TUN device and routes"/, `${what}: logged what it did`)
      t.comment(`${what}: healed, traffic back in ${ms} ms; log: ${logged.split('\n').find((l) => l.includes('healed')) ?? ''}`)
      checkNodeState(t, n1, what)
    }
    t.equal(n1.daemon!.pid, pid, 'the same daemon process throughout')
    t.equal(n1.daemon!.exitCode, null, 'daemon still running')
    const stats = await queryControl(join(cluster.dir, 'n1.sock'), 'stats') as { info: { tunError: number, queues: number, tunSteeringErrno: number } }
    t.equal(stats.info.tunError, 0, 'no TUN error left after healing')
    if (workers === 'per-cpu') t.ok(stats.info.queues === availableParallelism() && stats.info.tunSteeringErrno === 0, 'every queue reopened, steered by CPU again')

    // A second daemon on the same node must not join the first's reuseport group or TUN
    // queues. Found through the control socket, it waits to take over (src/handover.ts);
    // run with another control socket (nothing tells it a daemon runs), it exits, naming the port.
    const logFile = join(cluster.dir, 'n1-second.log')
    const pings = steadyPing(p2, p1.ip, 2)
    const waiting = n1.ns.spawn(process.execPath, [CLI, 'daemon', '--config', n1.configFile!], logFile)
    const since = Date.now()
    while (!readFileSync(logFile, 'utf8').includes('taking over its data plane when it stops') && Date.now() - since < 10_000) await sleep(50)
    t.match(readFileSync(logFile, 'utf8'), /"msg":"another daemon runs this node: taking over its data plane when it stops"/,
      'a second daemon with the same config waits as the successor')
    waiting.kill('SIGKILL')
    await once(waiting, 'exit')
    const otherConfig = join(cluster.dir, 'n1-elsewhere.json')
    writeFileSync(otherConfig, JSON.stringify({ ...JSON.parse(readFileSync(n1.configFile!, 'utf8')), controlSocket: join(cluster.dir, 'elsewhere.sock') }))
    const second = n1.ns.spawn(process.execPath, [CLI, 'daemon', '--config', otherConfig], logFile)
    const [code] = await Promise.race([once(second, 'exit'), sleep(10_000).then(() => [undefined])]) as [number | undefined]
    t.equal(code, 1, 'one with another control socket exits 1')
    t.match(readFileSync(logFile, 'utf8'), /UDP port \d+ on [\d.]+ is taken; is another flatnet daemon/, 'and says the port is taken, by whom')
    const after = await queryControl(join(cluster.dir, 'n1.sock'), 'stats') as typeof stats
    t.equal(after.info.queues, stats.info.queues, `the first daemon keeps its ${stats.info.queues} TUN queue(s)`)
    t.ok(n1.ns.exec('nft', 'list', 'tables').includes('table ip flatnet'), 'and its NAT table')
    const [sent, received] = await pings
    t.ok(sent > 10 && received === sent, `n2 -> n1 undisturbed meanwhile: ${received}/${sent} answered`)
  })
}

t.test('underlay link down and up: forwarding resumes without a restart', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const [p1, p2] = [n1.pods[0], n2.pods[0]]
  t.ok(await ping(p1, p2.ip), 'before')
  const pid = n1.daemon!.pid
  n1.ns.ip('link', 'set', 'eth0', 'down')
  t.notOk(await ping(p1, p2.ip, 1), 'nothing passes while the underlay is down')
  const at = Date.now()
  n1.ns.ip('link', 'set', 'eth0', 'up')
  const ms = await msUntilPing(p1, p2.ip, 10_000, at)
  t.ok(ms >= 0, `forwarding back ${ms} ms after the link came up`)
  t.comment(`underlay down/up: forwarding back ${ms} ms after link up`)
  t.equal(n1.daemon!.pid, pid, 'no restart')
  t.equal(n1.daemon!.exitCode, null, 'daemon running')
})

t.test('a peer node restarts (daemon killed, links removed and recreated): traffic to it resumes by itself', async (t) => {
  const cluster = await cluster3(t)
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const [p1, p2] = [n1.pods[0], n2.pods[0]]
  t.ok(await ping(p1, p2.ip), 'n1 -> n2 before')
  const n1pid = n1.daemon!.pid
  const ul = `flatnet-${cluster.tag}-ul`
  const mac = JSON.parse(n2.ns.ip('-j', 'link', 'show', 'eth0'))[0].address as string
  // The node goes away: its daemon, its underlay link, its bridge.
  await kill9(n2)
  n2.ns.ip('link', 'del', 'cni0')
  n2.ns.exec('ip', '-n', ul, 'link', 'del', 'u2') // takes n2's eth0 with it
  t.notOk(await ping(p1, p2.ip, 1), 'n2 unreachable while it is down')
  // ... and comes back as a rebooted machine would: same NIC address, same config.
  n2.ns.exec('ip', '-n', ul, 'link', 'add', 'u2', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n2.ns.name)
  n2.ns.exec('ip', '-n', ul, 'link', 'set', 'u2', 'master', 'br0', 'up')
  n2.ns.ip('link', 'set', 'eth0', 'address', mac, 'up')
  n2.ns.ip('addr', 'add', `${n2.underlayIP}/24`, 'dev', 'eth0')
  const at = Date.now()
  await cluster.startDaemon(n2) // recreates cni0
  n2.ns.ip('link', 'set', 'vp1', 'master', 'cni0', 'up') // the pod's veth rejoins the new bridge
  const ms = await msUntilPing(p1, p2.ip, 15_000, at)
  t.ok(ms >= 0, `n1 -> n2 back ${ms} ms after n2's daemon started, n1 untouched`)
  t.comment(`peer restart: traffic back ${ms} ms after the peer's daemon started`)
  t.equal(n1.daemon!.pid, n1pid, 'n1 was not restarted')
  t.ok(await ping(p2, p1.ip), 'n2 -> n1 too')
})

t.test('config reload with an invalid file keeps the old config and says why', async (t) => {
  const cluster = await cluster3(t)
  if (!cluster) return
  const [n1, n2, n3] = cluster.nodes
  const file = n1.configFile!
  const good = readFileSync(file, 'utf8')
  const sock = join(cluster.dir, 'n1.sock')
  const peers = async (): Promise<string[]> =>
    ((await queryControl(sock, 'peers')) as { peers: Array<{ nodeName: string }> }).peers.map((p) => p.nodeName).sort()
  t.same(await peers(), ['n2', 'n3'], 'peers before')
  const bad: Array<[string, string, RegExp]> = [
    ['not JSON', '{ "nodeName": "n1", ', /JSON|Unexpected|parse/i],
    ['a peer with a bad CIDR', good.replace('"10.244.3.0/24"', '"10.244.3.0/33"'), /10\.244\.3\.0\/33/],
  ]
  for (const [what, text, why] of bad) {
    const before = cluster.log(n1).length
    writeFileSync(file, text)
    n1.daemon!.kill('SIGHUP')
    const deadline = Date.now() + 3000
    while (!cluster.log(n1).slice(before).includes('reload rejected') && Date.now() < deadline) await sleep(50)
    const line = cluster.log(n1).slice(before).split('\n').find((l) => l.includes('reload rejected')) ?? ''
    t.ok(line, `${what}: reload rejected`)
    t.match(line, why, `${what}: the log says why: ${line}`)
    t.same(await peers(), ['n2', 'n3'], `${what}: old peers kept`)
    t.ok(await ping(n1.pods[0], n3.pods[0].ip), `${what}: traffic still flows`)
    t.equal(n1.daemon!.exitCode, null, `${what}: daemon still running`)
  }
  // A valid file that drops n3 is taken.
  const before = cluster.log(n1).length
  const cfg = JSON.parse(good) as { peers: Array<{ nodeName: string }> }
  cfg.peers = cfg.peers.filter((p) => p.nodeName !== 'n3')
  writeFileSync(file, JSON.stringify(cfg))
  n1.daemon!.kill('SIGHUP')
  const deadline = Date.now() + 3000
  while (!cluster.log(n1).slice(before).includes('peers reloaded') && Date.now() < deadline) await sleep(50)
  t.same(await peers(), ['n2'], 'a valid reload is applied')
  t.ok(await ping(n1.pods[0], n2.pods[0].ip), 'traffic to the remaining peer flows')
})
