// Findings 3, 4 and 10 of the security review, on pods wired by the conflist as the
// kubelet's runtime wires them (bridge, host-local, portmap, flatnet-cni). A pod with
// NET_RAW (the runtimes' default) sends raw frames from its eth0: UDP with another pod's
// IPv4 and IPv6 source, to a pod on the other node (through the overlay, where the
// receiving node's check cannot tell: the address is the sending node's) and to one on
// its own bridge; an ARP reply and a neighbour advertisement claiming another pod's
// addresses to the node; a router advertisement to every pod. First with the guard's
// rules flushed (what the code before it did: each attack works), then with them in.
// Then a reboot: the conflist survives, the daemon is not running yet, a new pod is
// refused until it is.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import type { LabNode } from '../../src/lab/cluster.js'
import type { Namespace } from '../../src/lab/netns.js'
import { until } from '../../src/lab/until.js'
import { GUARD_TABLE } from '../../src/guard/port-guard.js'
import { type Attachment, CniError, CniRuntime } from '../lib/cni.js'
import { arpReplyFrame, neighbourAdvertFrame, routerAdvertFrame, udpFrame } from '../lib/frames.js'
import { labTools, withCluster } from '../lib/lab.js'
import { pingFrom } from '../lib/echo.js'
import { sendFramesFrom } from '../lib/testing-addon.js'

labTools('ping', 'cni-plugins', 'nft')

const PORT = 7007

interface PodOf { ns: Namespace, a: Attachment, v4: string, v6: string, mac: string, port: string, node: LabNode }

/** UDP datagrams that reach ns on PORT within ms, by source address (IPv4 as IPv4). */
function receive (ns: Namespace, ms: number): Promise<string[]> {
  const script = `const s = require('dgram').createSocket({ type: 'udp6' }); const seen = []
    s.on('message', (m, r) => seen.push(r.address.replace(/^::ffff:/, '')))
    s.bind(${PORT}, '::', () => process.stdout.write('up\\n'))
    setTimeout(() => { process.stdout.write(JSON.stringify(seen)); process.exit(0) }, ${ms})`
  return ns.execAsync(process.execPath, ['-e', script], ms + 10_000).then((o) => JSON.parse(o.split('\n').at(-1) as string) as string[])
}

function counter (n: LabNode, name: string): number {
  return Number(/packets (\d+)/.exec(n.ns.exec('nft', 'list', 'counter', 'bridge', GUARD_TABLE, name))?.[1] ?? -1)
}

function neighbour (n: LabNode, address: string): string {
  return (JSON.parse(n.ns.ip('-j', 'neigh', 'show', address, 'dev', 'cni0')) as Array<{ lladdr?: string }>)[0]?.lladdr ?? ''
}

