// The compiled model's shape, which the nftables renderer will read: per pod IP,
// per direction, entries of (address set, ports, policy); and the node exception.
import t from 'tap'
import { compile } from '../../src/policy/compile.js'
import { evaluate } from '../../src/policy/evaluate.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../../src/policy/objects.js'

const ns = [parseNamespace({ metadata: { name: 'x' } }), parseNamespace({ metadata: { name: 'y' } })]
const pod = (namespace: string, name: string, ips: string[], ports: unknown[] = [], extra: Record<string, unknown> = {}): ReturnType<typeof parsePod> => parsePod({
  metadata: { namespace, name, labels: { pod: name } },
  spec: { nodeName: 'n1', containers: [{ ports }], ...extra },
  status: { podIPs: ips.map((ip) => ({ ip })) },
})
const pods = [
  pod('x', 'a', ['10.244.1.10', 'fd00:10:244:1::a']),
  pod('y', 'web1', ['10.244.2.10'], [{ name: 'http', containerPort: 8080 }]),
  pod('y', 'web2', ['10.244.2.11'], [{ name: 'http', containerPort: 9090 }]),
  pod('y', 'db', ['10.244.2.12']),
  pod('kube-system', 'agent', ['192.0.2.1'], [], { hostNetwork: true }),
]
const egressNamed = parseNetworkPolicy({
  metadata: { namespace: 'x', name: 'to-http' },
  spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'http' }, { port: 53, protocol: 'UDP' }] }] },
})

t.test('egress named port: one entry per peer pod that has the port', async (t) => {
  const m = compile(ns, pods, [egressNamed])
  const a = m.byIP.get('fd00:10:244:1::a')
  t.equal(a, m.byIP.get('10.244.1.10'), 'both of a dual-stack pod\'s IPs key the same entry')
  t.same(a?.egress, {
    isolated: true,
    policies: ['x/to-http'],
    entries: [
      { policy: 'x/to-http', rule: 0, peers: { any: false, ips: ['10.244.1.10', 'fd00:10:244:1::a', '10.244.2.10', '10.244.2.11', '10.244.2.12'], blocks: [] }, ports: [{ protocol: 'UDP', ports: { from: 53, to: 53 } }] },
      { policy: 'x/to-http', rule: 0, peers: { any: false, ips: ['10.244.2.10'], blocks: [] }, ports: [{ protocol: 'TCP', ports: { from: 8080, to: 8080 } }] },
      { policy: 'x/to-http', rule: 0, peers: { any: false, ips: ['10.244.2.11'], blocks: [] }, ports: [{ protocol: 'TCP', ports: { from: 9090, to: 9090 } }] },
    ],
  })
  t.same(a?.ingress, { isolated: false, policies: [], entries: [] })
  const q = (toIP: string, port: number): boolean => evaluate(m, { fromIP: '10.244.1.10', toIP, protocol: 'TCP', port }).allowed
  t.ok(q('10.244.2.10', 8080)); t.notOk(q('10.244.2.10', 9090)); t.ok(q('10.244.2.11', 9090)); t.notOk(q('10.244.2.12', 8080))
  t.notOk(m.byIP.has('192.0.2.1'), 'host-network pods are no destination to isolate')
})

t.test('verdict: isolation and the policies that allow', async (t) => {
  const allow = parseNetworkPolicy({ metadata: { namespace: 'y', name: 'allow-x' }, spec: { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }] }] } })
  const deny = parseNetworkPolicy({ metadata: { namespace: 'y', name: 'deny' }, spec: { podSelector: {} } })
  const m = compile(ns, pods, [deny, allow], { nodeAddresses: { n1: ['192.0.2.1'] } })
  t.same(evaluate(m, { fromIP: '10.244.1.10', toIP: '10.244.2.12', protocol: 'TCP', port: 5432 }), {
    allowed: true,
    ingress: { isolated: true, allowedBy: ['y/allow-x'], fromOwnNode: false },
    egress: { isolated: false, allowedBy: [], toOwnNode: false },
  })
  t.same(evaluate(m, { fromIP: '10.244.2.10', toIP: '10.244.2.12', protocol: 'TCP', port: 5432 }).ingress, { isolated: true, allowedBy: [], fromOwnNode: false })
  const fromNode = evaluate(m, { fromIP: '192.0.2.1', toIP: '10.244.2.12', protocol: 'TCP', port: 5432 })
  t.equal(fromNode.allowed, true, 'the node may always reach its pods (kubelet probes)')
  t.equal(fromNode.ingress.fromOwnNode, true)
  t.equal(evaluate(compile(ns, pods, [deny, allow]), { fromIP: '192.0.2.1', toIP: '10.244.2.12', protocol: 'TCP', port: 1 }).allowed, false, 'without node addresses it is just another source')
})

// A finished pod's IP goes back to IPAM and is soon another pod's: the finished pod must
// be neither a destination (its rules would land on the new pod; two isolated pods on
// one address made every nft transaction fail) nor a peer (its labels would admit the
// new pod where a policy admits the old one).
t.test('finished pods (Succeeded, Failed) leave the model: their IP is reused', async (t) => {
  const finished = (phase: string): ReturnType<typeof parsePod> => parsePod({
    metadata: { namespace: 'y', name: `job-${phase.toLowerCase()}`, labels: { pod: 'db' } },
    spec: { nodeName: 'n1', containers: [{}] },
    status: { phase, podIPs: [{ ip: '10.244.1.20' }] },
  })
  const reuser = parsePod({ metadata: { namespace: 'x', name: 'new', labels: { pod: 'new' } }, spec: { nodeName: 'n1' }, status: { phase: 'Running', podIPs: [{ ip: '10.244.1.20' }] } })
  const isolated = parseNetworkPolicy({ metadata: { namespace: 'y', name: 'db-from-a' }, spec: { podSelector: { matchLabels: { pod: 'db' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'a' } } }] }] } })
  const fromDb = parseNetworkPolicy({ metadata: { namespace: 'x', name: 'a-from-db' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'db' } } }] }] } })
  for (const phase of ['Succeeded', 'Failed']) {
    const m = compile(ns, [...pods, finished(phase), reuser], [isolated, fromDb])
    t.equal(m.byIP.get('10.244.1.20')?.pod, 'x/new', `${phase}: the address is the running pod's`)
    t.notOk(m.byIP.get('10.244.1.20')?.ingress.isolated, `${phase}: and carries none of the finished pod's isolation`)
    t.notOk(evaluate(m, { fromIP: '10.244.1.20', toIP: '10.244.1.10', protocol: 'TCP', port: 80 }).allowed,
      `${phase}: the new pod is not admitted where the finished one was`)
  }
  t.equal(finished('Running').finished, false, 'a running pod is not finished')
})
