// The validator: untrusted JSON in, typed objects or an error naming object and field out.
import t from 'tap'
import { parseNamespace, parseNetworkPolicy, parsePod, PolicyObjectError } from '../../src/policy/objects.js'

const np = (spec: Record<string, unknown>, name = 'deny-all', namespace = 'y'): unknown =>
  ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec })

t.test('policyTypes defaulted as the API server does', async (t) => {
  const cases: Array<{ name: string, spec: Record<string, unknown>, want: string[] }> = [
    { name: 'no rules: Ingress', spec: { podSelector: {} }, want: ['Ingress'] },
    { name: 'ingress rules: Ingress', spec: { podSelector: {}, ingress: [{}] }, want: ['Ingress'] },
    { name: 'egress rules: Ingress and Egress', spec: { podSelector: {}, egress: [{}] }, want: ['Ingress', 'Egress'] },
    { name: 'given: kept', spec: { podSelector: {}, policyTypes: ['Egress'] }, want: ['Egress'] },
    { name: 'empty list: defaulted', spec: { podSelector: {}, policyTypes: [], egress: [{}] }, want: ['Ingress', 'Egress'] },
  ]
  for (const c of cases) t.same(parseNetworkPolicy(np(c.spec)).policyTypes, c.want, c.name)
})

t.test('a full policy parses to the model types', async (t) => {
  const p = parseNetworkPolicy(np({
    podSelector: { matchLabels: { app: 'db' } },
    ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, podSelector: {} }, { ipBlock: { cidr: '10.1.2.3/8', except: ['10.9.0.0/16'] } }], ports: [{ port: 80 }, { port: 'http', protocol: 'UDP' }, { port: 8000, endPort: 8080 }] }],
  }))
  t.same(p.ingress[0].ports, [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 'http' }, { protocol: 'TCP', port: 8000, endPort: 8080 }])
  t.same(p.ingress[0].peers[1], { ipBlock: { cidr: '10.0.0.0/8', except: ['10.9.0.0/16'] } }, 'host bits dropped, as ParseCIDRSloppy does')
  t.same(p.ingress[0].peers[0].namespaceSelector, { matchLabels: {}, matchExpressions: [{ key: 'team', operator: 'Exists', values: [] }] })
})

