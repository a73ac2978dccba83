// The Kubernetes source (the official client's informer) against a fake API server
// speaking the real list/watch protocol: nodes with flatnet annotations become peers,
// the daemon annotates its own Node, adds/updates/deletes flow through, a bookmark
// changes nothing, and a 410 Gone after a compaction relists (missing deletes too);
// WireGuard public keys go out and come in with the same annotations, and with flannel's; a
// patch refused at start is retried.
import t, { type Test } from 'tap'
import { until } from '../../src/lab/until.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { ANNOTATION, KubernetesSource } from '../../src/control/kubernetes.js'
import { FLANNEL } from '../../src/control/kube-node.js'
import { fromWire } from '../../src/control/vtep.js'
import { PeerTable } from '../../src/peer-table.js'
import { parseCidr, type Cidr } from '../../src/net/cidr.js'
import { formatMac } from '../../src/net/mac.js'
import { FakeKubeApi, kubeconfigFor } from '../fixtures/fake-kube-api.js'
import { formatKey, generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

const ann = (i: number): Record<string, string> => ({ [ANNOTATION.mac]: `02:00:00:00:02:0${i}`, [ANNOTATION.port]: '8472', [ANNOTATION.vni]: '1' })

/** The project's list/watch server and a kubeconfig for it, both gone at the test's end. */
async function kubeLab (t: Test): Promise<{ api: FakeKubeApi, kubeconfig: string }> {
  const api = new FakeKubeApi()
  const server = await api.start()
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-kube-'))
  t.teardown(async () => { await api.stop(); rmSync(dir, { recursive: true, force: true }) })
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, kubeconfigFor(server))
  return { api, kubeconfig }
}

t.test('nodes as peers through list/watch, annotations, 410 relist', async (t) => {
  const { api, kubeconfig } = await kubeLab(t)

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
  t.equal(formatMac(table.list()[0].vtepMAC as Buffer), '02:00:00:00:02:06')
})

