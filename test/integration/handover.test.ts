// Updates without a gap (src/handover.ts): a node's daemon handed over to a successor
// 10 times in a row while a pod on another node pings a pod behind it 100 times a
// second and streams hash-checked data to it, for each worker layout, between daemons
// under the DaemonSet container's restrictions, and from per-cpu to a successor without
// CAP_BPF (what a manifest without it starts). Then handovers
// that fail midway: either daemon SIGKILLed during one, the node forwarding again
// within 2 s. The successor is started beside the old daemon, as a DaemonSet's surge
// pod is, and the old one gets the SIGTERM the kubelet sends.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { readLog } from '../../src/lab/netns.js'
import type { Cluster, LabNode, NodeSpec } from '../../src/lab/cluster.js'
import { createServer } from 'node:net'
import { openSession, queryControl } from '../../src/control-socket.js'
import { readFrames, writeFrame } from '../../src/frame.js'
import { HANDOVER_VERSION } from '../../src/handover.js'
import { parseConfig } from '../../src/config.js'
import { formatAddress } from '../../src/net/cidr.js'
import { pacedTransfer, startPacedSink } from '../../src/lab/traffic.js'
import { pingFlood } from '../../src/lab/ping-flood.js'
import { until } from '../../src/lab/until.js'
import { channelLab } from '../lib/channel.js'
import { asDaemonSetContainer } from '../lib/daemonset.js'
import { msUntilPing } from '../lib/echo.js'
import { labTools, ping, withCluster } from '../lib/lab.js'

labTools('ping')

// As overlay.test.ts: without CAP_BPF (and CAP_SYS_ADMIN, which would stand in for it).
const NO_BPF = ['setpriv', '--bounding-set=-bpf,-sys_admin', '--inh-caps=-bpf,-sys_admin', '--']
const HANDOVERS = 10
const PING_INTERVAL_S = 0.01 // 100 a second

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function statsOf (n: LabNode): Promise<Record<string, unknown>> {
  const cfg = JSON.parse(readFileSync(n.configFile!, 'utf8')) as { controlSocket: string }
  return await queryControl(cfg.controlSocket, 'stats')
}

function tunIndex (n: LabNode): number {
  return JSON.parse(n.ns.ip('-j', 'link', 'show', 'flatnet0'))[0].ifindex
}

interface Layout { name: string, workers: string, launcher?: string[], successor?: Partial<NodeSpec>, expect: string }
const layouts: Layout[] = [
  // Both daemons as the DaemonSet's containers run them: what a rolling update hands over between.
  { name: 'as the DaemonSet\'s containers', workers: 'auto', launcher: asDaemonSetContainer(), expect: 'per-cpu' },
  { name: 'per-cpu', workers: 'per-cpu', expect: 'per-cpu' },
  { name: 'pipeline', workers: 'pipeline', expect: 'pipeline' },
  // The successor cannot load steering programs; the ones attached stay, so it keeps per-cpu.
  { name: 'per-cpu to a successor without CAP_BPF', workers: 'auto', successor: { launcher: NO_BPF }, expect: 'per-cpu' },
]

for (const layout of layouts) {
  t.test(`${HANDOVERS} handovers under a 100/s ping flood and a paced TCP stream: ${layout.name}`, async (t) => {
    const node = { kind: 'flatnet' as const, launcher: layout.launcher, extra: { workers: layout.workers } }
    const cluster = await withCluster(t, { nodes: [node, { kind: 'flatnet' }] })
    if (!cluster) return
    const [n1] = cluster.nodes
    const p1 = n1.pods[0]
    const p2 = cluster.nodes[1].pods[0]
    startPacedSink(p1.ns)
    t.ok(await ping(p2, p1.ip), 'n2 -> n1 before')
    const index = tunIndex(n1)
    // Both run until the handovers are done, however long the machine takes for them.
    const pings = pingFlood(p2.ns, p1.ip, join(cluster.dir, 'flood.log'), PING_INTERVAL_S)
    const stopFile = join(cluster.dir, 'stream.stop')
    const stream = pacedTransfer(p2.ns, p1.ip, stopFile)
    await sleep(500)
    const times: number[] = []
    for (let i = 1; i <= HANDOVERS; i++) {
      const { code, ms } = await cluster.handOver(n1, layout.successor)
      t.equal(code, 0, `handover ${i}: the old daemon exits 0`)
      times.push(ms)
    }
    await sleep(500)
    writeFileSync(stopFile, '')
    const { sent, lost } = await pings.stop()
    const paced = await stream
    t.ok(sent >= HANDOVERS * 10, `the flood spanned the handovers (${sent} echoes)`)
    t.same(lost, [], `no ping lost of ${sent}`)
    t.ok(paced.intact && paced.bytes > 0, `the stream's ${paced.bytes} bytes arrived intact (sha256)`)
    t.ok(paced.maxDelayMs < 100, `no chunk of the stream delayed 100 ms or more (worst ${paced.maxDelayMs} ms)`)
    t.equal(tunIndex(n1), index, 'the same TUN all along (never closed)')
    const now = await statsOf(n1)
    t.equal((now.info as { workers: string }).workers, layout.expect, `the last successor runs ${layout.expect} workers`)
    if (layout.successor?.launcher) {
      const bnd = /^CapBnd:\s+(\S+)/m.exec(readFileSync(`/proc/${n1.daemon!.pid}/status`, 'utf8'))?.[1] ?? '0'
      t.equal(BigInt(`0x${bnd}`) & (1n << 39n), 0n, 'the last successor runs without CAP_BPF (it could not load steering programs)')
    }
    const log = readLog(n1.logFile!)
    t.equal(log.split('\n').filter((l) => l.includes('"msg":"took over the data plane"')).length, HANDOVERS, 'each successor says it took over')
    t.notOk(log.includes('handover failed'), 'no handover failed')
    const gaps = log.split('\n').filter((l) => l.includes('"msg":"handed the data plane over"')).map((l) => JSON.parse(l).ms)
    t.comment(`handover SIGTERM->ready ms: ${times.join(' ')}; handing over (descriptors to threads running) ms: ${gaps.join(' ')}`)
    t.comment(`pings ${sent - lost.length}/${sent}; worst stream delay ${paced.maxDelayMs} ms`)
    for (const l of log.split('\n').filter((l) => l.includes('"level":"warn"'))) t.comment(l)
  })
}

