// NetworkPolicy at scale: a node's view of 5,000 pods (50 namespaces of 100, this node
// holding 110 of them, the kubelet's default maximum) and 1,000 policies. Measures
// index and render time, the ruleset's size and the heap it takes, `nft -f` apply
// time in a throwaway namespace, then (as root) the per-packet cost: one TCP stream and
// 64-byte UDP through the overlay between two lab nodes, without policies and with the
// 1,000 in force and selecting both pods, in the same run, as a ratio.
// Run: sudo npm run bench:policy
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tcpThroughput, udpSmallPackets } from './iperf.js'
import { Cluster } from '../src/lab/cluster.js'
import { labUnavailable, Namespace, reapOnSignals } from '../src/lab/netns.js'
import { manifestsDigest, tableOf } from '../src/policy/enforce.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../src/policy/objects.js'

const NAMESPACES = 50
const PODS_PER_NS = 100
const POLICIES_PER_NS = 20
const LOCAL_PODS = 110

/** The cluster as API objects; pod i of namespace n at 10.(200+n/250).n.i, this node's first LOCAL_PODS in 10.244.1.0/24. */
function cluster (): { namespaces: unknown[], pods: unknown[], policies: unknown[] } {
  const namespaces = Array.from({ length: NAMESPACES }, (_, n) => ({ kind: 'Namespace', metadata: { name: `ns${n}`, labels: { team: `t${n % 5}` } } }))
  const pods: unknown[] = []
  let local = 0
  for (let n = 0; n < NAMESPACES; n++) {
    for (let i = 0; i < PODS_PER_NS; i++) {
      const here = local < LOCAL_PODS && i % 4 === 0
      const ip = here ? `10.244.1.${10 + local}` : `10.${100 + Math.floor(n / 2)}.${(n % 2) * 100 + Math.floor(i / 2)}.${(i % 2) * 100 + 10}`
      if (here) local++
      pods.push({
        kind: 'Pod',
        metadata: { namespace: `ns${n}`, name: `p${i}`, labels: { app: `a${i % 10}`, tier: i % 2 ? 'web' : 'db' } },
        spec: { nodeName: here ? 'n1' : 'elsewhere', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
        status: { podIPs: [{ ip }] },
      })
    }
  }
  const policies: unknown[] = []
  for (let n = 0; n < NAMESPACES; n++) {
    for (let k = 0; k < POLICIES_PER_NS; k++) {
      policies.push({
        kind: 'NetworkPolicy',
        metadata: { namespace: `ns${n}`, name: `pol${k}` },
        spec: {
          podSelector: { matchLabels: { app: `a${k % 10}` } },
          policyTypes: ['Ingress', 'Egress'],
          ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }, { namespaceSelector: { matchLabels: { team: `t${k % 5}` } } }], ports: [{ port: 'http' }, { port: 9000, endPort: 9100, protocol: 'TCP' }] }],
          egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.${100 + k}.0.0/16`] } }], ports: [{ port: 53, protocol: 'UDP' }, { port: 443 }] }],
        },
      })
    }
  }
  return { namespaces, pods, policies }
}

function time<T> (f: () => T): [T, number] {
  const start = performance.now()
  const r = f()
  return [r, performance.now() - start]
}

reapOnSignals()
const objs = cluster()
const heapBefore = process.memoryUsage().heapUsed
const [table, compileMs] = time(() => tableOf({ nodeName: 'n1', podCIDRs: ['10.244.1.0/24'] }, {
  namespaces: objs.namespaces.map(parseNamespace), pods: objs.pods.map(parsePod), policies: objs.policies.map(parseNetworkPolicy),
}))
const [script, renderMs] = time(() => table.script())
const heapMB = (process.memoryUsage().heapUsed - heapBefore) / 1e6
const counts = table.counts()
console.log(`${objs.pods.length} pods, ${objs.policies.length} policies, ${counts.localPods} on this node: parse+index ${compileMs.toFixed(0)} ms, render ${renderMs.toFixed(0)} ms, ` +
  `${counts.rules} rules, ${script.split('\n').length} ruleset lines (${(script.length / 1e6).toFixed(2)} MB), heap +${heapMB.toFixed(0)} MB`)

const why = labUnavailable()
if (why) {
  console.log(`apply and per-packet cost skipped: ${why}`)
  process.exit(0)
}
const scratch = Namespace.create(`flatnet-benchpol-${process.pid}`)
const file = join(mkdtempSync(join(tmpdir(), 'flatnet-benchpol-')), 'rules.nft')
writeFileSync(file, script)
const [, applyMs] = time(() => scratch.exec('nft', '-f', file))
const objects = scratch.exec('nft', '-a', 'list', 'table', 'inet', 'flatnet-policy').split('\n').filter((l) => /# handle \d+$/.test(l)).length
console.log(`nft -f: ${applyMs.toFixed(0)} ms for ${objects} rules and other objects`)
await scratch.destroy()
rmSync(join(file, '..'), { recursive: true, force: true })

// The per-packet cost: two lab nodes, their pods among the 1,000 policies' selected pods.
const dir = mkdtempSync(join(tmpdir(), 'flatnet-benchpol-manifests-'))
const node = { kind: 'flatnet' as const, extra: { ipMasq: false, networkPolicy: { manifests: dir } } }
const write = (withPolicies: boolean): void => {
  const pods = [...objs.pods as Array<{ metadata: { namespace: string, name: string }, spec: { nodeName: string }, status: { podIPs: Array<{ ip: string }> } }>]
  // The lab's two pods take the place of two selected pods (app a0, tier web: allowed in by every pol0/pol10).
  pods[0] = { ...pods[0], spec: { ...pods[0].spec, nodeName: 'n1' }, status: { podIPs: [{ ip: '10.244.1.10' }] } }
  pods[2] = { ...pods[2], spec: { ...pods[2].spec, nodeName: 'n2' }, status: { podIPs: [{ ip: '10.244.2.10' }] } }
  const open = { kind: 'NetworkPolicy', metadata: { namespace: 'ns0', name: 'bench-open' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{}], egress: [{}] } }
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ kind: 'List', items: [...objs.namespaces, ...pods, ...(withPolicies ? [...objs.policies, open] : [])] }))
}
write(false)
const c = await Cluster.create({ nodes: [node, node], tag: 'benchpol' })
try {
  const [a, b] = c.nodes.map((n) => n.pods[0])
  const measure = async (label: string): Promise<{ tcp: number, udp: number }> => {
    const want = manifestsDigest(dir)
    const { queryControl } = await import('../src/control-socket.js')
    for (const n of c.nodes) {
      for (let i = 0; i < 600; i++) {
        const s = await queryControl(join(c.dir, `${n.name}.sock`), 'policy') as { policy?: { digest?: string } }
        if (s.policy?.digest === want) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    const tcp = (await tcpThroughput(a, b, 3, 1)).gbps
    const udp = (await udpSmallPackets(a, b, 3)).pps / 1000
    console.log(`${label}: TCP 1 stream ${tcp.toFixed(2)} Gbit/s, UDP 64 B ${udp.toFixed(0)} kpps`)
    return { tcp, udp }
  }
  const none = await measure('no policies')
  write(true)
  const many = await measure(`${objs.policies.length} policies`)
  write(false)
  const none2 = await measure('no policies again')
  write(true)
  const many2 = await measure(`${objs.policies.length} policies again`)
  const ratio = (x: number, y: number): string => (x / y).toFixed(2)
  console.log(`with ${objs.policies.length} policies / without: TCP ${ratio(many.tcp, none.tcp)}, ${ratio(many2.tcp, none2.tcp)}; UDP ${ratio(many.udp, none.udp)}, ${ratio(many2.udp, none2.udp)}`)
} finally {
  await c.destroy()
  rmSync(dir, { recursive: true, force: true })
}
