// `sudo npm run demo`: a three-node flatnet cluster plus one kernel-vxlan node in
// network namespaces, traffic across it, a short report, and everything removed.
import { Cluster, type LabNode } from './cluster.js'
import { labUnavailable } from './netns.js'

const why = labUnavailable()
if (why) {
  process.stderr.write(`flatnet demo ${why}: run it as \`sudo npm run demo\`\n`)
  process.exit(1)
}

const say = (s: string): void => { process.stdout.write(`${s}\n`) }
let failed = 0 // pings, streams or the no-NAT check that did not work: the demo then exits 1
let cluster: Cluster | undefined
let cleaning: Promise<void> | undefined
const cleanup = (): Promise<void> => (cleaning ??= (async () => { await cluster?.destroy() })())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void cleanup().then(() => process.exit(130)) })
}

try {
  say('building: 3 flatnet nodes + 1 kernel vxlan node (flannel-style) on one underlay, a pod on each')
  cluster = await Cluster.create({ nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'kernel-vxlan' }] })
  const nodes = cluster.nodes
  for (const n of nodes) say(`  ${n.name}  ${n.spec.kind.padEnd(12)} underlay ${n.underlayIP}  pods ${n.podCIDR}  pod ${n.pods[0].ip}`)

  say('\nping (avg RTT, ms), every pod to every other pod:')
  say(`  from\\to ${nodes.map((n) => n.name.padStart(7)).join('')}`)
  for (const a of nodes) {
    const row: string[] = []
    for (const b of nodes) {
      if (a === b) { row.push('      -'); continue }
      const out = await a.pods[0].ns.execAsync('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-q', b.pods[0].ip]).catch(() => '')
      const avg = /= [\d.]+\/([\d.]+)\//.exec(out)?.[1]
      if (!avg) failed++
      row.push((avg ?? 'FAIL').padStart(7))
    }
    say(`  ${a.name.padEnd(7)} ${row.join('')}`)
  }

  say('\nTCP throughput, iperf3 3 s, pod -> pod:')
  for (const [a, b] of [[nodes[0], nodes[1]], [nodes[1], nodes[2]], [nodes[0], nodes[3]], [nodes[3], nodes[0]]] as Array<[LabNode, LabNode]>) {
    const server = b.pods[0].ns.spawn('iperf3', ['-s', '-1'])
    await new Promise((resolve) => setTimeout(resolve, 300))
    try {
      const out = JSON.parse(await a.pods[0].ns.execAsync('iperf3', ['-c', b.pods[0].ip, '-t', '3', '-J'], 20_000))
      const gbps = out.end.sum_received.bits_per_second / 1e9
      say(`  ${a.name} (${a.spec.kind}) -> ${b.name} (${b.spec.kind}): ${gbps.toFixed(2)} Gbit/s, ${out.end.sum_sent.retransmits} retransmits`)
    } catch (err) {
      failed++
      say(`  ${a.name} -> ${b.name}: FAILED ${(err as Error).message.split('\n')[0]}`)
    } finally {
      server.kill()
    }
  }

  say('\nno NAT: the receiving pod sees the sending pod\'s own address:')
  const listener = nodes[1].pods[0].ns.spawn(process.execPath, ['-e',
    "require('net').createServer((s) => s.end(s.remoteAddress)).listen(7000, '0.0.0.0')"])
  await new Promise((resolve) => setTimeout(resolve, 300))
  const seen = await nodes[0].pods[0].ns.execAsync(process.execPath, ['-e',
    `const s = require('net').connect(7000, '${nodes[1].pods[0].ip}'); s.on('data', (d) => process.stdout.write(String(d)))`])
  listener.kill()
  if (seen !== nodes[0].pods[0].ip) failed++
  say(`  ${nodes[0].pods[0].ip} -> ${nodes[1].pods[0].ip}: server saw ${seen}${seen === nodes[0].pods[0].ip ? '' : ' (FAIL: not the sender\'s pod IP)'}`)

  say('\nflatnet daemons (counters at shutdown):')
  for (const n of nodes.filter((n) => n.spec.kind === 'flatnet')) {
    const { code, ms } = await cluster.stopDaemon(n)
    if (code !== 0) failed++
    const lines = cluster.log(n).split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const stopped = lines.find((l) => l.msg === 'stopped')
    const layout = lines.find((l) => l.msg === 'ready')?.offloads
    const workers = layout?.workers === 'per-cpu' ? `per-cpu, ${layout.queues} workers` : layout?.workers
    const drops = Object.entries(stopped?.drops ?? {}).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'
    say(`  ${n.name} (${workers}): tx ${stopped?.tx.packets} pkts, rx ${stopped?.rx.packets} pkts (${stopped?.rx.coalesced} coalesced), drops: ${drops}; SIGTERM -> exit ${code} in ${ms} ms`)
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
