// NetworkPolicy enforced on real nodes: upstream's 3x3 model (namespaces x, y, z; pods
// a, b, c, each serving 80 and 81 over TCP and UDP) on three flatnet nodes, so that
// same-node (bridged on cni0) and cross-node pairs both occur. Each of upstream's cases
// (test/policy/upstream-cases.ts) is written to the manifests directory every node
// enforces; once every node has applied exactly those files, every ordered pair is
// probed and the observed table compared with upstream's expectation and with what
// `flatnet policy matrix` explains from a running daemon's own objects, so enforcement
// and explanation cannot drift apart.
import t from 'tap'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import { manifestsDigest, type PolicyState } from '../../src/policy/enforce.js'
import { addPods, checkStep, labNode, PROBED_CASES } from '../policy/probes.js'
import type { Step } from '../policy/upstream-cases.js'
import { namespaceObjects, podObjects } from '../policy/world.js'
import { healthGet } from '../lib/health.js'
import { withCluster } from '../lib/lab.js'

// ~70 policy changes, each probed pair by pair: minutes on two CPUs, more than tap's default.
t.setTimeout(900_000)

const dir = mkdtempSync(join(tmpdir(), 'flatnet-policy-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
/** Writes one step's objects as the manifests every node reads; its namespaces and pods first, as a cluster has them. */
function writeStep (step: Step): void {
  const pods = podObjects(step.podLabels).map((p) => {
    const pod = p as { spec: { nodeName: string } }
    return { ...pod, spec: { ...pod.spec, nodeName: labNode(pod.spec.nodeName) } }
  })
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ kind: 'List', items: [...namespaceObjects(step.namespaceLabels), ...pods] }))
  writeFileSync(join(dir, 'policies.json'), JSON.stringify({ kind: 'List', items: step.policies }))
}

t.test('upstream\'s NetworkPolicy cases on three nodes: enforced as expected, as explained', async (t) => {
  writeStep({ policies: [], probes: [] })
  const node = { kind: 'flatnet' as const, extra: { networkPolicy: { manifests: dir } } }
  const cluster = await withCluster(t, { nodes: [node, node, node], podsPerNode: 0 })
  if (!cluster) return
  const pods = addPods(cluster)
  const policyOf = async (name: string): Promise<PolicyState> =>
    ((await queryControl(join(cluster.dir, `${name}.sock`), 'stats')) as unknown as { policy: PolicyState }).policy
  const latencies: number[] = []
  /** Until every node has applied exactly the files on disk; returns how long that took. */
  const applied = async (): Promise<void> => {
    const want = manifestsDigest(dir)
    const start = Date.now()
    for (;;) {
      const states = await Promise.all(cluster.nodes.map(async (n) => await policyOf(n.name)))
      const failed = states.find((s) => s.error)
      if (failed) throw new Error(failed.error)
      if (states.every((s) => s.digest === want)) break
      if (Date.now() - start > 30_000) throw new Error('the nodes did not apply the manifests within 30 s')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    latencies.push(Date.now() - start)
  }
  for (const c of PROBED_CASES) {
    for (const [i, step] of c.steps.entries()) {
      writeStep(step)
      await applied()
      await checkStep(t, cluster, pods, step, `${c.name}, step ${i + 1}${step.by ? ` (${step.by})` : ''}`)
    }
  }
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]
  t.comment(`manifests written -> applied on all 3 nodes, ${latencies.length} changes: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${latencies[latencies.length - 1]} ms`)
  const { denied } = (await queryControl(join(cluster.dir, 'n1.sock'), 'stats') as unknown as { policy: { denied: { ingress: number, egress: number } } }).policy
  t.ok(denied.ingress > 0 && denied.egress > 0, `n1 counted the first packets it denied: ingress ${denied.ingress}, egress ${denied.egress}`)
})

// Where bridged pod-to-pod traffic would bypass the table (br_netfilter off), the node must
// not look protected: the daemon says so, /readyz fails and no conflist lets a pod start.
t.test('br_netfilter off: enforcement refused, readyz fails, no conflist', async (t) => {
  writeStep({ policies: [], probes: [] })
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', extra: { networkPolicy: { manifests: dir } } }], podsPerNode: 0, tag: 'polbr' })
  if (!cluster) return
  const [n1] = cluster.nodes
  await cluster.stopDaemon(n1)
  rmSync(join(n1.cniDir, 'net.d'), { recursive: true, force: true })
  n1.ns.sysctl('net.bridge.bridge-nf-call-iptables', '0')
  await cluster.startDaemon(n1)
  t.match(cluster.log(n1), /"msg":"network policy not enforced"/, 'logged')
  t.match(cluster.log(n1), /net\.bridge\.bridge-nf-call-iptables is 0: set it to 1 on the node/, 'with the sysctl to set')
  const ready = await healthGet(n1, '/readyz')
  t.equal(ready.status, 503, `/readyz 503: ${String(ready.body).trim()}`)
  t.notOk(existsSync(join(n1.cniDir, 'net.d', '10-flatnet.conflist')), 'no CNI conflist: no pod starts unprotected')
})
