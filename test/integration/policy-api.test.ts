// NetworkPolicy from the API server on real nodes, as the DaemonSet runs it (the
// kubernetes source, `"networkPolicy": {}`): the lab's API server runs in its own
// namespace on the underlay, serving objects of real size, and three flatnet nodes
// list and watch it. Upstream's cases are probed with traffic, every fourth case's first
// step twice: listed by daemons restarted with it already in the API server (a restart in
// the middle of the run: the previous case's table is in force meanwhile), then, as every
// case's, removed and created again while they run (watched). Before that, the start with a
// Pod list that fails: nothing enforced is claimed and every local pod stays dropped;
// after it, a watch that fails: the last model stays in force, said stale.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { Cluster } from '../../src/lab/cluster.js'
import { KubeApiProcess } from '../../src/lab/kube-api-process.js'
import type { KubeObject } from '../../src/lab/kube-api.js'
import { realNamespace, realNetworkPolicy, realPod } from '../../src/lab/kube-objects.js'
import { until } from '../../src/lab/until.js'
import type { PolicyState } from '../../src/policy/enforce.js'
import { healthGet, metricsGet, sample } from '../lib/health.js'
import { apiPolicyNode, LAB_API } from '../lib/kube.js'
import { withCluster } from '../lib/lab.js'
import { addPods, checkStep, labNode, observe, PROBED_CASES } from '../policy/probes.js'
import { NAMESPACES, nodeOf, PODS, podIP, SERVED, type Step } from '../policy/upstream-cases.js'

// ~60 cases, a quarter of them with a restart of three daemons and one more probe than the manifests run.
t.setTimeout(1_500_000)

/** The API server's objects for one step, kept in step with what was written: only changes are sent. */
class ClusterState {
  private readonly written = new Map<string, string>() // kind/ns/name -> JSON
  /** The resourceVersion of the last write per kind: a node has applied a step when its model reflects these. */
  readonly versions: Record<string, number> = { Namespace: 0, Pod: 0, NetworkPolicy: 0 }

  constructor (private readonly api: KubeApiProcess) {}

  async write (step: Step): Promise<void> {
    const want = new Map<string, { kind: string, o: KubeObject }>()
    const add = (kind: string, ns: string, name: string, o: KubeObject): void => { want.set(`${kind}/${ns}/${name}`, { kind, o }) }
    for (const ns of NAMESPACES) add('Namespace', '', ns, realNamespace(ns, { ns, ...step.namespaceLabels?.[ns] }))
    for (const key of PODS) {
      const [namespace, name] = key.split('/')
      add('Pod', namespace, name, realPod({
        namespace,
        name,
        labels: { pod: name, ...step.podLabels?.[key] },
        nodeName: labNode(nodeOf(key)),
        ips: [podIP(key)],
        ports: SERVED.map(({ port, protocol }) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })),
      }))
    }
    for (const p of step.policies) {
      const { metadata, spec } = p as { metadata: { namespace: string, name: string }, spec: Record<string, unknown> }
      add('NetworkPolicy', metadata.namespace, metadata.name, realNetworkPolicy(metadata.namespace, metadata.name, spec))
    }
    for (const [key, { kind, o }] of want) {
      const text = JSON.stringify(o)
      if (this.written.get(key) === text) continue
      this.versions[kind] = await this.api.put(o)
      this.written.set(key, text)
    }
    for (const key of [...this.written.keys()]) {
      if (want.has(key)) continue
      const [kind, ns, name] = key.split('/')
      this.versions[kind] = await this.api.delete(kind, name, ns || undefined)
      this.written.delete(key)
    }
  }
}

const policyOf = async (cluster: Cluster, name: string): Promise<PolicyState> =>
  ((await queryControl(join(cluster.dir, `${name}.sock`), 'stats')) as unknown as { policy: PolicyState }).policy

/** How many ordered pairs of two different pods got through (a pod reaches itself inside its own namespace). */
const reached = (table: Awaited<ReturnType<typeof observe>>): number => PODS.flatMap((from) => PODS.filter((to) => to !== from && table.get(from, to))).length

