// `sudo npm run demo`: three flatnet nodes and one kernel-vxlan node (configured as
// flannel does) in network namespaces, traffic across them, a short report, and
// everything removed. Needs only Node, iproute2 and /dev/net/tun: the traffic is Node's
// own (src/lab/traffic.ts). Without the kernel's vxlan (the hosts flatnet is for) the
// kernel node is left out, saying so.
import { existsSync } from 'node:fs'
import { Cluster, type LabNode } from './cluster.js'
import { kernelVxlanUnavailable } from './kernel-vxlan.js'
import { labUnavailable } from './netns.js'
import { bulkTransfer, seenAs, startEcho, startSink, startUdpEcho, udpRoundTrips } from './traffic.js'

/** What the demo cannot do without, as one line saying how to get it, or undefined. */
async function missing (): Promise<string | undefined> {
  const why = labUnavailable()
  if (why) return `${why}: run it as \`sudo npm run demo\``
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun (the tun module): modprobe tun'
  return undefined
}

const why = await missing()
if (why) {
  process.stderr.write(`flatnet demo ${why}\n`)
  process.exit(2)
}

const say = (s: string): void => { process.stdout.write(`${s}\n`) }
let failed = 0 // round trips, transfers or the no-NAT check that did not work: the demo then exits 1
let cluster: Cluster | undefined
let cleaning: Promise<void> | undefined
const cleanup = (): Promise<void> => (cleaning ??= (async () => { await cluster?.destroy() })())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void cleanup().then(() => process.exit(130)) })
}

try {
  const noVxlan = await kernelVxlanUnavailable()
  if (noVxlan) say(`kernel-vxlan node skipped: ${noVxlan}; flatnet needs no vxlan module`)
  say(`building: 3 flatnet nodes${noVxlan ? '' : ' + 1 kernel vxlan node (flannel-style)'} on one underlay, a pod on each`)
  // NAT outgoing (ipMasq, nftables) is off: the demo's traffic stays inside the cluster.
  const flatnet = { kind: 'flatnet' as const, extra: { ipMasq: false } }
  cluster = await Cluster.create({ nodes: [flatnet, flatnet, flatnet, ...noVxlan ? [] : [{ kind: 'kernel-vxlan' as const }]] })
  const nodes = cluster.nodes
  const kernelNode = nodes.find((n) => n.spec.kind === 'kernel-vxlan')
  for (const n of nodes) say(`  ${n.name}  ${n.spec.kind.padEnd(12)} underlay ${n.underlayIP}  pods ${n.podCIDR}  pod ${n.pods[0].ip}`)
  say('  (NAT outgoing is off: it masquerades traffic leaving the cluster, which the demo does not send)')
  for (const n of nodes) {
    startUdpEcho(n.pods[0].ns)
    startSink(n.pods[0].ns)
    startEcho(n.pods[0].ns)
  }

  say('\nround trips (UDP, 20 each; average ms), every pod to every other pod:')
  say(`  from\\to ${nodes.map((n) => n.name.padStart(7)).join('')}`)
  for (const a of nodes) {
    const row: string[] = []
    for (const b of nodes) {
      if (a === b) { row.push('      -'); continue }
      const r = await udpRoundTrips(a.pods[0].ns, b.pods[0].ip, 20, 5).catch(() => undefined)
      const ok = r !== undefined && r.received === r.sent
      if (!ok) failed++
      row.push((ok ? r.avgMs.toFixed(3) : `FAIL ${r?.received ?? 0}/20`).padStart(7))
    }
    say(`  ${a.name.padEnd(7)} ${row.join('')}`)
  }

  say('\nTCP throughput, pod -> pod, 256 MiB each, content checked (sha256):')
  const pairs: Array<[LabNode, LabNode]> = [[nodes[0], nodes[1]], [nodes[1], nodes[2]], ...kernelNode ? [[nodes[0], kernelNode], [kernelNode, nodes[0]]] as Array<[LabNode, LabNode]> : []]
  for (const [a, b] of pairs) {
    const label = `  ${a.name} (${a.spec.kind}) -> ${b.name} (${b.spec.kind}):`.padEnd(40)
    try {
      const r = await bulkTransfer(a.pods[0].ns, b.pods[0].ip, 256)
      if (!r.intact) failed++
      say(`${label} ${r.gbps.toFixed(2)} Gbit/s${r.intact ? ', intact' : ` FAIL: the receiver got ${r.reply}`}`)
    } catch (err) {
      failed++
      say(`${label} FAILED ${(err as Error).message.split('\n')[0]}`)
    }
  }

  say('\nno NAT: the receiving pod sees the sending pod\'s own address:')
  for (const [a, b] of [[nodes[0], nodes[1]], ...kernelNode ? [[kernelNode, nodes[0]]] : []]) {
    const seen = await seenAs(a.pods[0].ns, b.pods[0].ip).catch(() => 'nothing')
    if (seen !== a.pods[0].ip) failed++
    say(`  ${a.pods[0].ip} -> ${b.pods[0].ip}: server saw ${seen}${seen === a.pods[0].ip ? '' : ' (FAIL: not the sender\'s pod IP)'}`)
  }

  say('\nflatnet daemons (counters at shutdown):')
  for (const n of nodes.filter((n) => n.spec.kind === 'flatnet')) {
    const { code, ms } = await cluster.stopDaemon(n)
    if (code !== 0) failed++
    const lines = cluster.log(n).split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const stopped = lines.find((l) => l.msg === 'stopped')
    const layout = lines.find((l) => l.msg === 'ready')
    const workers = layout?.workers === 'per-cpu' ? `per-cpu, ${layout.queues} workers` : layout?.workers
    const drops = Object.entries(stopped?.drops ?? {}).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'
    say(`  ${n.name} (${workers}): tx ${stopped?.tx.packets} pkts, rx ${stopped?.rx.packets} pkts (${stopped?.rx.coalesced} coalesced, ` +
      `${stopped?.rx.partialChecksums} partial checksums finished), drops: ${drops}; SIGTERM -> exit ${code} in ${ms} ms`)
  }
  if (failed) {
    process.stderr.write(`demo: ${failed} check(s) failed, marked FAIL above\n`)
    process.exitCode = 1
  }
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).stack}\n`)
  process.exitCode = 1
} finally {
  await cleanup()
  say('\ncleaned up: namespaces, daemons and links removed')
}
