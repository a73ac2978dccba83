// The control channel's seeds die (issue 6, "the channel's seeds die"): 6 namespace
// nodes joined through two seeds (n1, n2). Both seeds get kill -9; pod traffic among
// the survivors flows on without a lost ping and they keep each other. The seeds come
// back: the survivors reconnect and both sides resync, and a node joining through the
// seeds afterwards is learned by everyone and reaches every pod.
import t from 'tap'
import { once } from 'node:events'
import { queryControl } from '../../src/control-socket.js'
import type { LabNode } from '../../src/lab/cluster.js'
import { labTools, ping, withCluster } from '../lib/lab.js'
import { channelLab } from '../lib/channel.js'
import { until } from '../../src/lab/until.js'
import { steadyPing } from '../lib/echo.js'

labTools('ping')

const KEY = 'integration-outage-key-7d2e1b'
const N = 6
const channel = channelLab(t, 'co')
const { tag, sock, peersOf } = channel

t.test('channel seeds killed: survivors forward on, then reconnect and resync', async (t) => {
  const nodes = channel.nodes(N, KEY)
  const cluster = await withCluster(t, { nodes, tag })
  if (!cluster) return
  const [n1, n2, n3, n4, n5, n6] = cluster.nodes
  const seeds = [n1, n2]
  const survivors = [n3, n4, n5]
  const names = (ns: LabNode[]): string[] => ns.map((n) => n.name).sort()
  const hasAll = async (n: LabNode, want: LabNode[]): Promise<boolean> => {
    const have = await peersOf(n)
    return want.every((m) => m === n || have.includes(m.name))
  }

  t.ok(await until(async () => {
    for (const n of cluster.nodes) if ((await peersOf(n)).length !== N - 1) return false
    return true
  }, 5000, 20) >= 0, 'full mesh: every node has the other 5')

  // n6 leaves now, to join through the seeds once they are back.
  await cluster.stopDaemon(n6)
  t.ok(await until(async () => {
    for (const n of cluster.nodes.slice(0, 5)) if ((await peersOf(n)).includes('n6')) return false
    return true
  }, 3000, 20) >= 0, 'n6 left')

  // Survivor pod traffic runs across the whole outage, past the 3 s dead-after.
  const flows = [steadyPing(n3.pods[0], n4.pods[0].ip, 7), steadyPing(n4.pods[0], n5.pods[0].ip, 7),
    steadyPing(n5.pods[0], n3.pods[0].ip, 7)]
  await new Promise((resolve) => setTimeout(resolve, 500))
  const killedAt = Date.now()
  for (const s of seeds) s.daemon?.kill('SIGKILL')
  for (const s of seeds) if (s.daemon?.exitCode === null && s.daemon.signalCode === null) await once(s.daemon, 'exit')
  const withdrawn = await until(async () => {
    for (const n of survivors) if ((await peersOf(n)).some((p) => p === 'n1' || p === 'n2')) return false
    return true
  }, 8000, 50)
  t.ok(withdrawn >= 0, `the dead seeds withdrawn on every survivor ${Date.now() - killedAt} ms after kill -9`)
  for (const n of survivors) t.same(await peersOf(n), names(survivors.filter((m) => m !== n)), `${n.name} keeps the other survivors`)
  const results = await Promise.all(flows)
  for (const [i, [sent, received]] of results.entries()) {
    t.ok(sent > 100 && sent - received <= 1, `survivor flow ${i + 1} through the outage: ${received}/${sent} answered`)
  }
  t.comment(`seed outage: survivor flows ${results.map(([s, r]) => `${r}/${s}`).join(', ')}; seeds withdrawn after ${withdrawn} ms of polling`)

  // The seeds come back (new incarnations, empty tables): everyone reconnects and resyncs.
  const restartedAt = Date.now()
  for (const s of seeds) await cluster.startDaemon(s)
  const readyAt = Date.now()
  const resynced = await until(async () => {
    for (const n of cluster.nodes.slice(0, 5)) if (!(await hasAll(n, cluster.nodes.slice(0, 5)))) return false
    return true
  }, 8000, 20)
  t.ok(resynced >= 0, `seeds and survivors know each other again ${resynced} ms after the seeds were ready (start to ready ${readyAt - restartedAt} ms)`)
  for (const s of seeds) {
    const stats = await queryControl(sock(s.index), 'stats')
    const ch = (stats.sources as Record<string, Record<string, number>>).channel
    t.ok(ch.connections >= 4, `${s.name}: ${ch.connections} channel connections after restart`)
  }
  t.ok(await ping(n3.pods[0], n1.pods[0].ip), 'survivor -> restarted seed: ping')
  t.ok(await ping(n2.pods[0], n5.pods[0].ip), 'restarted seed -> survivor: ping')

  // A node joining through the seeds now is learned by all.
  const joinStart = Date.now()
  await cluster.startDaemon(n6)
  const learned = await until(async () => {
    if ((await peersOf(n6)).length !== N - 1) return false
    for (const n of cluster.nodes.slice(0, 5)) if (!(await peersOf(n)).includes('n6')) return false
    return true
  }, 5000, 20)
  t.ok(learned >= 0 && learned < 2000, `n6 joined through the seeds, learned by all ${learned} ms after ready (${Date.now() - joinStart} ms from spawn)`)
  const pings = await Promise.all(cluster.nodes.slice(0, 5).map(async (m) =>
    [m.name, await ping(n6.pods[0], m.pods[0].ip, 1), await ping(m.pods[0], n6.pods[0].ip, 1)] as const))
  for (const [name, out, back] of pings) t.ok(out && back, `n6 <-> ${name}: ping both ways`)
  t.comment(`seeds back: resync ${resynced} ms after ready; newcomer learned by all ${learned} ms after ready`)
})