/**
 * A handover caught midway: n's successor registered, then stopped (SIGSTOP) so that it
 * cannot answer, and the old daemon SIGTERMed and past passing it the descriptors
 * (they wait in the stopped successor's socket).
 */
async function stalledHandover (cluster: Cluster, n: LabNode): Promise<{ old: ChildProcess, successor: ChildProcess, from: number }> {
  const old = n.daemon!
  const successor = await cluster.startSuccessor(n)
  successor.kill('SIGSTOP')
  const from = readLog(n.logFile!).length
  old.kill('SIGTERM')
  // Not "handing the data plane over", which comes just before the descriptors are sent.
  await cluster.untilLogged(n, from, '"msg":"descriptors and table passed')
  return { old, successor, from }
}

async function cluster2 (t: Test): Promise<Cluster | undefined> {
  return await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
}

t.test('the old daemon SIGKILLed during the handover: the successor runs on what it was handed', async (t) => {
  const cluster = await cluster2(t)
  if (!cluster) return
  const [n1] = cluster.nodes
  const [p1, p2] = cluster.nodes.map((n) => n.pods[0])
  t.ok(await ping(p2, p1.ip), 'n2 -> n1 before')
  // The old daemon waits for the stopped successor's "ready" when it is killed.
  const { old, successor: s, from } = await stalledHandover(cluster, n1)
  old.kill('SIGKILL')
  await once(old, 'exit')
  const killed = Date.now()
  s.kill('SIGCONT')
  n1.daemon = s
  const ms = await msUntilPing(p2, p1.ip, 5000, killed)
  t.ok(ms >= 0 && ms <= 2000, `n2 -> n1 forwarding ${ms} ms after the kill`)
  await cluster.untilLogged(n1, from, '"msg":"ready"')
  t.ok(readLog(n1.logFile!).slice(from).includes('took over the data plane'), 'the successor took over the handed TUN and sockets')
  t.ok(await ping(p2, p1.ip, 5), 'and goes on forwarding')
})

t.test('the successor SIGKILLed during the handover: the old daemon forwards on, then hands over to the next', async (t) => {
  const cluster = await cluster2(t)
  if (!cluster) return
  const [n1] = cluster.nodes
  const [p1, p2] = cluster.nodes.map((n) => n.pods[0])
  const { old, successor: s, from } = await stalledHandover(cluster, n1)
  s.kill('SIGKILL')
  const killed = Date.now()
  await cluster.untilLogged(n1, from, 'handover failed')
  const ms = await msUntilPing(p2, p1.ip, 5000, killed)
  t.ok(ms >= 0 && ms <= 2000, `n2 -> n1 forwarding ${ms} ms after the kill`)
  t.equal(old.exitCode, null, 'the old daemon still runs')
  // Its SIGTERM stands: the next successor gets the data plane at once.
  const next = await cluster.startSuccessor(n1)
  const [code] = await once(old, 'exit') as [number]
  t.equal(code, 0, 'the old daemon exits 0 after handing over to the next successor')
  n1.daemon = next
  await cluster.untilLogged(n1, from, '"msg":"ready"')
  t.ok(await ping(p2, p1.ip, 5), 'the next successor forwards')
})

