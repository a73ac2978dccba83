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
  t.same(parsePortArg('http'), { port: 'http', protocol: 'TCP' }, 'a container port\'s name, TCP as a NetworkPolicyPort defaults')
  t.same(parsePortArg('dns/udp'), { port: 'dns', protocol: 'UDP' })
  for (const bad of ['0', '65536', 'HTTP', 'a--b', 'web-', 'longer-than-15-chars', '80/icmp', '']) {
    t.match(parsePortArg(bad), `--port ${bad}: give PORT/PROTO or NAME/PROTO`, JSON.stringify(bad))
  }
})

// Named ports as Kubernetes resolves them: on the destination pod's containerPort of that name
// and protocol (NetworkPolicyPort docs). The policy allows x/web's "http" port from x/client.
const named = `apiVersion: v1
kind: List
items:
- {kind: Pod, metadata: {namespace: x, name: web, labels: {app: web}}, spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}]}, status: {podIPs: [{ip: 10.244.1.20}]}}
- {kind: Pod, metadata: {namespace: x, name: api, labels: {app: api}}, spec: {containers: [{name: c, ports: [{name: http, containerPort: 9000}]}]}, status: {podIPs: [{ip: 10.244.1.21}]}}
- {kind: Pod, metadata: {namespace: x, name: client, labels: {app: client}}, status: {podIPs: [{ip: 10.244.2.30}]}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {namespace: x, name: web-http}
  spec:
    podSelector: {matchLabels: {app: web}}
    ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]
`

t.test('a named --port resolves on the destination pod', async (t) => {
  const m = loadManifests('-', () => named)
  const allowed = explain(m, 'x/client', 'x/web', 'http', 'TCP')
  t.equal(allowed.verdict.allowed, true)
  t.match(allowed.text, 'x/client (10.244.2.30) -> x/web (10.244.1.20) 8080/TCP (http): ALLOWED')
  t.equal(explain(m, 'x/client', 'x/web', 8080, 'TCP').verdict.allowed, true, 'the same as its number')
  t.equal(explain(m, 'x/api', 'x/web', 'http', 'TCP').verdict.allowed, false, 'not from another pod')
  t.match(explain(m, 'x/web', 'x/api', 'http', 'TCP').text, '9000/TCP (http): ALLOWED', 'another pod, another number')
  t.throws(() => explain(m, 'x/web', 'x/client', 'http', 'TCP'), /pod x\/client has no TCP container port named http \(its named ports: none\)/)
  t.throws(() => explain(m, 'x/client', 'x/web', 'dns', 'TCP'), /pod x\/web has no TCP container port named dns \(its named ports: http 8080\/TCP, dns 53\/UDP\)/)
})

t.test('matrix with a named --port: each column its pod\'s number; "-" where the pod has no such port', async (t) => {
  const m = loadManifests('-', () => named)
  t.equal(matrix(m, 'http', 'TCP'), '-\tx/api\tx/client\tx/web\nx/api\t.\t-\tX\nx/client\t.\t-\t.\nx/web\t.\t-\tX\n')
})

t.test('--manifests: a directory, one file, or stdin; YAML or JSON; a List, several documents', async (t) => {
  const pods = (m: ReturnType<typeof loadManifests>): string[] => m.pods.map((p) => `${p.namespace}/${p.name}`).sort()
  t.same(pods(loadManifests(join(dir, 'cluster.yaml'))), ['x/a', 'x/b', 'y/a'], 'one file: a List and two more documents')
  t.same(pods(loadManifests('-', () => named)), ['x/api', 'x/client', 'x/web'], 'stdin, as kubectl get -o yaml writes it')
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ kind: 'Pod', metadata: { namespace: 'x', name: 'j' }, status: { podIPs: [{ ip: '10.244.9.9' }] } }] })
  t.same(pods(loadManifests('-', () => json)), ['x/j'], 'stdin, as kubectl get -o json writes it')
  t.match(loadManifests('-', () => '{"kind": "List", "items": [}').errors, [/^\(stdin\): /], 'stdin that is neither: the YAML parser\'s error')
  const broken = join(dir, 'broken.json.txt')
  writeFileSync(broken, '{\n  "kind": "Pod",\n  "metadata": }\n')
  t.match(loadManifests(broken).errors[0], `${broken}:`, 'not .json: read as YAML, which says where')
  t.throws(() => loadManifests(join(dir, 'missing.yaml')), /missing\.yaml: no such file or directory; give a directory of manifests, a file, or - for stdin/)
})

t.test('a .json manifest that is no JSON: FILE:LINE:COLUMN', async (t) => {
  const bad = mkdtempSync(join(tmpdir(), 'flatnet-policy-bad-'))
  t.teardown(() => rmSync(bad, { recursive: true, force: true }))
  writeFileSync(join(bad, 'p.json'), '{\n  "kind": "Pod",\n  "metadata": }\n')
  t.same(loadManifests(bad).errors, [`${join(bad, 'p.json')}:3:15: Unexpected token '}'`])
})
