// The Kubernetes source (the official client's informer) against a fake API server
// speaking the real list/watch protocol: nodes with flatnet annotations become peers,
// the daemon annotates its own Node, adds/updates/deletes flow through, a bookmark
// changes nothing, and a 410 Gone after a compaction relists (missing deletes too).
import t from 'tap'
import { until } from '../../src/lab/until.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { ANNOTATION, KubernetesSource } from '../../src/control/kubernetes.js'
import { fromWire } from '../../src/control/vtep.js'
import { PeerTable } from '../../src/peer-table.js'
import { parseCidr, type Cidr } from '../../src/net/cidr.js'
import { formatMac } from '../../src/net/mac.js'
import { FakeKubeApi, kubeconfigFor } from '../fixtures/fake-kube-api.js'

const ann = (i: number): Record<string, string> => ({ [ANNOTATION.mac]: `02:00:00:00:02:0${i}`, [ANNOTATION.port]: '8472', [ANNOTATION.vni]: '1' })

t.test('nodes as peers through list/watch, annotations, 410 relist', async (t) => {
  const api = new FakeKubeApi()
  const server = await api.start()
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-kube-'))
  t.teardown(async () => { await api.stop(); rmSync(dir, { recursive: true, force: true }) })
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, kubeconfigFor(server))

  api.put(api.node('k1', ['10.244.1.0/24'], '192.0.2.1')) // this node: no annotations yet
  api.put(api.node('k2', ['10.244.2.0/24', 'fd00:10:244:2::/64'], '192.0.2.2', ann(2)))
  api.put(api.node('k3', ['10.244.3.0/24'], '192.0.2.3', ann(3)))
  api.put(api.node('k4', ['10.244.4.0/24'], '192.0.2.4')) // runs no flatnet: not a peer

  const table = new PeerTable({ setTable: () => {}, updatePeers: () => {} }, [parseCidr('10.244.1.0/24') as Cidr], { self: 'k1', vni: 1 })
  const self = fromWire({ node: 'k1', cidrs: ['10.244.1.0/24'], addr: '192.0.2.1', port: 8472, vni: 1, mac: '02:00:00:00:02:01', ver: 0 }, 'kubernetes')
  if (typeof self === 'string') throw new Error(self)
  const source = new KubernetesSource({ kubeconfig, annotate: true }, self, pino({ level: 'silent' }))
  await source.start(table)
  t.teardown(() => source.stop())
  const names = (): string => table.list().map((p) => p.nodeName).sort().join()

  t.ok(await until(() => names() === 'k2,k3', 3000) >= 0, `listed: k2 and k3 are peers, k4 (no annotations) is not (${names()})`)
  const k2 = table.list().find((p) => p.nodeName === 'k2')
  t.equal(k2?.podCIDRs.length, 2, 'dual-stack podCIDRs')
  t.equal(k2?.source, 'kubernetes')
  t.ok(await until(() => api.nodes.get('k1')?.metadata.annotations[ANNOTATION.mac] === '02:00:00:00:02:01', 3000) >= 0,
    'own Node annotated with the VTEP MAC (merge patch)')

  api.put(api.node('k5', ['10.244.5.0/24'], '192.0.2.5', ann(5)))
  t.ok(await until(() => names() === 'k2,k3,k5', 2000) >= 0, 'ADDED')
  api.put(api.node('k2', ['10.244.2.0/24'], '192.0.2.22', ann(2)))
  t.ok(await until(() => table.list().find((p) => p.nodeName === 'k2')?.address.bytes[3] === 22, 2000) >= 0, 'MODIFIED: new InternalIP')
  api.delete('k3')
  t.ok(await until(() => names() === 'k2,k5', 2000) >= 0, 'DELETED')
  const before = names()
  api.bookmark()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(names(), before, 'BOOKMARK changes nothing')

  // History compacted, and the watch dropped: the informer's resume gets 410 and relists.
  api.delete('k5') // seen only by the relist
  api.put(api.node('k6', ['10.244.6.0/24'], '192.0.2.6', ann(6)))
  await new Promise((resolve) => setTimeout(resolve, 100))
  api.compact()
  api.delete('k2') // happens while nobody watches
  api.closeWatches()
  t.ok(await until(() => names() === 'k6', 5000) >= 0, `after 410 Gone: relisted (${names()})`)
  t.ok(api.requests.filter((r) => r.startsWith('GET /api/v1/nodes?') || r === 'GET /api/v1/nodes').length >= 2, 'listed again')
  t.equal(formatMac(table.list()[0].vtepMAC), '02:00:00:00:02:06')
})
