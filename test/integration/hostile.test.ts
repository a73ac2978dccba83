// Hostile and malformed datagrams at a flatnet VTEP: each is dropped and counted
// under its reason, none reaches a pod or the host, and pod traffic keeps flowing.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { vxlanFrame, ipv4Udp } from '../lib/frames.js'
import { labTools, ping, withCluster } from '../lib/lab.js'

labTools('ping')

const SEND = fileURLToPath(new URL('../fixtures/send-udp.mjs', import.meta.url))

t.test('hostile datagrams are dropped, counted by reason, and harmless', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const victimPod = n1.pods[0].ip // 10.244.1.10
  const peerPod = n2.pods[0].ip // 10.244.2.10
  const good = { vni: 1, dstMac: n1.vtepMAC, srcMac: n2.vtepMAC }
  const frame = (over: Partial<Parameters<typeof vxlanFrame>[0]> = {}): string =>
    vxlanFrame({ ...good, inner: ipv4Udp(peerPod, victimPod, 9, Buffer.from('hostile')), ...over }).toString('hex')
  // An address on the underlay that is no peer's VTEP.
  n2.ns.ip('addr', 'add', '192.168.77.99/24', 'dev', 'eth0')

  const sends: Array<[string, string, string[]]> = [
    ['too_short', n2.underlayIP, ['0800000000000100', '']],
    // Empty datagrams, from a peer above and from a stranger here: nothing to split by.
    ['too_short', '192.168.77.99', ['']],
    ['bad_flags', n2.underlayIP, [frame({ flags: 0 })]],
    ['wrong_vni', n2.underlayIP, [frame({ vni: 42 })]],
    ['unknown_peer', '192.168.77.99', [frame()]],
    ['wrong_dst_mac', n2.underlayIP, [frame({ dstMac: '02:11:22:33:44:55' })]],
    ['not_ip', n2.underlayIP, [frame({ ethType: 0x0806 })]],
    ['bad_inner_ip', n2.underlayIP, [frame({ inner: Buffer.from('45000fff0000', 'hex').toString('hex').padEnd(80, '0') })]],
    // n2 claims a source in n3's pod CIDR.
    ['spoofed_source', n2.underlayIP, [frame({ inner: ipv4Udp('10.244.3.10', victimPod, 9, Buffer.from('spoof')) })]],
    // Relaying through n1 to another node, or into n1's host itself.
    ['foreign_destination', n2.underlayIP, [
      frame({ inner: ipv4Udp(peerPod, '10.244.3.10', 9, Buffer.from('relay')) }),
      frame({ inner: ipv4Udp(peerPod, n1.underlayIP, 9, Buffer.from('host')) }),
    ]],
  ]
  for (const [, from, payloads] of sends) {
    await n2.ns.execAsync(process.execPath, [SEND, from, n1.underlayIP, '8472', ...payloads])
  }
  t.ok(await ping(n2.pods[0], victimPod), 'pod traffic flows after the hostile datagrams')
  const { code } = await cluster.stopDaemon(n1)
  t.equal(code, 0, 'the daemon survived and stopped cleanly')
  const stopped = cluster.log(n1).split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === 'stopped')
  const expected = new Map<string, number>()
  for (const [reason, , payloads] of sends) expected.set(reason, (expected.get(reason) ?? 0) + payloads.length)
  for (const [reason, n] of expected) t.equal(stopped.drops[reason], n, `${reason}: ${n} dropped and counted`)
})
