// NetworkPolicy's objects from the API server: Namespaces, Pods and NetworkPolicies
// through the official client's informers, against the fake API server speaking the
// real list/watch protocol. Each change reaches the compiled model; a bad object is
// skipped, naming it; a 410 Gone after a compaction relists, missed deletes included.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { until } from '../../src/lab/until.js'
import { watchPolicyObjects } from '../../src/policy/kubernetes.js'
import type { Manifests } from '../../src/policy/manifests.js'
import { FakeKubeApi, type FakeObject, kubeconfigFor } from '../fixtures/fake-kube-api.js'
import { namespaceObjects, podObjects } from '../policy/world.js'

const denyAll = (ns: string, extra: Record<string, unknown> = {}): FakeObject => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: ns, name: 'deny-all' }, spec: { podSelector: {}, ...extra },
})

t.setTimeout(30_000)
t.test('the cluster\'s policy objects, kept current through list/watch', async (t) => {
  const api = new FakeKubeApi()
  const server = await api.start()
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-kube-policy-'))
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, kubeconfigFor(server))
  for (const o of [...namespaceObjects(), ...podObjects()] as FakeObject[]) api.putObject(o)
  api.putObject(denyAll('x'))
  let last: Manifests | undefined
  let calls = 0
  const source = watchPolicyObjects(kubeconfig, pino({ level: 'silent' }), (m) => { last = m; calls++ })
  // The informers first: stopped, they no longer re-open the watches the server's close waits for.
  t.teardown(async () => { await source.stop(); await api.stop(); rmSync(dir, { recursive: true, force: true }) })
  const seen = async (what: string, ok: (m: Manifests) => boolean): Promise<void> => {
    t.ok(await until(() => last !== undefined && ok(last), 5000) >= 0, what)
  }
  await seen('all three lists in: 3 namespaces, 9 pods, 1 policy', (m) => m.namespaces.length === 3 && m.pods.length === 9 && m.policies.length === 1)
  t.equal(calls, 1, 'one model for the initial lists, not one per object')
  t.same(last?.namespaces.find((n) => n.name === 'y')?.labels, { ns: 'y', 'kubernetes.io/metadata.name': 'y' }, 'namespaces as the API server labels them')

  const [a] = podObjects({ 'x/a': { role: 'db' } }) as FakeObject[]
  api.putObject(a)
  await seen('a pod relabelled', (m) => m.pods.find((p) => p.name === 'a' && p.namespace === 'x')?.labels.role === 'db')
  api.putObject(denyAll('y'))
  await seen('a policy added', (m) => m.policies.length === 2)
  api.putObject(denyAll('z', { ingress: [{ ports: [{ port: 80, endPort: 79 }] }] }))
  await seen('a bad policy skipped, named with its field', (m) => m.policies.length === 2 && m.errors.some((e) => /NetworkPolicy z\/deny-all: spec\.ingress\[0\]\.ports\[0\]\.endPort: 79 is below port 80/.test(e)))
  api.deleteObject('NetworkPolicy', 'deny-all', 'z')
  api.deleteObject('NetworkPolicy', 'deny-all', 'y')
  await seen('policies deleted', (m) => m.policies.length === 1 && m.errors.length === 0)

  api.compact()
  api.deleteObject('NetworkPolicy', 'deny-all', 'x') // while nobody watches
  api.closeWatches()
  await seen('after 410 Gone the relist finds the delete it missed', (m) => m.policies.length === 0)
})