t.test('WireGuard public keys: written with the VTEP annotations, read from peers, a rotation updates the peer in place', async (t) => {
  const { api, kubeconfig } = await kubeLab(t)
  const [own, k2, k2rotated] = [0, 1, 2].map(() => publicKeyOf(generatePrivateKey()))
  api.put(api.node('k1', ['10.244.1.0/24'], '192.0.2.1'))
  api.put(api.node('k2', ['10.244.2.0/24'], '192.0.2.2', { ...ann(2), [ANNOTATION.wgKey]: formatKey(k2) }))
  api.put(api.node('k3', ['10.244.3.0/24'], '192.0.2.3', ann(3))) // encryption none, or an older flatnet
  // A node of flannel's wireguard backend, annotated as flannel's kube subnet manager does.
  const k4 = publicKeyOf(generatePrivateKey())
  api.put(api.node('k4', ['10.244.4.0/24'], '192.0.2.4', {
    [FLANNEL.managed]: 'true', [FLANNEL.type]: 'wireguard', [FLANNEL.ip]: '192.0.2.4', [FLANNEL.data]: JSON.stringify({ PublicKey: formatKey(k4), Port: 51820 }),
  }))

  const rekeyed: string[] = []
  const table = new PeerTable({ setTable: () => {}, updatePeers: () => {} }, [parseCidr('10.244.1.0/24') as Cidr],
    { self: 'k1', vni: 1, encryption: { strict: false, publicKey: own, port: 51820 } })
  table.onChange((_changed, _removed, r) => rekeyed.push(...r.map((p) => p.nodeName)))
  const base = fromWire({ node: 'k1', cidrs: ['10.244.1.0/24'], addr: '192.0.2.1', port: 8472, vni: 1, mac: '02:00:00:00:02:01', ver: 0 }, 'kubernetes')
  if (typeof base === 'string') throw new Error(base)
  const source = new KubernetesSource({ kubeconfig, annotate: true }, { ...base, wgKey: own, wgPort: 51820 }, pino({ level: 'silent' }))
  await source.start(table)
  t.teardown(() => source.stop())

  const states = (): string => table.list().map((p) => `${p.nodeName}:${table.encryptionOf(p) ?? '-'}`).sort().join()
  t.ok(await until(() => states() === 'k2:wireguard,k3:plain,k4:wireguard', 3000) >= 0, `k2 with its key, k3 without, flannel's k4 with its key (${states()})`)
  t.same(table.get('k2')?.wgKey, k2)
  t.same(table.get('k4')?.wgKey, k4)
  t.equal(table.get('k4')?.vtepMAC, undefined, 'flannel\'s k4: no VTEP, WireGuard only')
  t.ok(await until(() => api.nodes.get('k1')?.metadata.annotations[ANNOTATION.wgKey] === formatKey(own), 3000) >= 0,
    'own Node annotated with flatnet.io/wg-public-key')
  const mine = api.nodes.get('k1')?.metadata.annotations ?? {}
  t.equal(mine[FLANNEL.type], 'wireguard', 'and with flannel\'s, for flannel\'s nodes')
  t.same(JSON.parse(mine[FLANNEL.data]), { PublicKey: formatKey(own), Port: 51820 })
  t.equal(mine[FLANNEL.ip], '192.0.2.1')

  api.put(api.node('k2', ['10.244.2.0/24'], '192.0.2.2', { ...ann(2), [ANNOTATION.wgKey]: formatKey(k2rotated) }))
  t.ok(await until(() => table.get('k2')?.wgKey?.equals(k2rotated) === true, 3000) >= 0, 'k2 rotated its key: the new one')
  t.same(rekeyed, ['k2'], 'updated in place, reported as rekeyed (not removed and re-added)')
  api.put(api.node('k3', ['10.244.3.0/24'], '192.0.2.3', { ...ann(3), [ANNOTATION.wgKey]: 'not-a-key' }))
  t.ok(await until(() => !states().includes('k3'), 3000) >= 0, 'a malformed key refuses the node')
  t.ok(source.stats().skipped >= 1)

  // The node restarts with encryption none: its old key must not stay for peers to encrypt to.
  await source.stop()
  const plain = new KubernetesSource({ kubeconfig, annotate: true }, base, pino({ level: 'silent' }))
  await plain.start(new PeerTable({ setTable: () => {}, updatePeers: () => {} }, [parseCidr('10.244.1.0/24') as Cidr], { self: 'k1', vni: 1 }))
  t.teardown(() => plain.stop())
  t.ok(await until(() => api.nodes.get('k1')?.metadata.annotations[ANNOTATION.wgKey] === undefined, 3000) >= 0, 'the key annotation removed')
  t.equal(api.nodes.get('k1')?.metadata.annotations[ANNOTATION.mac], '02:00:00:00:02:01', 'the VTEP\'s stay')
  t.same(JSON.parse(api.nodes.get('k1')?.metadata.annotations[FLANNEL.data] ?? '{}'), { VNI: 1, VtepMAC: '02:00:00:00:02:01' }, 'flannel\'s say vxlan now')
})

t.test('a Node that cannot be annotated yet (here: not registered) is annotated once it can be', async (t) => {
  const { api, kubeconfig } = await kubeLab(t)
  const self = fromWire({ node: 'k1', cidrs: ['10.244.1.0/24'], addr: '192.0.2.1', port: 8472, vni: 1, mac: '02:00:00:00:02:01', ver: 0 }, 'kubernetes')
  if (typeof self === 'string') throw new Error(self)
  const source = new KubernetesSource({ kubeconfig, annotate: true }, self, pino({ level: 'silent' }))
  await source.start(new PeerTable({ setTable: () => {}, updatePeers: () => {} }, [parseCidr('10.244.1.0/24') as Cidr], { self: 'k1', vni: 1 }))
  t.teardown(() => source.stop())
  t.ok(await until(() => api.requests.some((r) => r.startsWith('PATCH /api/v1/nodes/k1/status')), 3000) >= 0, 'a first patch, refused (404)')
  api.put(api.node('k1', ['10.244.1.0/24'], '192.0.2.1'))
  t.ok(await until(() => api.nodes.get('k1')?.metadata.annotations[ANNOTATION.mac] === '02:00:00:00:02:01', 10_000) >= 0, 'retried: annotated')
})
