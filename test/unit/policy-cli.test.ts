// `flatnet policy matrix|explain` from manifests: YAML and JSON, several documents, kind: List.
import t from 'tap'
import { loadManifests } from '../../src/policy/manifests.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { explain, matrix, parsePortArg } from '../../src/policy/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'flatnet-policy-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'cluster.yaml'), `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x, labels: {ns: x}}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: a, labels: {pod: a}}, status: {podIPs: [{ip: 10.244.1.10}]}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: b, labels: {pod: b}}, status: {podIPs: [{ip: 10.244.2.11}]}}
---
{apiVersion: v1, kind: Pod, metadata: {namespace: y, name: a, labels: {pod: a}}, status: {podIPs: [{ip: 10.244.3.12}]}}
---
apiVersion: v1
kind: Service
metadata: {namespace: x, name: ignored}
`)
writeFileSync(join(dir, 'policy.json'), JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: 'x', name: 'x-a-allows-x-b' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] } }))

t.test('matrix: upstream\'s truth-table layout', async (t) => {
  t.equal(matrix(loadManifests(dir), 80, 'TCP'), '-\tx/a\tx/b\ty/a\nx/a\tX\t.\t.\nx/b\t.\t.\t.\ny/a\tX\t.\t.\n')
})

t.test('explain names the isolating and allowing policies', async (t) => {
  const denied = explain(loadManifests(dir), 'y/a', 'x/a', 80, 'TCP')
  t.equal(denied.verdict.allowed, false)
  t.match(denied.text, 'ingress of x/a: isolated by x/x-a-allows-x-b; no rule allows it: denied')
  t.match(explain(loadManifests(dir), 'x/b', 'x/a', 80, 'TCP').text, 'allowed by x/x-a-allows-x-b')
  t.throws(() => explain(loadManifests(dir), 'x/q', 'x/a', 80, 'TCP'), /no pod x\/q \(pods: x\/a, x\/b, y\/a\)/)
})

// A bad object is refused with one line naming it and the field; the rest applies; a refused
// NetworkPolicy isolates what it would select (never more open than the policy could be).
t.test('a bad object is refused, named with its file and field; the rest is loaded', async (t) => {
  const bad = mkdtempSync(join(tmpdir(), 'flatnet-policy-bad-'))
  t.teardown(() => rmSync(bad, { recursive: true, force: true }))
  writeFileSync(join(bad, 'p.yaml'), 'kind: NetworkPolicy\nmetadata: {namespace: y, name: deny-all}\nspec:\n  ingress: [{ports: [{port: 80, endPort: 79}]}]\n' +
    '---\nkind: NetworkPolicy\nmetadata: {namespace: y, name: fine}\nspec: {podSelector: {}}\n')
  const m = loadManifests(bad)
  t.same(m.errors, [`${join(bad, 'p.yaml')}: NetworkPolicy y/deny-all: spec.ingress[0].ports[0].endPort: 79 is below port 80`])
  t.same(m.policies.map((p) => p.name), ['deny-all', 'fine'])
  t.same(m.policies[0], { namespace: 'y', name: 'deny-all', podSelector: { matchLabels: {}, matchExpressions: [] }, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] },
    'the refused policy stands in as isolation, both ways, of what it selects (no podSelector: the namespace)')
})

t.test('--port', async (t) => {
  t.same(parsePortArg('80/tcp'), { port: 80, protocol: 'TCP' })
  t.same(parsePortArg('53/UDP'), { port: 53, protocol: 'UDP' })
  t.same(parsePortArg('81'), { port: 81, protocol: 'TCP' })
  t.equal(parsePortArg('http'), '--port http: give PORT/PROTO, e.g. 80/tcp')
})
