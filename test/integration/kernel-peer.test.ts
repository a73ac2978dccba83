// A kernel vxlan peer on a virtual underlay, as flannel's nodes run on a veth or
// between VMs on virtio-net: its offloads stay on, so the inner TCP and UDP checksums
// it sends are partial (the pseudo-header sum only, CHECKSUM_PARTIAL). flatnet must
// finish them — the kernel does, through a NEEDS_CSUM vnet header, with offloads on;
// flatnet itself with them off — and deliver the data intact both ways. And the two finding
// each other through their Node annotations, as the DaemonSet and flannel's vxlan backend do.
import t from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { DataplaneStats } from '../../src/native.js'
import { bulkTransfer, startSink, startUdpEcho, udpRoundTrips } from '../../src/lab/traffic.js'
import { FLANNEL } from '../../src/control/kube-node.js'
import { until } from '../../src/lab/until.js'
import { pingFrom } from '../lib/echo.js'
import { flannelAnnotations, withFlannelNode } from '../lib/kube.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('ethtool')

for (const offloads of [true, false]) {
  t.test(`kernel vxlan node with default offloads <-> flatnet (offloads ${offloads ? 'on' : 'off'}): intact both ways`, async (t) => {
    // Two nodes: a veth underlay, the topology where the kernel never finishes the checksum.
    const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', offloads, extra: { ipMasq: false } }, { kind: 'kernel-vxlan' }] })
    if (!cluster) return
    const [flat, kernel] = cluster.nodes
    const tx = kernel.ns.exec('ethtool', '-k', 'eth0').match(/tx-checksumming: (\w+)/)?.[1]
    t.equal(tx, 'on', 'the kernel node\'s underlay checksums in "hardware": nothing finishes them on a veth')
    const stats = async (): Promise<DataplaneStats> => ((await queryControl(join(cluster.dir, `${flat.name}.sock`), 'stats')) as unknown as { stats: DataplaneStats }).stats
    const [f, k] = [flat.pods[0], kernel.pods[0]]
    startSink(f.ns)
    startSink(k.ns)
    startUdpEcho(f.ns)
    const toFlat = await bulkTransfer(k.ns, f.ip, 32)
    t.ok(toFlat.intact, `kernel pod -> flatnet pod, TCP 32 MiB: content intact (sha256), ${toFlat.gbps.toFixed(2)} Gbit/s`)
    const toKernel = await bulkTransfer(f.ns, k.ip, 32)
    t.ok(toKernel.intact, `flatnet pod -> kernel pod, TCP 32 MiB: content intact (sha256), ${toKernel.gbps.toFixed(2)} Gbit/s`)
    const udp = await udpRoundTrips(k.ns, f.ip, 20, 5)
    t.equal(udp.received, udp.sent, `kernel pod -> flatnet pod, UDP: ${udp.received} of ${udp.sent} round trips answered`)
    const s = await stats()
    // Every datagram of the 20 round trips is partial at least; the TCP transfer adds its own.
    t.ok(s.rx.partialChecksums >= 20, `partial checksums received and finished: ${s.rx.partialChecksums}`)
    t.equal(s.drops.bad_checksum ?? 0, 0, 'none taken for bad checksums')
  })
}

t.test('a node of flannel\'s vxlan backend through the API server: each reads the other\'s Node annotations', async (t) => {
  const lab = await withFlannelNode(t, {
    kind: 'kernel-vxlan',
    tag: 'vxflannel',
    flannel: (_cluster, n2) => flannelAnnotations('vxlan', n2.underlayIP, { VNI: 1, VtepMAC: n2.vtepMAC }),
  })
  if (!lab) return
  const { n1, n2, annotations: a, peerRow } = lab
  // What flannel's nodes read of n1: the VTEP the lab gave n2's flannel.1 for n1 (its FDB and neighbour entries).
  t.same({ ip: a[FLANNEL.ip], data: JSON.parse(a[FLANNEL.data]) }, { ip: n1.underlayIP, data: { VNI: 1, VtepMAC: n1.vtepMAC } }, 'public-ip and backend-data: n1\'s VTEP')
  t.ok(await until(async () => (await peerRow()) !== undefined, 30_000) >= 0, 'n1 took n2 as a peer from its Node')
  t.match(await peerRow(), { nodeName: 'n2', source: 'kubernetes', vtepMAC: n2.vtepMAC }, 'at the VtepMAC of its backend-data')
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 3), 'n1 pod -> n2 pod: ping')
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 3), 'n2 pod -> n1 pod: ping')
})