t.test('rejections name the object and the field', async (t) => {
  const cases: Array<{ name: string, obj: unknown, want: string }> = [
    { name: 'endPort below port', obj: np({ podSelector: {}, ingress: [{ ports: [{ port: 80 }, { port: 80, endPort: 79 }] }] }), want: 'NetworkPolicy y/deny-all: spec.ingress[0].ports[1].endPort: 79 is below port 80' },
    // Names as the API server validates them: they reach nft comments, where a quote or a newline would break the table.
    { name: 'a quote in a policy name', obj: np({ podSelector: {} }, 'a"b'), want: 'NetworkPolicy y/a"b: metadata.name: "a\\"b" is not a valid name (DNS-1123 subdomain: at most 253 of a-z, 0-9, \'-\', \'.\', alphanumeric at each end)' },
    { name: 'a newline in a namespace', obj: np({ podSelector: {} }, 'p', 'y\nchain'), want: 'NetworkPolicy y\nchain/p: metadata.namespace: "y\\nchain" is not a valid name (DNS-1123 label: at most 63 of a-z, 0-9, \'-\', alphanumeric at each end)' },
    { name: 'a name over 253', obj: np({ podSelector: {} }, 'a'.repeat(254)), want: `NetworkPolicy y/${'a'.repeat(254)}: metadata.name: "${'a'.repeat(254)}" is not a valid name (DNS-1123 subdomain: at most 253 of a-z, 0-9, '-', '.', alphanumeric at each end)` },
    // network_policy_api.go "should support creating NetworkPolicy API with endport field": these three are refused.
    { name: 'endPort without port', obj: np({ podSelector: {}, egress: [{ ports: [{ endPort: 20000 }] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].ports[0].endPort: may not be set without port' },
    { name: 'endPort with a named port', obj: np({ podSelector: {}, egress: [{ ports: [{ port: 'serve-80', endPort: 20000 }] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].ports[0].endPort: may not be set when port is a named port ("serve-80")' },
    { name: 'endPort smaller than port', obj: np({ podSelector: {}, egress: [{ ports: [{ port: 30000, endPort: 20000 }] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].ports[0].endPort: 20000 is below port 30000' },
    { name: 'port out of range', obj: np({ podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] }), want: 'NetworkPolicy y/deny-all: spec.ingress[0].ports[0].port: 70000 must be a port number, 1-65535' },
    { name: 'bad port name', obj: np({ podSelector: {}, ingress: [{ ports: [{ port: 'Serve_80' }] }] }), want: 'NetworkPolicy y/deny-all: spec.ingress[0].ports[0].port: "Serve_80" is not a valid port name (IANA_SVC_NAME: 1-15 of a-z, 0-9, \'-\')' },
    { name: 'bad protocol', obj: np({ podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP' }] }] }), want: 'NetworkPolicy y/deny-all: spec.ingress[0].ports[0].protocol: "ICMP" must be one of TCP, UDP, SCTP' },
    { name: 'ipBlock with a selector', obj: np({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }), want: 'NetworkPolicy y/deny-all: spec.ingress[0].from[0]: ipBlock may not be combined with podSelector or namespaceSelector' },
    { name: 'empty peer', obj: np({ podSelector: {}, egress: [{ to: [{}] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].to[0]: must specify podSelector, namespaceSelector or ipBlock' },
    { name: 'except outside cidr', obj: np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].to[0].ipBlock.except[0]: "10.1.0.0/24" must be a strict subset of cidr 10.0.0.0/16' },
    { name: 'except equal to cidr', obj: np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.0/16'] } }] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].to[0].ipBlock.except[0]: "10.0.0.0/16" must be a strict subset of cidr 10.0.0.0/16' },
    { name: 'bad cidr', obj: np({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0' } }] }] }), want: 'NetworkPolicy y/deny-all: spec.egress[0].to[0].ipBlock.cidr: "10.0.0.0" is not a CIDR (missing "/length")' },
    { name: 'In without values', obj: np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }), want: 'NetworkPolicy y/deny-all: spec.podSelector.matchExpressions[0].values: must be non-empty when operator is In' },
    { name: 'Exists with values', obj: np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }), want: 'NetworkPolicy y/deny-all: spec.podSelector.matchExpressions[0].values: must be empty when operator is Exists' },
    { name: 'unknown operator', obj: np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } }), want: 'NetworkPolicy y/deny-all: spec.podSelector.matchExpressions[0].operator: "Gt" must be one of In, NotIn, Exists, DoesNotExist' },
    { name: 'bad policyType', obj: np({ podSelector: {}, policyTypes: ['Both'] }), want: 'NetworkPolicy y/deny-all: spec.policyTypes[0]: "Both" must be Ingress or Egress' },
    { name: 'policyType twice', obj: np({ podSelector: {}, policyTypes: ['Egress', 'Egress'] }), want: 'NetworkPolicy y/deny-all: spec.policyTypes[1]: "Egress" is given twice' },
    { name: 'no spec', obj: { metadata: { namespace: 'y', name: 'p' } }, want: 'NetworkPolicy y/p: spec: missing value must be an object' },
    { name: 'no namespace', obj: { metadata: { name: 'p' }, spec: {} }, want: 'NetworkPolicy ?/p: metadata.namespace: missing value must be a string' },
    { name: 'label value not a string', obj: np({ podSelector: { matchLabels: { a: 1 } } }), want: 'NetworkPolicy y/deny-all: spec.podSelector.matchLabels.a: 1 must be a string' },
  ]
  for (const c of cases) {
    t.throws(() => parseNetworkPolicy(c.obj), { name: 'PolicyObjectError', message: c.want }, c.name)
  }
  const err = (() => { try { parseNetworkPolicy(cases[0].obj) } catch (e) { return e } })() as PolicyObjectError
  t.equal(err.object, 'NetworkPolicy y/deny-all')
  t.equal(err.field, 'spec.ingress[0].ports[1].endPort')
  // ...and the two the API accepts.
  t.doesNotThrow(() => parseNetworkPolicy(np({ podSelector: {}, egress: [{ ports: [{ port: 20000, endPort: 20000 }] }] })), 'endPort equal to port')
  t.doesNotThrow(() => parseNetworkPolicy(np({ podSelector: {}, egress: [{ ports: [{ port: 10000, endPort: 20000 }] }] })), 'endPort greater than port')
})

t.test('namespaces get kubernetes.io/metadata.name as the API server sets it', async (t) => {
  t.same(parseNamespace({ metadata: { name: 'x', labels: { ns: 'x' } } }), { name: 'x', labels: { ns: 'x', 'kubernetes.io/metadata.name': 'x' } })
  t.same(parseNamespace({ metadata: { name: 'x', labels: { 'kubernetes.io/metadata.name': 'other' } } }).labels, { 'kubernetes.io/metadata.name': 'x' }, 'forced to the name')
  t.throws(() => parseNamespace({ metadata: {} }), { message: 'Namespace ?: metadata.name: missing value must be a string' })
})

t.test('pods: IPs, ports, host network', async (t) => {
  const p = parsePod({
    metadata: { namespace: 'x', name: 'a', labels: { pod: 'a' } },
    spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 53, protocol: 'UDP' }] }] },
    status: { podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }, { ip: 'FD00:10:244:1::0005' }] },
  })
  // Only named ports are kept: a policy can name no other (and a pod is kept per pod, 150,000 of them).
  t.same(p, { namespace: 'x', name: 'a', labels: { pod: 'a' }, hostNetwork: false, finished: false, nodeName: 'n1', ips: ['10.244.1.5', 'fd00:10:244:1::5'], ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] })
  t.same(parsePod({ metadata: { namespace: 'x', name: 'b' }, status: { podIP: '10.0.0.1' } }).ips, ['10.0.0.1'], 'podIP when podIPs is absent')
  t.same(parsePod({ metadata: { namespace: 'x', name: 'b' } }).ips, [], 'pending: no IPs yet')
  t.equal(parsePod({ metadata: { namespace: 'kube-system', name: 'p' }, spec: { hostNetwork: true } }).hostNetwork, true)
  const bad: Array<{ name: string, obj: unknown, want: string }> = [
    { name: 'bad IP', obj: { metadata: { namespace: 'x', name: 'a' }, status: { podIPs: [{ ip: '10.0.0.300' }] } }, want: 'Pod x/a: status.podIPs[0].ip: "10.0.0.300" is not an IP address' },
    { name: 'bad containerPort', obj: { metadata: { namespace: 'x', name: 'a' }, spec: { containers: [{ ports: [{ containerPort: 0 }] }] } }, want: 'Pod x/a: spec.containers[0].ports[0].containerPort: 0 must be a port number, 1-65535' },
    { name: 'bad port name', obj: { metadata: { namespace: 'x', name: 'a' }, spec: { containers: [{}, { ports: [{ name: 'a--b', containerPort: 1 }] }] } }, want: 'Pod x/a: spec.containers[1].ports[0].name: "a--b" is not a valid port name (IANA_SVC_NAME: 1-15 of a-z, 0-9, \'-\')' },
    { name: 'phase not a string', obj: { metadata: { namespace: 'x', name: 'a' }, status: { phase: 3 } }, want: 'Pod x/a: status.phase: 3 must be a string' },
    { name: 'an upper-case pod name', obj: { metadata: { namespace: 'x', name: 'Web' } }, want: 'Pod x/Web: metadata.name: "Web" is not a valid name (DNS-1123 subdomain: at most 253 of a-z, 0-9, \'-\', \'.\', alphanumeric at each end)' },
    { name: 'hostNetwork not boolean', obj: { metadata: { namespace: 'x', name: 'a' }, spec: { hostNetwork: 'yes' } }, want: 'Pod x/a: spec.hostNetwork: "yes" must be true or false' },
  ]
  for (const c of bad) t.throws(() => parsePod(c.obj), { message: c.want }, c.name)
  t.throws(() => parseNamespace({ metadata: { name: 'a.b' } }), { message: 'Namespace a.b: metadata.name: "a.b" is not a valid name (DNS-1123 label: at most 63 of a-z, 0-9, \'-\', alphanumeric at each end)' }, 'a namespace is a DNS label: no dot')
})
