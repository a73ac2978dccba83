// NetworkPolicy's objects from the API server: Namespaces, Pods and NetworkPolicies
// through the reflectors, against the lab's API server speaking the real list/watch
// protocol (pages, bookmarks, 410 Gone) with objects of real size. Whatever path an
// object takes (listed at start, a watch event, a relist after 410, a manifest file),
// the model must be the same: the policy engine reads the API's JSON, never a client's
// re-typed copy (where an ingress rule's `from` became `_from` and every listed policy
// allowed every source).
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { KubeClient } from '../../src/kube/client.js'
import type { KubeObject } from '../../src/lab/kube-api.js'
import { realNamespace, realNetworkPolicy, realPod } from '../../src/lab/kube-objects.js'
import { until } from '../../src/lab/until.js'
import { type PolicySourceStatus, watchPolicyObjects } from '../../src/policy/kubernetes.js'
import { loadManifests, type Manifests } from '../../src/policy/manifests.js'
import { CYCLONUS_CASES, NAMESPACES, nodeOf, PODS, podIP, SERVED, UPSTREAM_CASES } from '../policy/upstream-cases.js'
import { serveKubeApi } from '../lib/kube.js'

t.setTimeout(60_000)
const log = pino({ level: 'silent' })

/** Every policy of upstream's cases (renamed to be unique), the 3x3 pods and namespaces, each as a cluster stores it. */
function clusterObjects (): KubeObject[] {
  const namespaces = NAMESPACES.map((ns) => realNamespace(ns, { ns }))
  const pods = PODS.map((key) => {
    const [namespace, name] = key.split('/')
    return realPod({
      namespace,
      name,
      labels: { pod: name },
      nodeName: nodeOf(key),
      ips: [podIP(key)],
      ports: SERVED.map(({ port, protocol }) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })),
    })
  })
  const policies = [...UPSTREAM_CASES, ...CYCLONUS_CASES].flatMap((c, ci) => c.steps.flatMap((s, si) => s.policies.map((p, pi) => {
    const { metadata, spec } = p as { metadata: { namespace: string, name: string }, spec: Record<string, unknown> }
    return realNetworkPolicy(metadata.namespace, `${metadata.name}-${ci}-${si}-${pi}`.slice(0, 63), spec)
  })))
  return [...namespaces, ...pods, ...policies] as KubeObject[]
}

const sorted = (m: Manifests): Manifests => {
  const by = (a: { namespace?: string, name: string }, b: { namespace?: string, name: string }): number =>
    `${a.namespace ?? ''}/${a.name}`.localeCompare(`${b.namespace ?? ''}/${b.name}`)
  return { namespaces: [...m.namespaces].sort(by), pods: [...m.pods].sort(by), policies: [...m.policies].sort(by), errors: [...m.errors].sort() }
}

const serve = serveKubeApi

interface Watched { last?: Manifests, calls: number, events: number, status?: PolicySourceStatus, stop: () => Promise<void> }

function watch (t: Test, client: KubeClient, o: { pageSize?: number, sleep?: (ms: number) => Promise<void> } = {}): Watched {
  const w: Watched = { calls: 0, events: 0, stop: async () => {} }
  const source = watchPolicyObjects({
    client,
    log,
    onObject: () => { w.events++ },
    // The arrays are built here, for the comparison: the daemon never builds them on a change's path.
    onChange: (status) => { w.last = source.objects(); w.calls++; w.status = status },
    onStatus: (status) => { w.status = status },
    reflector: { pageSize: o.pageSize, sleep: o.sleep === undefined ? undefined : async (ms) => await o.sleep?.(ms) },
  })
  w.stop = source.stop
  t.teardown(source.stop)
  return w
}

