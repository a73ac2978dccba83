// The kubelet's side of pod networking, on real parts: each flatnet node writes its
// conflist once ready, and the reference CNI plugins (bridge, host-local, portmap
// from /usr/lib/cni) run from it exactly as libcni would, ADD/CHECK/DEL against pod
// namespaces. Pods then reach each other across nodes with their own IPs, and
// DEL leaves no veth and no IPAM reservation behind.
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CLUSTER_CIDR, type LabNode, type Pod } from '../../src/lab/cluster.js'
import { type Attachment, CniRuntime } from '../lib/cni.js'
import { labTools, ping, startPeerEcho, tcpSeenAs, withCluster } from '../lib/lab.js'
import { pingFrom } from '../lib/echo.js'
import { seenAs, startEcho } from '../../src/lab/traffic.js'
import type { Namespace } from '../../src/lab/netns.js'

labTools('ping', 'cni-plugins')

t.test('3 flatnet nodes, pods wired by the reference CNI plugins', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet' }], cniPods: true })
  if (!cluster) return
  const conflistOf = (n: LabNode): string => join(n.cniDir, 'net.d', '10-flatnet.conflist')

  for (const n of cluster.nodes) {
    t.match(cluster.log(n), new RegExp(`"cni":"${conflistOf(n)}"`), `${n.name}: ready line names the conflist`)
    const conf = JSON.parse(readFileSync(conflistOf(n), 'utf8'))
    const [bridge, portmap, guard] = conf.plugins
    t.match(conf, { cniVersion: '1.0.0', name: 'flatnet' }, `${n.name}: conflist header`)
    t.match(bridge, { type: 'bridge', bridge: 'cni0', isGateway: true, hairpinMode: true, ipMasq: false, mtu: 1450 },
      `${n.name}: bridge plugin, MTU = underlay 1500 - 50`)
    t.same(bridge.ipam.ranges, [[{ subnet: n.podCIDR, gateway: n.podCIDR.replace('.0/24', '.1') }]], `${n.name}: host-local range`)
    t.equal(bridge.ipam.dataDir, join(n.cniDir, 'ipam'), `${n.name}: IPAM data inside the cluster's dir`)
    t.match(portmap, { type: 'portmap', capabilities: { portMappings: true } }, `${n.name}: portmap`)
    t.same(guard, { type: 'flatnet-cni', socket: join(cluster.dir, `${n.name}-cni.sock`) }, `${n.name}: flatnet-cni last, naming the daemon's socket`)
    t.equal(readFileSync(join(n.cniDir, 'subnet.env'), 'utf8'),
      `FLATNET_NETWORK=${CLUSTER_CIDR}\nFLATNET_SUBNET=${n.podCIDR.replace('.0/24', '.1/24')}\nFLATNET_MTU=1450\nFLATNET_IPMASQ=true\n`,
      `${n.name}: subnet.env`)
  }

  const attached: Array<{ node: LabNode, cni: CniRuntime, a: Attachment, pod: Pod }> = []
  for (const n of cluster.nodes) {
    const cni = new CniRuntime(n.ns, conflistOf(n))
    for (let j = 1; j <= 2; j++) {
      const ns = cluster.ns(`${n.name}c${j}`)
      const a = { containerId: `${n.name}-pod${j}-${cluster.tag}`, netns: `/var/run/netns/${ns.name}`, ifname: 'eth0' }
      const result = await cni.add(a)
      const ip = result.ips?.find((x) => !x.address.includes(':'))
      t.ok(ip, `${n.name} pod${j}: ADD returned an IPv4 address`)
      const addr = (ip?.address ?? '').split('/')[0]
      t.equal(ip?.address, `${addr}/24`, `${n.name} pod${j}: ${addr} in ${n.podCIDR}`)
      t.ok(addr.startsWith(n.podCIDR.replace('0/24', '')), `${n.name} pod${j}: address from this node's pod CIDR`)
      t.equal(ip?.gateway, n.podCIDR.replace('.0/24', '.1'), `${n.name} pod${j}: gateway .1`)
      const link = JSON.parse(ns.ip('-j', 'addr', 'show', 'dev', 'eth0'))[0]
      t.equal(link.mtu, 1450, `${n.name} pod${j}: eth0 MTU 1450`)
      t.ok(link.addr_info.some((x: { local: string }) => x.local === addr), `${n.name} pod${j}: eth0 holds ${addr}`)
      t.match(ns.ip('route', 'show', 'default'), `default via ${n.podCIDR.replace('.0/24', '.1')}`, `${n.name} pod${j}: default route`)
      await cni.check(a)
      t.pass(`${n.name} pod${j}: CHECK passes`)
      attached.push({ node: n, cni, a, pod: { ns, ip: addr } })
    }
  }
  t.equal(new Set(attached.map((x) => x.pod.ip)).size, attached.length, 'every pod got its own address')

  // Every pod to one pod on each other node, and to its neighbour on the same node.
  attached.forEach((x) => startPeerEcho(x.pod))
  for (const from of attached) {
    for (const to of attached) {
      if (from === to) continue
      if (from.node !== to.node && to.a.containerId.includes('pod2')) continue // one pod per remote node is enough
      const pair = `${from.a.containerId} -> ${to.a.containerId}`
      t.ok(await ping(from.pod, to.pod.ip), `${pair}: ping ${to.pod.ip}`)
      t.equal(await tcpSeenAs(from.pod, to.pod), from.pod.ip, `${pair}: TCP, receiver sees the sender's pod IP`)
    }
  }

  for (const x of attached) {
    const hostSide = vethsOnBridge(x.node)
    t.ok(reservations(x.node).includes(x.pod.ip), `${x.a.containerId}: ${x.pod.ip} reserved before DEL`)
    await x.cni.del(x.a)
    t.equal(vethsOnBridge(x.node).length, hostSide.length - 1, `${x.a.containerId}: DEL removed the host veth`)
    t.notOk(x.pod.ns.ip('link').includes('eth0'), `${x.a.containerId}: DEL removed eth0 from the pod`)
    t.notOk(reservations(x.node).includes(x.pod.ip), `${x.a.containerId}: DEL released ${x.pod.ip}`)
    await x.cni.del(x.a) // the runtime may repeat DEL; it must succeed
  }
  for (const n of cluster.nodes) {
    t.same(vethsOnBridge(n), [], `${n.name}: no veth left on cni0`)
    t.same(reservations(n), [], `${n.name}: no IPAM reservation left`)
  }
})

