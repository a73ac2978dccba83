// The overlay end to end: three flatnet nodes and one kernel-vxlan node (flannel's
// configuration) on one underlay. Every pod reaches every other by ping and TCP,
// and the receiver sees the sender's own pod IP (no NAT) — in both offload modes.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import type { LabNode } from '../../src/lab/cluster.js'
import { tcpThroughput } from '../../bench/iperf.js'
import { ping, startPeerEcho, tcpSeenAs, withCluster } from '../lib/lab.js'

/** The daemon's native packet threads, by the names they give themselves. */
const packetThreads = (n: LabNode): string[] => {
  const pid = n.daemon?.pid as number
  return readdirSync(`/proc/${pid}/task`).map((tid) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim())
    .filter((name) => name.startsWith('flatnet-')).sort()
}

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
      t.same(packetThreads(n), ['flatnet-rx', 'flatnet-tx'], `${n.name}: a packet thread per direction, named for top -H and perf`)
      const { code, ms } = await cluster.stopDaemon(n)
      t.equal(code, 0, `${n.name}: SIGTERM exits 0`)
      t.ok(ms < 2000, `${n.name}: stopped in ${ms} ms (< 2 s)`)
      t.notOk(n.ns.ip('link').includes('flatnet0'), `${n.name}: TUN removed`)
      t.notOk(n.ns.ip('route').includes('10.244.0.0/16'), `${n.name}: cluster route removed`)
    }
  })
}

// Latency mode: one packet thread per node carries both directions and keeps polling
// (and yielding) after traffic. It must still forward both ways, bulk TCP included
// (segmentation and coalescing on the one thread), and stop promptly while spinning.
t.test('busyPollMicros: forwards both ways and stops promptly', async (t) => {
  const node = { kind: 'flatnet' as const, extra: { busyPollMicros: 200 } }
  const cluster = await withCluster(t, { nodes: [node, node] })
  if (!cluster) return
  const [a, b] = cluster.nodes.map((n) => n.pods[0])
  ;[a, b].forEach(startPeerEcho)
  t.ok(await ping(a, b.ip), 'n1 -> n2: ping')
  t.equal(await tcpSeenAs(a, b), a.ip, 'n1 -> n2: TCP')
  t.equal(await tcpSeenAs(b, a), b.ip, 'n2 -> n1: TCP')
  const bulk = await tcpThroughput(a, b, 1, 1)
  t.ok(bulk.bytes > 10e6, `n1 -> n2: 1 s of iperf3 moved ${(bulk.bytes / 1e6).toFixed(0)} MB`)
  for (const n of cluster.nodes) {
    t.same(packetThreads(n), ['flatnet-txrx'], `${n.name}: one packet thread`)
    const { code, ms } = await cluster.stopDaemon(n)
    t.equal(code, 0, `${n.name}: SIGTERM exits 0`)
    t.ok(ms < 2000, `${n.name}: stopped in ${ms} ms (< 2 s)`)
  }
})