t.test('every path an object takes gives the same model: list, watch, relist after 410, manifests', async (t) => {
  const objects = clusterObjects()
  const want = { namespaces: 3, pods: 9, policies: objects.length - 12 }
  const complete = (w: Watched) => (): boolean => w.last !== undefined && w.last.namespaces.length === want.namespaces &&
    w.last.pods.length === want.pods && w.last.policies.length === want.policies

  const dir = mkdtempSync(join(tmpdir(), 'flatnet-kube-paths-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }))
  const manifests = sorted(loadManifests(dir))
  t.same(manifests.errors, [], 'every object valid')
  t.equal(manifests.policies.length, want.policies, `${want.policies} policies`)

  // Listed: everything there before the source starts, read in pages as the API server serves them.
  const listed = await serve(t)
  for (const o of objects) listed.api.putObject(o)
  const a = watch(t, listed.client, { pageSize: 7 })
  t.ok(await until(complete(a), 10_000) >= 0, 'listed at start')
  t.equal(a.calls, 1, 'one model for the initial lists, not one per object')
  t.same(sorted(a.last as Manifests), manifests, 'listed == manifests')
  const fromPeers = (a.last as Manifests).policies.find((p) => p.name.startsWith('allow-ns-y-pod-a-via-namespace-pod-selector'))
  t.equal(fromPeers?.ingress[0]?.peers.length, 1, 'a listed policy keeps its ingress rule\'s `from` peers')

  // Watched: created after the source has listed an empty cluster.
  const watched = await serve(t)
  const b = watch(t, watched.client)
  t.ok(await until(() => b.calls === 1, 10_000) >= 0, 'an empty cluster is a complete view too')
  for (const o of objects) watched.api.putObject(o)
  t.ok(await until(complete(b), 10_000) >= 0, 'created after the start')
  t.same(sorted(b.last as Manifests), manifests, 'watched == manifests')

  // Relisted: created while the watch was down and history compacted: 410, then a relist.
  const relisted = await serve(t)
  const c = watch(t, relisted.client)
  t.ok(await until(() => c.calls === 1, 10_000) >= 0, 'listed empty')
  // In one turn of the event loop, before the reflectors can watch again: watches dropped,
  // history compacted, every object created. Their resume points are now too old.
  relisted.api.closeWatches()
  relisted.api.compact()
  for (const o of objects) relisted.api.putObject(o)
  t.ok(await until(complete(c), 10_000) >= 0, 'relisted after 410 Gone')
  t.same(sorted(c.last as Manifests), manifests, 'relisted == manifests')
  t.ok(relisted.api.requestLog.filter((q) => q.kind === 'NetworkPolicy' && !q.watch).length >= 2, 'the policies were listed again')
})

t.test('changes flow through; a bad update keeps the last good version and is named', async (t) => {
  const { api, client } = await serve(t)
  for (const o of clusterObjects().slice(0, 12)) api.putObject(o)
  const policy = (spec: Record<string, unknown>): KubeObject => realNetworkPolicy('x', 'deny-all', { podSelector: {}, ...spec }) as KubeObject
  api.putObject(policy({}))
  const w = watch(t, client)
  const seen = async (what: string, ok: (m: Manifests) => boolean): Promise<void> => {
    t.ok(await until(() => w.last !== undefined && ok(w.last), 5000) >= 0, what)
  }
  await seen('3 namespaces, 9 pods, 1 policy', (m) => m.namespaces.length === 3 && m.pods.length === 9 && m.policies.length === 1)
  t.same(w.last?.namespaces.find((n) => n.name === 'y')?.labels, { ns: 'y', 'kubernetes.io/metadata.name': 'y' }, 'namespaces as the API server labels them')
  api.putObject(realPod({ namespace: 'x', name: 'a', labels: { pod: 'a', role: 'db' }, nodeName: 'node-1', ips: [podIP('x/a')] }) as KubeObject)
  await seen('a pod relabelled', (m) => m.pods.find((p) => p.name === 'a' && p.namespace === 'x')?.labels.role === 'db')
  api.putObject(policy({ ingress: [{ ports: [{ port: 80, endPort: 79 }] }] }))
  await seen('a bad update named with its field', (m) => m.errors.some((e) => /NetworkPolicy x\/deny-all: .*spec\.ingress\[0\]\.ports\[0\]\.endPort: 79 is below port 80/.test(e)))
  t.same(w.last?.policies.find((p) => p.name === 'deny-all')?.ingress, [], 'the last good version (deny all ingress) stays in force')
  api.deleteObject('NetworkPolicy', 'deny-all', 'x')
  await seen('deleted: gone, and so is its error', (m) => m.policies.length === 0 && m.errors.length === 0)

  // Refused with no last good version (as a field newer than this daemon's validation would
  // be): it isolates, both ways, what its podSelector selects, until a good version comes.
  api.putObject(realNetworkPolicy('x', 'new-field', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80, endPort: 79 }] }] }) as KubeObject)
  await seen('a never-good policy is named', (m) => m.errors.some((e) => /NetworkPolicy x\/new-field: /.test(e)))
  t.same(w.last?.policies.find((p) => p.name === 'new-field'), { namespace: 'x', name: 'new-field', podSelector: { matchLabels: { pod: 'a' }, matchExpressions: [] }, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] },
    'and held as isolation of the pods it selects, ingress and egress')
  api.putObject(realNetworkPolicy('x', 'new-field', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80 }] }] }) as KubeObject)
  await seen('a good version replaces the stand-in', (m) => m.errors.length === 0 && m.policies.find((p) => p.name === 'new-field')?.ingress.length === 1)
})

t.test('a Pod list that keeps failing: no model at all, until it is listed', async (t) => {
  const { api, client } = await serve(t)
  for (const o of clusterObjects()) api.putObject(o)
  api.failLists('Pod', Infinity, 500)
  const delays: number[] = []
  const w = watch(t, client, { sleep: async (ms) => { delays.push(ms); await new Promise((resolve) => setTimeout(resolve, 5)) } })
  t.ok(await until(() => delays.length >= 5 && w.status?.Namespace.listed === true && w.status.NetworkPolicy.listed, 10_000) >= 0, 'five failed Pod lists; the other kinds listed')
  t.equal(w.calls, 0, 'no model handed on: enforcement on a view without pods would isolate nothing')
  t.equal(w.status?.Pod.listed, false)
  t.match(w.status?.Pod.error ?? '', /500/, 'the Pod list\'s failure is reported')
  api.failLists('Pod', 0)
  t.ok(await until(() => w.calls === 1, 40_000) >= 0, 'the list recovers: the first model, with every pod')
  t.equal(w.last?.pods.length, 9)
})