t.test('a pod sends only as itself: forged sources, ARP and NA claims and RAs are dropped at its port', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }], cniPods: true, dualStack: true })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const runtimes = new Map(cluster.nodes.map((n) => [n, new CniRuntime(n.ns, join(n.cniDir, 'net.d', '10-flatnet.conflist'))]))
  const attach = async (n: LabNode, name: string): Promise<PodOf> => {
    const ns = cluster.ns(`${n.name}${name}`)
    const a = { containerId: `${name}-${cluster.tag}`, netns: `/var/run/netns/${ns.name}`, ifname: 'eth0' }
    const r = await runtimes.get(n)!.add(a)
    const address = (v6: boolean): string => r.ips?.find((x) => x.address.includes(':') === v6)?.address.split('/')[0] ?? ''
    const port = r.interfaces?.find((i) => i.sandbox === undefined && i.name !== 'cni0')?.name ?? ''
    const mac = (JSON.parse(ns.ip('-j', 'link', 'show', 'eth0')) as Array<{ address: string }>)[0].address
    return { ns, a, v4: address(false), v6: address(true), mac, port, node: n }
  }
  const a = await attach(n1, 'a')
  const b = await attach(n1, 'b')
  const c = await attach(n2, 'c')
  t.equal(n1.ns.exec('nft', 'list', 'set', 'bridge', GUARD_TABLE, 'addrs4').includes(`"${a.port}" . ${a.v4}`), true, `ADD bound ${a.v4} to ${a.port}`)
  t.equal(n1.ns.exec('nft', 'list', 'set', 'bridge', GUARD_TABLE, 'addrs6').includes(`"${a.port}" . ${a.v6}`), true, `ADD bound ${a.v6} to ${a.port}`)
  const gatewayMac = (JSON.parse(n1.ns.ip('-j', 'link', 'show', 'cni0')) as Array<{ address: string }>)[0].address
  // The bridge plugin leaves DAD on in the pods: wait until every IPv6 address is usable.
  for (const [from, to] of [[a, c], [b, c], [c, a], [c, b]]) {
    t.ok(await until(async () => await pingFrom(from.ns, to.v6, 1), 10_000) >= 0, `${from.a.containerId} -> ${to.a.containerId} over IPv6`)
  }

  const attack = async (phase: string): Promise<{ atC: string[], atB: string[], arp: string, na: string, ra: string }> => {
    // The node's neighbour entries for B, as traffic to B leaves them (RFC 826 and 4861 caches).
    n1.ns.ip('neigh', 'flush', 'dev', 'cni0')
    await pingFrom(n1.ns, b.v4, 1)
    await pingFrom(n1.ns, b.v6, 1)
    b.ns.ip('-6', 'route', 'flush', 'proto', 'ra')
    await sleep(1100) // past the ARP cache's locktime (1 s), within which a claim would be ignored anyway
    const receivers = [receive(c.ns, 1500), receive(b.ns, 1500)]
    await sleep(400)
    const payload = Buffer.from(phase)
    const sent = await sendFramesFrom(a.ns, 'eth0', [
      udpFrame(a.mac, gatewayMac, a.v4, c.v4, PORT, payload), // honest: always delivered
      udpFrame(a.mac, gatewayMac, a.v6, c.v6, PORT, payload),
      udpFrame(a.mac, gatewayMac, b.v4, c.v4, PORT, payload), // as B, to the other node
      udpFrame(a.mac, gatewayMac, b.v6, c.v6, PORT, payload),
      udpFrame(a.mac, b.mac, c.v4, b.v4, PORT, payload), // as C, to its neighbour on the bridge
      udpFrame(a.mac, b.mac, c.v6, b.v6, PORT, payload),
      arpReplyFrame(a.mac, gatewayMac, b.v4, `10.244.${n1.index}.1`), // "B's IPv4 is at my MAC"
      neighbourAdvertFrame(a.mac, gatewayMac, 'fe80::a', `fd00:10:244:${n1.index}::1`, b.v6), // "B's IPv6 is at my MAC", from a link-local source
      routerAdvertFrame(a.mac, 'fe80::a'), // "route through me", to every pod
    ])
    t.equal(sent, 9, `${phase}: 9 frames sent from the pod's eth0`)
    const [atC, atB] = await Promise.all(receivers)
    await sleep(200)
    const ra = b.ns.ip('-6', 'route', 'show', 'proto', 'ra').trim()
    return { atC: atC.sort(), atB: atB.sort(), arp: neighbour(n1, b.v4), na: neighbour(n1, b.v6), ra }
  }

  // The guard's rules flushed (its sets kept): what a node without it did.
  n1.ns.exec('nft', 'flush', 'chain', 'bridge', GUARD_TABLE, 'prerouting')
  const open = await attack('without the guard')
  t.same(open.atC, [a.v4, a.v6, b.v4, b.v6].sort(), 'without: C gets A\'s datagrams as A and as B')
  t.same(open.atB, [c.v4, c.v6].sort(), 'without: B gets A\'s datagrams as C')
  t.equal(open.arp, a.mac, 'without: the node takes A\'s ARP claim to B\'s IPv4')
  t.equal(open.na, a.mac, 'without: the node takes A\'s neighbour advertisement for B\'s IPv6')
  t.match(open.ra, /^default via fe80::a dev eth0 /, 'without: B takes A\'s router advertisement')

  // A restart puts the rules back, and keeps every binding the table held.
  await cluster.stopDaemon(n1)
  await cluster.startDaemon(n1)
  t.match(n1.ns.exec('nft', 'list', 'set', 'bridge', GUARD_TABLE, 'addrs4'), `"${b.port}" . ${b.v4}`, 'bindings survive a restart')
  const before = { spoofed: counter(n1, 'spoofed'), router: counter(n1, 'router') }
  const guarded = await attack('with the guard')
  t.same(guarded.atC, [a.v4, a.v6].sort(), 'with: C gets A\'s datagrams as A only')
  t.same(guarded.atB, [], 'with: B gets nothing A sent as C')
  t.equal(guarded.arp, b.mac, 'with: the node still has B\'s IPv4 at B\'s MAC')
  t.equal(guarded.na, b.mac, 'with: the node still has B\'s IPv6 at B\'s MAC')
  t.equal(guarded.ra, '', 'with: B learned no route from A')
  t.equal(counter(n1, 'spoofed') - before.spoofed, 6, 'with: 4 forged datagrams, the ARP and the NA counted as spoofed')
  t.equal(counter(n1, 'router') - before.router, 1, 'with: the RA counted')

  // DEL unbinds the port; a pod on the other node was never bound here.
  await runtimes.get(n1)!.del(a.a)
  t.notMatch(n1.ns.exec('nft', 'list', 'set', 'bridge', GUARD_TABLE, 'ports'), `"${a.port}"`, 'DEL unbound A\'s port')
})

t.test('after a reboot the conflist is there before the daemon: a new pod is refused until it runs', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }], cniPods: true })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const cni = new CniRuntime(n1.ns, join(n1.cniDir, 'net.d', '10-flatnet.conflist'))
  const peer = cluster.ns('n2r')
  const peerIP = (await new CniRuntime(n2.ns, join(n2.cniDir, 'net.d', '10-flatnet.conflist')).add({ containerId: `p-${cluster.tag}`, netns: `/var/run/netns/${peer.name}`, ifname: 'eth0' }))
    .ips?.find((x) => !x.address.includes(':'))?.address.split('/')[0] ?? ''
  // A reboot: the daemon not started yet, the kernel's nftables empty; the conflist on disk.
  await cluster.stopDaemon(n1)
  n1.ns.exec('nft', 'flush', 'ruleset')
  const ns = cluster.ns('n1r')
  const a = { containerId: `r-${cluster.tag}`, netns: `/var/run/netns/${ns.name}`, ifname: 'eth0' }
  const refused = await cni.add(a).then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof CniError && refused.plugin === 'flatnet-cni', 'ADD fails at flatnet-cni')
  t.match((refused as CniError).output, /"code":11,"msg":"flatnet is not running on this node: the pod waits until it is"/, 'with CNI\'s "try again later" and why')
  await cni.del(a) // the runtime undoes a failed ADD
  t.equal(ns.ip('link').includes('eth0'), false, 'no interface left in the pod')

  await cluster.startDaemon(n1)
  const r = await cni.add(a)
  const v4 = r.ips?.find((x) => !x.address.includes(':'))?.address.split('/')[0] ?? ''
  t.ok(v4, `once the daemon runs: ADD gives ${v4}`)
  t.ok(await pingFrom(ns, peerIP, 3), `and the pod reaches a pod on the other node (${peerIP})`)
})
