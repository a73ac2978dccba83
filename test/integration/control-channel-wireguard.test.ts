// WireGuard public keys over the control channel, on 3 namespace nodes: two with encryption
// "wireguard" (each its own key file, generated at first start), one without. Each encrypting
// node lists the other with the key in the other's file and state `wireguard`, and the keyless
// node as `plain`; the keyless node lists nothing about encryption. Pods reach each other both
// ways: sealed between the two that encrypt, VXLAN to the keyless one. A restart keeps the key.
import t from 'tap'
import { pingFrom } from '../lib/echo.js'
import { until } from '../../src/lab/until.js'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { LabNode } from '../../src/lab/cluster.js'
import { readKey } from '../../src/wireguard/key-file.js'
import { formatKey, publicKeyOf } from '../../src/wireguard/keys.js'
import { withCluster } from '../lib/lab.js'
import { channelLab } from '../lib/channel.js'

const KEY = 'integration-cluster-key-7d2e51'
// Namespaces flatnet-wgc-...: this test's alone.
const channel = channelLab(t, 'wgc-')
const { tag, state, sock } = channel

interface PeerRow { nodeName: string, encryption?: string, wireguardPublicKey?: string }

const keyFile = (i: number): string => join(state, `n${i}.wireguard.key`)
const publicKey = (i: number): string => formatKey(publicKeyOf(readKey(keyFile(i)) as Buffer))
const rows = async (n: LabNode): Promise<PeerRow[]> => ((await queryControl(sock(n.index), 'peers')).peers as PeerRow[])
  .map(({ nodeName, encryption, wireguardPublicKey }) => ({ nodeName, encryption, wireguardPublicKey }))
  .sort((a, b) => a.nodeName.localeCompare(b.nodeName))

t.test('keys published over the channel: wireguard between the two that encrypt, plain to the one that does not', async (t) => {
  const nodes = channel.nodes(3, KEY).map((spec, i) => i === 2
    ? spec
    : { ...spec, extra: { ...spec.extra, encryption: 'wireguard', wireguard: { privateKeyFile: keyFile(i + 1) } } })
  const cluster = await withCluster(t, { nodes, tag })
  if (!cluster) return
  const [n1, n2, n3] = cluster.nodes
  t.not(publicKey(1), publicKey(2), 'each node generated its own key')

  const want = {
    n1: [{ nodeName: 'n2', encryption: 'wireguard', wireguardPublicKey: publicKey(2) }, { nodeName: 'n3', encryption: 'plain', wireguardPublicKey: undefined }],
    n2: [{ nodeName: 'n1', encryption: 'wireguard', wireguardPublicKey: publicKey(1) }, { nodeName: 'n3', encryption: 'plain', wireguardPublicKey: undefined }],
    n3: [{ nodeName: 'n1', encryption: undefined, wireguardPublicKey: undefined }, { nodeName: 'n2', encryption: undefined, wireguardPublicKey: undefined }],
  }
  const converged = async (): Promise<boolean> => {
    for (const n of [n1, n2, n3]) if (JSON.stringify(await rows(n)) !== JSON.stringify(want[n.name as keyof typeof want])) return false
    return true
  }
  t.ok(await until(converged, 10_000, 50) >= 0, 'every node lists the others as expected')
  for (const n of [n1, n2, n3]) t.same(await rows(n), want[n.name as keyof typeof want], `${n.name}'s peers`)

  const status = await queryControl(sock(1), 'status')
  t.same(status.encryption, { mode: 'wireguard', publicKey: publicKey(1), port: 51820, strict: false, peers: { wireguard: 1, plain: 1, blocked: 0 } },
    'n1\'s status: its own key and the peers by state')
  t.equal((await queryControl(sock(3), 'status')).encryption, undefined, 'n3 (encryption none): nothing about encryption')
  t.match(cluster.log(n1), new RegExp(`"publicKey":"${publicKey(1).replace(/[+/]/g, '\\$&')}".*"msg":"generated this node's WireGuard key"`), 'the new key logged once')
  t.match(cluster.log(n1), new RegExp(`"wireguardPublicKey":"${publicKey(1).replace(/[+/]/g, '\\$&')}".*"msg":"ready"`), 'the ready line names the public key')

  for (const [from, to] of [[n1, n2], [n2, n1], [n1, n3], [n3, n2]]) {
    t.ok(await pingFrom(from.pods[0].ns, to.pods[0].ip, 3), `${from.name} -> ${to.name}: ping`)
  }
  const stats = await queryControl(sock(1), 'stats') as { wireguard: { sessions: number }, stats: { drops: Record<string, number> } }
  t.ok(stats.wireguard.sessions >= 1, `n1 made a WireGuard session (${stats.wireguard.sessions})`)

  await t.test('a restart keeps the key: the file is read, not replaced', async (t) => {
    const before = publicKey(2)
    await cluster.stopDaemon(n2)
    await cluster.startDaemon(n2)
    t.equal(publicKey(2), before)
    t.ok(await until(async () => (await rows(n1)).find((p) => p.nodeName === 'n2')?.wireguardPublicKey === before, 10_000, 50) >= 0,
      'n1 lists n2 with the same key after its restart')
    t.equal(cluster.log(n2).split('generated this node\'s WireGuard key').length - 1, 1, 'generated once, on the first start only')
  })
})