/** Each kind's resourceVersion in an applied model's digest ("Namespace=12,Pod=40,NetworkPolicy=41"). */
function digestVersions (digest: string | undefined): Record<string, number> {
  return Object.fromEntries((digest ?? '').split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v || 0)]))
}

t.test('upstream\'s cases through the API server: listed at start, created after, across restarts', async (t) => {
  // The DaemonSet's configuration: policy from the API server the kubernetes source reads.
  const node = apiPolicyNode(t)
  const cluster = await withCluster(t, { nodes: [node, node, node], podsPerNode: 0, tag: 'polapi' })
  if (!cluster) return
  const pods = addPods(cluster)
  const [n1] = cluster.nodes

  // The API server is unreachable until its link comes up: by then it fails every Pod list.
  const apiNs = cluster.attachToUnderlay('api', LAB_API.host)
  apiNs.ip('link', 'set', 'eth0', 'down')
  const api = await KubeApiProcess.start({ netns: apiNs.name, host: LAB_API.host, port: LAB_API.port })
  t.teardown(async () => await api.stop())
  const state = new ClusterState(api)
  await state.write({ policies: [], probes: [] })
  await api.failLists('Pod', -1, 500)
  apiNs.ip('link', 'set', 'eth0', 'up')

  await t.test('a Pod list that fails: not ready, no conflist, every local pod dropped', async (t) => {
    const reason = /waiting for the API server's Pod \(Pod .*500/
    t.ok(await until(() => cluster.nodes.every((n) => reason.test(cluster.log(n))), 30_000) >= 0, 'each node logs that it waits for the Pods, and why')
    t.notMatch(cluster.log(n1), /"msg":"network policy applied"/, 'nothing applied')
    const ready = await healthGet(n1, '/readyz')
    t.equal(ready.status, 503, `/readyz 503: ${ready.body.trim()}`)
    for (const n of cluster.nodes) t.notOk(existsSync(join(n.cniDir, 'net.d', '10-flatnet.conflist')), `${n.name}: no CNI conflist: no pod starts unprotected`)
    const observed = await observe(pods, { port: 80, protocol: 'TCP' })
    t.equal(reached(observed), 0, 'no pod reaches any pod: addresses the model does not know yet are dropped')
    await api.failLists('Pod', 0)
    t.ok(await until(() => cluster.nodes.every((n) => /"msg":"network policy applied"/.test(cluster.log(n))), 60_000) >= 0, 'once the Pods are listed: applied')
    t.equal((await healthGet(n1, '/readyz')).status, 200, '/readyz 200')
    for (const n of cluster.nodes) t.ok(existsSync(join(n.cniDir, 'net.d', '10-flatnet.conflist')), `${n.name}: conflist written`)
    t.equal(reached(await observe(pods, { port: 80, protocol: 'TCP' })), PODS.length * (PODS.length - 1), 'no policy: every pod reaches every pod')
  })

  await t.test('a watch that fails later: the last model stays in force, said stale', async (t) => {
    await api.failLists('*', -1, 500)
    await api.failWatches('*', -1, 500)
    await api.closeWatches()
    t.ok(await until(() => /"msg":"network policy objects stale"/.test(cluster.log(n1)), 30_000) >= 0, 'logged')
    const ready = await healthGet(n1, '/readyz')
    t.equal(ready.status, 503, `/readyz 503: ${ready.body.trim()}`)
    t.match(ready.body, /the table stays as it was/)
    const metrics = (await metricsGet(n1)).body
    t.equal(sample(metrics, 'flatnet_policy_objects_stale'), 1, 'flatnet_policy_objects_stale 1')
    t.equal(sample(metrics, 'flatnet_policy_enforced'), 1, 'still enforced')
    t.equal(sample(metrics, 'flatnet_ready'), 0, 'flatnet_ready 0, as /readyz says')
    await api.failLists('*', 0)
    await api.failWatches('*', 0)
    t.ok(await until(() => /"msg":"network policy objects current again"/.test(cluster.log(n1)), 60_000) >= 0, 'current again once the watch is back')
    t.equal((await healthGet(n1, '/readyz')).status, 200, '/readyz 200')
  })

  // A policy the daemon refuses with no good version before it (here endPort below port; in a
  // cluster, a field newer than the daemon's checks) must not leave its pods open: it stands in
  // as isolation, both ways, of what it selects, and the refusal is counted.
  await t.test('a NetworkPolicy the daemon cannot read isolates what it would select', async (t) => {
    const everyNode = async (rv: number): Promise<void> => {
      t.ok(await until(async () => (await Promise.all(cluster.nodes.map(async (n) => digestVersions((await policyOf(cluster, n.name)).digest).NetworkPolicy >= rv))).every(Boolean), 30_000) >= 0,
        `every node applied NetworkPolicy version ${rv}`)
    }
    const xa = 'x/a'
    await everyNode(await api.put(realNetworkPolicy('x', 'unreadable', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80, endPort: 79 }] }] }) as KubeObject))
    const observed = await observe(pods, { port: 80, protocol: 'TCP' })
    t.same(PODS.filter((p) => p !== xa && observed.get(p, xa)), [], 'nothing reaches x/a')
    t.same(PODS.filter((p) => p !== xa && observed.get(xa, p)), [], 'x/a reaches nothing')
    t.equal(reached(observed), (PODS.length - 1) * (PODS.length - 2), 'the other pods reach each other')
    t.equal(sample((await metricsGet(n1)).body, 'flatnet_policy_objects_refused'), 1, 'flatnet_policy_objects_refused 1')
    t.match(cluster.log(n1), /"object":"x\/unreadable".*"msg":"object refused; a stand-in that fails closed is held"/, 'logged, naming the object')
    await everyNode(await api.delete('NetworkPolicy', 'unreadable', 'x'))
    t.equal(reached(await observe(pods, { port: 80, protocol: 'TCP' })), PODS.length * (PODS.length - 1), 'deleted: every pod reaches every pod again')
  })

  const latencies: number[] = []
  /** Until every node's applied model reflects every write so far. */
  const applied = async (): Promise<void> => {
    const start = Date.now()
    for (;;) {
      const states = await Promise.all(cluster.nodes.map(async (n) => await policyOf(cluster, n.name)))
      if (states.every((s) => {
        if (s.error !== undefined || s.stale !== undefined) return false
        const v = digestVersions(s.digest)
        return Object.entries(state.versions).every(([k, want]) => v[k] >= want)
      })) break
      if (Date.now() - start > 60_000) throw new Error(`the nodes did not apply the API server's objects within 60 s: ${JSON.stringify(states.map((s) => [s.error, s.stale, s.digest]))}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    latencies.push(Date.now() - start)
  }

  for (const [index, c] of PROBED_CASES.entries()) {
    const [first, ...rest] = c.steps
    const label = (i: number, step: Step, how = ''): string => `${c.name}, step ${i + 1}${step.by ? ` (${step.by})` : ''}${how}`
    // Every fourth case is listed at a start: the three nodes restart together, as a DaemonSet's
    // pods may (30 s each to get ready: three starts share the machine's two CPUs). A quarter of
    // the cases cover the listing's shapes; every case is created while the daemons run as well.
    if (index % 4 === 0) {
      await Promise.all(cluster.nodes.map(async (n) => await cluster.stopDaemon(n)))
      await state.write(first)
      await Promise.all(cluster.nodes.map(async (n) => await cluster.startDaemon(n, 30_000)))
      await applied()
      await checkStep(t, cluster, pods, first, label(0, first, ', listed at start'))
    }
    await state.write({ ...first, policies: [] })
    await applied()
    await state.write(first)
    await applied()
    await checkStep(t, cluster, pods, first, label(0, first, ', created after'))
    for (const [i, step] of rest.entries()) {
      await state.write(step)
      await applied()
      await checkStep(t, cluster, pods, step, label(i + 1, step))
    }
  }
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]
  t.comment(`API server written -> applied on all 3 nodes, ${latencies.length} changes: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`)
  const lists = (await api.requestLog()).filter((r) => !r.watch && r.kind === 'Pod')
  t.comment(`Pod lists served: ${lists.length} (3 daemons x ${Math.ceil(PROBED_CASES.length / 4) + 1} starts, plus the retries above)`)
})
