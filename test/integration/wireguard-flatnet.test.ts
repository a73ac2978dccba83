// flatnet nodes with encryption "wireguard" among themselves, on a bridge underlay: both worker
// layouts (n1 as the daemon picks, per-cpu here; n2 the pipeline) seal and open for each other;
// a node that publishes no key (n3) gets plain VXLAN from the others (a cluster mid-rollout), but
// none from n4, whose wireguard.strict drops what would go out unencrypted, counted.
import t from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import { bulkTransfer, startSink } from '../../src/lab/traffic.js'
import { pingFrom } from '../lib/echo.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('ping')

interface Stats { stats: { drops: Record<string, number> }, info: { workers: string }, wireguard?: { sessions: number } }

t.test('both layouts, a keyless node and a strict one', async (t) => {
  const cluster = await withCluster(t, {
    wireguard: true,
    nodes: [
      { kind: 'flatnet' },
      { kind: 'flatnet', extra: { workers: 'pipeline' } },
      { kind: 'flatnet', wireguard: false },
      { kind: 'flatnet', extra: { wireguard: { strict: true } } },
    ],
  })
  if (!cluster) return
  const [n1, n2, n3, n4] = cluster.nodes
  const stats = async (i: number): Promise<Stats> => await queryControl(join(cluster.dir, `n${i}.sock`), 'stats') as unknown as Stats
  t.equal((await stats(2)).info.workers, 'pipeline', 'n2 runs the pipeline')

  for (const [from, to] of [[n1, n2], [n2, n1], [n1, n4], [n4, n2]]) {
    t.ok(await pingFrom(from.pods[0].ns, to.pods[0].ip, 3), `${from.name} -> ${to.name}: ping, encrypted`)
  }
  startSink(n1.pods[0].ns)
  startSink(n2.pods[0].ns)
  for (const [from, to] of [[n1, n2], [n2, n1]]) {
    const r = await bulkTransfer(from.pods[0].ns, to.pods[0].ip, 64)
    t.ok(r.intact, `${from.name} (${(await stats(from.index)).info.workers}) -> ${to.name}: 64 MiB over TCP, sha256 intact`)
  }
  for (const [from, to] of [[n1, n3], [n3, n2]]) {
    t.ok(await pingFrom(from.pods[0].ns, to.pods[0].ip, 2), `${from.name} -> ${to.name}: ping, plain VXLAN (n3 has no key)`)
  }
  const before = (await stats(4)).stats.drops.wg_blocked
  t.notOk(await pingFrom(n4.pods[0].ns, n3.pods[0].ip, 2), 'n4 (strict) -> n3: nothing gets through')
  t.ok((await stats(4)).stats.drops.wg_blocked - before >= 2, 'n4 counted its pings as wg_blocked')
  for (const i of [1, 2, 4]) t.ok(((await stats(i)).wireguard?.sessions ?? 0) >= 1, `n${i} made WireGuard sessions`)
  t.equal((await stats(3)).wireguard, undefined, 'n3 runs no WireGuard')
})