t.test('dual-stack pods from the CNI plugins over an IPv6 underlay', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }], cniPods: true, dualStack: true, ipv6Underlay: true })
  if (!cluster) return
  const pods: Array<{ node: LabNode, cni: CniRuntime, a: Attachment, ns: Namespace, v4: string, v6: string }> = []
  for (const n of cluster.nodes) {
    const file = join(n.cniDir, 'net.d', '10-flatnet.conflist')
    const bridge = JSON.parse(readFileSync(file, 'utf8')).plugins[0]
    t.equal(bridge.mtu, 1430, `${n.name}: MTU = 1500 - 70 on an IPv6 underlay`)
    t.same(bridge.ipam.ranges, [[{ subnet: n.podCIDR, gateway: n.podCIDR.replace('.0/24', '.1') }],
      [{ subnet: n.podCIDR6, gateway: n.podCIDR6?.replace('::/64', '::1') }]], `${n.name}: one range per family`)
    t.same(bridge.ipam.routes, [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], `${n.name}: a default route per family`)
    const cni = new CniRuntime(n.ns, file)
    const ns = cluster.ns(`${n.name}c1`)
    const a = { containerId: `${n.name}-ds-${cluster.tag}`, netns: `/var/run/netns/${ns.name}`, ifname: 'eth0' }
    const result = await cni.add(a)
    const v4 = result.ips?.find((x) => !x.address.includes(':'))?.address.split('/')[0] ?? ''
    const v6 = result.ips?.find((x) => x.address.includes(':'))?.address.split('/')[0] ?? ''
    t.ok(v4.startsWith(n.podCIDR.replace('0/24', '')), `${n.name}: IPv4 ${v4} from ${n.podCIDR}`)
    t.ok(v6.startsWith(n.podCIDR6?.replace('::/64', '::') ?? '-'), `${n.name}: IPv6 ${v6} from ${n.podCIDR6 ?? ''}`)
    await cni.check(a)
    t.pass(`${n.name}: CHECK passes`)
    pods.push({ node: n, cni, a, ns, v4, v6 })
    startEcho(ns)
  }
  for (const [from, to] of [[pods[0], pods[1]], [pods[1], pods[0]]]) {
    for (const [src, dst] of [[from.v4, to.v4], [from.v6, to.v6]]) {
      // The bridge plugin leaves DAD on in the pod: its IPv6 address may be tentative for a moment.
      let ok = false
      for (let i = 0; i < 10 && !ok; i++) ok = await pingFrom(from.ns, dst, 1)
      t.ok(ok, `${from.node.name} -> ${to.node.name}: ping ${dst}`)
      t.equal(await seenAs(from.ns, dst), src, `${from.node.name} -> ${to.node.name}: TCP to ${dst}, seen as ${src}`)
    }
  }
  for (const p of pods) {
    await p.cni.del(p.a)
    t.same(vethsOnBridge(p.node), [], `${p.node.name}: DEL removed the veth`)
    t.same(reservations(p.node), [], `${p.node.name}: DEL released both addresses`)
  }
})

function vethsOnBridge (n: LabNode): string[] {
  return (JSON.parse(n.ns.ip('-j', 'link', 'show', 'master', 'cni0')) as Array<{ ifname: string }>).map((l) => l.ifname)
}

/** host-local keeps one file per reserved address in <dataDir>/<network name>/. */
function reservations (n: LabNode): string[] {
  const dir = join(n.cniDir, 'ipam', 'flatnet')
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((f) => /^[0-9a-f.:]+$/.test(f)) // not lock, last_reserved_ip.0
}
