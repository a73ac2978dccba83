// Dual-stack pods (an IPv4 and an IPv6 address each) on three flatnet nodes, over
// an IPv6 underlay (70 bytes of overhead: TUN MTU 1430) and over an IPv4 one
// carrying the IPv6 pods too (50 bytes: 1450). Every pod reaches every other by
// ping and TCP in both families and is seen with its own address.
import t from 'tap'
import { labTools, withCluster } from '../lib/lab.js'
import { pingFrom } from '../lib/echo.js'
import { bulkTransfer, seenAs, startEcho, startSink } from '../../src/lab/traffic.js'

labTools('ping')

for (const [ipv6Underlay, offloads] of [[true, true], [false, true], [true, false]]) {
  const mtu = ipv6Underlay ? 1430 : 1450
  t.test(`3 dual-stack flatnet nodes, IPv${ipv6Underlay ? 6 : 4} underlay, offloads ${offloads ? 'on' : 'off'}`, async (t) => {
    const cluster = await withCluster(t, {
      nodes: [{ kind: 'flatnet', offloads }, { kind: 'flatnet', offloads }, { kind: 'flatnet', offloads }], dualStack: true, ipv6Underlay,
    })
    if (!cluster) return
    for (const n of cluster.nodes) {
      t.match(n.ns.ip('link', 'show', 'flatnet0'), `mtu ${mtu} `, `${n.name}: TUN MTU ${mtu}`)
      t.match(n.ns.ip('-6', 'route', 'show', 'fd00:10:244::/48'), 'dev flatnet0', `${n.name}: IPv6 cluster route into the TUN`)
    }
    const pods = cluster.nodes.map((n) => n.pods[0])
    pods.forEach((p) => startEcho(p.ns))
    for (const [i, from] of pods.entries()) {
      for (const [j, to] of pods.entries()) {
        if (i === j) continue
        const pair = `n${i + 1} -> n${j + 1}`
        for (const [fromIP, toIP] of [[from.ip, to.ip], [from.ip6 as string, to.ip6 as string]]) {
          t.ok(await pingFrom(from.ns, toIP), `${pair}: ping ${toIP}`)
          t.equal(await seenAs(from.ns, toIP), fromIP, `${pair}: TCP to ${toIP}, seen as ${fromIP}`)
        }
      }
    }
    // A full-size IPv6 packet: the pod's eth0 is 1500, the TUN's MTU must be signalled, not black-holed.
    const big = await pods[0].ns.execAsync('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', '-s', String(mtu - 48), '-M', 'do', pods[1].ip6 as string], 15_000)
      .then(() => true, () => false)
    t.ok(big, `n1 -> n2: IPv6 ping of exactly the TUN MTU (${mtu}) passes with DF`)
    // Bulk TCP both families: TSO super-packets from the TUN, segmented, UDP GSO/GRO on this underlay;
    // the sink hashes what it got, so a wrong byte anywhere fails.
    startSink(pods[1].ns)
    for (const to of [pods[1].ip, pods[1].ip6 as string]) {
      const r = await bulkTransfer(pods[0].ns, to, 64)
      t.ok(r.intact, `n1 -> n2: 64 MiB of TCP to ${to} arrived intact (${r.gbps.toFixed(2)} Gbit/s)`, { reply: r.reply })
    }
    const stats = JSON.parse(await cluster.nodes[1].ns.execAsync(process.execPath, [new URL('../../bin/flatnet.js', import.meta.url).pathname,
      'stats', '--socket', `${cluster.dir}/n2.sock`]))
    t.ok(stats.stats.rx.packets > 0, 'n2 received over the overlay')
    const drops = Object.entries(stats.stats.drops as Record<string, number>).filter(([, v]) => v > 0)
    t.same(drops.filter(([k]) => k !== 'no_route'), [], 'n2: no receive drops')
    // NAT outgoing for IPv6 pods: an outside host on the underlay sees the node's address.
    const outside = cluster.attachToUnderlay('out', ipv6Underlay ? 'fd00:77::c8' : '192.168.77.200')
    startEcho(outside)
    const outsideIP = ipv6Underlay ? 'fd00:77::c8' : '192.168.77.200'
    t.equal(await seenAs(pods[0].ns, outsideIP), cluster.nodes[0].underlayIP, `n1 pod -> outside ${outsideIP}: masqueraded to ${cluster.nodes[0].underlayIP}`)
    t.match(cluster.nodes[0].ns.exec('nft', 'list', 'table', 'ip6', 'flatnet'), /ip6 saddr fd00:10:244:1::\/64 ip6 daddr fd00:10:244::\/48 return/,
      'n1: IPv6 pods masqueraded in their own ip6 table, pod-to-pod excepted')
    for (const n of cluster.nodes) {
      const { code } = await cluster.stopDaemon(n)
      t.equal(code, 0, `${n.name}: SIGTERM exits 0`)
      // The pod port table stays, as the policy table does: the pods run on, still bound.
      t.equal(n.ns.exec('nft', 'list', 'tables').trim(), 'table bridge flatnet-guard', `${n.name}: ip and ip6 flatnet tables removed, the pod port table kept`)
    }
  })
}
