// The overlay end to end: three flatnet nodes and one kernel-vxlan node (flannel's
// configuration) on one underlay. Every pod reaches every other by ping and TCP,
// and the receiver sees the sender's own pod IP (no NAT) — in both offload modes.
import t from 'tap'
import { ping, startPeerEcho, tcpSeenAs, withCluster } from '../lib/lab.js'

for (const offloads of [true, false]) {
  t.test(`3 flatnet nodes + 1 kernel vxlan node, offloads ${offloads ? 'on' : 'off'}`, async (t) => {
    const cluster = await withCluster(t, {
      nodes: [
        { kind: 'flatnet', offloads }, { kind: 'flatnet', offloads }, { kind: 'flatnet', offloads },
        { kind: 'kernel-vxlan' },
      ],
    })
    if (!cluster) return
    const pods = cluster.nodes.map((n) => n.pods[0])
    pods.forEach(startPeerEcho)
    for (const [i, from] of pods.entries()) {
      for (const [j, to] of pods.entries()) {
        if (i === j) continue
        const pair = `n${i + 1} -> n${j + 1}`
        t.ok(await ping(from, to.ip), `${pair}: ping ${to.ip}`)
        t.equal(await tcpSeenAs(from, to), from.ip, `${pair}: TCP, receiver sees the sender's pod IP`)
      }
    }
    for (const n of cluster.nodes.filter((n) => n.spec.kind === 'flatnet')) {
      const { code, ms } = await cluster.stopDaemon(n)
      t.equal(code, 0, `${n.name}: SIGTERM exits 0`)
      t.ok(ms < 2000, `${n.name}: stopped in ${ms} ms (< 2 s)`)
      t.notOk(n.ns.ip('link').includes('flatnet0'), `${n.name}: TUN removed`)
      t.notOk(n.ns.ip('route').includes('10.244.0.0/16'), `${n.name}: cluster route removed`)
    }
  })
}