t.test('the old daemon SIGKILLed while a successor waits: the successor starts clean within 2 s', async (t) => {
  const cluster = await cluster2(t)
  if (!cluster) return
  const [n1] = cluster.nodes
  const [p1, p2] = cluster.nodes.map((n) => n.pods[0])
  const old = n1.daemon!
  const s = await cluster.startSuccessor(n1)
  const from = readLog(n1.logFile!).length
  old.kill('SIGKILL')
  await once(old, 'exit')
  const killed = Date.now()
  n1.daemon = s
  await cluster.untilLogged(n1, from, '"msg":"ready"')
  const ms = await msUntilPing(p2, p1.ip, 5000, killed)
  t.ok(ms >= 0 && ms <= 2000, `n2 -> n1 forwarding ${ms} ms after the kill (a new TUN, the persisted peer table)`)
  t.ok(readLog(n1.logFile!).slice(from).includes('stopped without handing over'), 'the successor says why it starts clean')
})

t.test('versions: a successor speaking another version is refused; one refused starts clean once the old daemon is gone', async (t) => {
  const cluster = await cluster2(t)
  if (!cluster) return
  const [n1] = cluster.nodes
  const [p1, p2] = cluster.nodes.map((n) => n.pods[0])
  const { controlSocket } = JSON.parse(readFileSync(n1.configFile!, 'utf8')) as { controlSocket: string }
  const future = await openSession(controlSocket, { cmd: 'successor', version: HANDOVER_VERSION + 1, pid: 1, listen: `${controlSocket}.x` })
  t.match(future.reply, { ok: false, version: HANDOVER_VERSION, error: new RegExp(`handover version ${HANDOVER_VERSION + 1} not spoken here \\(this daemon speaks 1 and 2\\)`) }, 'a newer protocol is refused, naming the versions spoken')
  future.close()
  // Version 1 (before WireGuard's sessions went with the data plane) is still spoken: that
  // daemon is handed the data plane without them. Asked with another TUN, so that it is
  // refused for that, after its version passed, and never waits as a successor (one that
  // waits and leaves races the stop below: the daemon would wait for the next).
  const c = parseConfig(JSON.parse(readFileSync(n1.configFile!, 'utf8')))
  const identity = { tun: 'other0', port: c.underlay.port, address: formatAddress(c.underlay.address) }
  const v1 = await openSession(controlSocket, { cmd: 'successor', version: 1, pid: 1, listen: join(dirname(controlSocket), 'v1.sock'), ...identity })
  t.match(v1.reply, { ok: false, error: /^the successor's tun differs from this daemon's$/ }, 'version 1 is spoken (refused only for its other TUN)')
  v1.close()

  // A daemon from before handovers answers `successor` as an unknown command.
  await cluster.stopDaemon(n1)
  const older = createServer((s) => readFrames(s, () => writeFrame(s, { ok: false, error: 'unknown command "successor" (known: stats, peers)' }), () => {}))
  await new Promise<void>((resolve) => older.listen(controlSocket, resolve))
  t.teardown(() => { older.close() })
  const from = readLog(n1.logFile!).length
  await cluster.startDaemon(n1)
  const log = readLog(n1.logFile!).slice(from)
  t.match(log, /"predecessor":"unknown command \\"successor\\"[^"]*","msg":"the running daemon cannot hand over; starting clean once it has stopped"/,
    'the successor says why it cannot take over')
  t.ok(await ping(p2, p1.ip), 'and, nothing holding the port or the TUN, starts clean')
})

t.test('peers learnt over the control channel: a handover withdraws nothing', async (t) => {
  const channel = channelLab(t, 'ho')
  const cluster = await withCluster(t, { nodes: channel.nodes(3, 'handover-test-key-0123456789'), tag: channel.tag })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const [p1, p2] = cluster.nodes.map((n) => n.pods[0])
  if (await until(async () => (await channel.peersOf(n2)).includes('n1'), 10_000) < 0) t.fail('n2 learns n1 over the channel')
  const flood = pingFlood(p2.ns, p1.ip, join(cluster.dir, 'flood.log'), PING_INTERVAL_S)
  await sleep(300)
  for (let i = 1; i <= 3; i++) t.equal((await cluster.handOver(n1)).code, 0, `handover ${i}: the old daemon exits 0`)
  const { sent, lost } = await flood.stop()
  t.same(lost, [], `no ping lost of ${sent}: n2 never withdrew n1 (no channel leave)`)
  t.ok(await until(async () => (await channel.peersOf(n2)).includes('n1'), 5_000) >= 0, 'n2 still lists n1, from the last successor')
  t.ok(await ping(p2, p1.ip), 'n2 -> n1 after')
})
