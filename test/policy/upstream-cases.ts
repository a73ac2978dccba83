// Upstream's NetworkPolicy conformance cases as data, so that the same table runs
// against the evaluator here (test/unit/policy-upstream.test.ts) and, later, against
// real nodes. Source: kubernetes/kubernetes test/e2e/network/netpol/network_policy.go
// at commit 9db638c0807a720aa050ebcef69c32e4d4cce280 (the version probing all 9 pods
// x/a..z/c; newer versions create a subset of them per test). Each case keeps the
// upstream f.It(...) text as its name, its policies as JSON objects (built as
// policies.go's GenNetworkPolicy/SetSpecIngressRules/SetSpecEgressRules build them)
// and its expectations as the same Reachability calls, in the same order.
import type { Protocol } from '../../src/policy/objects.js'
import type { Reachability } from './reachability.js'

export const NAMESPACES = ['x', 'y', 'z'] as const
export const POD_NAMES = ['a', 'b', 'c'] as const
export const PODS: string[] = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`))
export const NODES = ['node-1', 'node-2', 'node-3'] as const

/** Made-up pod addresses: pods spread over three nodes, node-N owning 10.244.N.0/24. */
export function nodeOf (pod: string): string {
  const [ns, p] = pod.split('/')
  return NODES[(NAMESPACES.indexOf(ns as 'x') + POD_NAMES.indexOf(p as 'a')) % 3]
}
export function podIP (pod: string): string {
  const [ns, p] = pod.split('/')
  const node = NODES.indexOf(nodeOf(pod) as 'node-1') + 1
  return `10.244.${node}.${10 + 3 * NAMESPACES.indexOf(ns as 'x') + POD_NAMES.indexOf(p as 'a')}`
}

/** upstream model.go: each pod serves 80 and 81 over TCP and UDP, container ports named serve-<port>-<proto>. */
export const SERVED: Array<{ port: number, protocol: Protocol }> = [
  { port: 80, protocol: 'TCP' }, { port: 81, protocol: 'TCP' }, { port: 80, protocol: 'UDP' }, { port: 81, protocol: 'UDP' },
]

export interface Probe { port: number, protocol: Protocol, expect: (r: Reachability) => void }

/**
 * The cluster as one ValidateOrFail sees it: every policy then present (an update
 * replaces, a deletion removes), labels added to namespaces or pods so far
 * (AddNamespaceLabel / AddPodLabels merge into the existing labels), and probes.
 */
export interface Step {
  by?: string
  policies: unknown[]
  namespaceLabels?: Record<string, Record<string, string>>
  podLabels?: Record<string, Record<string, string>>
  probes: Probe[]
}

export interface UpstreamCase {
  /** ginkgo.Context text, then f.It text, as upstream names the test. */
  context: string
  name: string
  /** Where the case comes from. */
  source: string
  /**
   * Set when upstream asserts no table for this case (policy-assistant/cyclonus
   * compute theirs with their own simulator): the expectation is then the API
   * docs' rule, stated here in a line.
   */
  derived?: string
  steps: Step[]
}

// --- builders, in the shape of policies.go ---------------------------------

type Sel = Record<string, unknown>
const labels = (m: Record<string, string>): Sel => ({ matchLabels: m })
const expr = (key: string, operator: string, values: string[]): Sel => ({ matchExpressions: [{ key, operator, values }] })
const NS = 'kubernetes.io/metadata.name'

interface Spec { ingress?: unknown[], egress?: unknown[], policyTypes?: string[] }
type Setter = (s: Spec) => void
/** SetSpecIngressRules: creates spec.ingress and adds policyTypes Ingress on first use. */
const ingressRules = (...rules: unknown[]): Setter => (s) => {
  if (!s.ingress) { s.ingress = []; (s.policyTypes ??= []).push('Ingress') }
  s.ingress.push(...rules)
}
/** SetSpecEgressRules: likewise for egress. */
const egressRules = (...rules: unknown[]): Setter => (s) => {
  if (!s.egress) { s.egress = []; (s.policyTypes ??= []).push('Egress') }
  s.egress.push(...rules)
}
/** GenNetworkPolicyWithNameAndPodSelector / ...PodMatchLabel, created in namespace ns. */
function policy (ns: string, name: string, podSelector: Sel, ...setters: Setter[]): unknown {
  const spec: Spec = {}
  for (const s of setters) s(spec)
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: ns, name }, spec: { podSelector, ...spec } }
}
const from = (...peers: unknown[]): { from: unknown[] } => ({ from: peers })
const tcp = (port: number | string): unknown => ({ port, protocol: 'TCP' })

const K8S = 'kubernetes/kubernetes test/e2e/network/netpol/network_policy.go@9db638c0807a'
const TCP_CTX = 'NetworkPolicy between server and client'
const UDP_CTX = 'NetworkPolicy between server and client using UDP'
const SCTP_CTX = 'NetworkPolicy between server and client using SCTP'

const one = (port: number, protocol: Protocol, expect: (r: Reachability) => void = () => {}): Probe => ({ port, protocol, expect })
const allowAll = (): void => {}

function k8s (context: string, name: string, steps: Step[]): UpstreamCase {
  return { context, name, source: `${K8S} SIGDescribe("Netpol") > Context(${JSON.stringify(context)}) > It(${JSON.stringify(name)})`, steps }
}

// --- the cases ----------------------------------------------------------------

function denyIngressCase (context: string, protocol: Protocol, name: string): UpstreamCase {
  return k8s(context, "should support a 'default-deny-ingress' policy", [{
    policies: [policy('x', name, {}, ingressRules())],
    probes: [one(80, protocol, (r) => r.expectPeer({}, { namespace: 'x' }, false))],
  }])
}

function portsCase (context: string, protocol: Protocol, name: string, allowY: boolean): UpstreamCase {
  return k8s(context, 'should enforce policy based on Ports', [{
    policies: [policy('x', name, labels({ pod: 'a' }), ingressRules({ ...from({ namespaceSelector: labels({ [NS]: 'y' }) }), ports: [{ port: 81, protocol }] }))],
    probes: [one(81, protocol, (r) => {
      r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
      if (allowY) r.expectPeer({ namespace: 'y' }, { namespace: 'x', pod: 'a' }, true)
      r.expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
    })],
  }])
}

function podAndNsCase (context: string, protocol: Protocol): UpstreamCase {
  return k8s(context, 'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector', [{
    policies: [policy('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', labels({ pod: 'a' }),
      ingressRules(from({ namespaceSelector: labels({ [NS]: 'y' }), podSelector: labels({ pod: 'a' }) })))],
    probes: [one(80, protocol, (r) => { r.expectAllIngress('x/a', false); r.expect('y/a', 'x/a', true) })],
  }])
}

const exceptPolicy = (cidr: string, except: string[]): unknown => policy('x', 'allow-client-a-via-cidr-egress-rule', labels({ pod: 'a' }),
  egressRules({ to: [{ ipBlock: except.length > 0 ? { cidr, except } : { cidr } }] }))

export const UPSTREAM_CASES: UpstreamCase[] = [
  denyIngressCase(TCP_CTX, 'TCP', 'deny-ingress'),

  k8s(TCP_CTX, "should support a 'default-deny-all' policy", [{
    policies: [policy('x', 'deny-all', {}, ingressRules(), egressRules())],
    probes: [one(80, 'TCP', (r) => { r.expectPeer({}, { namespace: 'x' }, false); r.expectPeer({ namespace: 'x' }, {}, false) })],
  }]),

  k8s(TCP_CTX, 'should enforce policy to allow traffic from pods within server namespace based on PodSelector', [{
    policies: [policy('x', 'x-a-allows-x-b', labels({ pod: 'a' }), ingressRules(from({ podSelector: labels({ pod: 'b' }) })))],
    probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expect('x/b', 'x/a', true) })],
  }]),

  k8s(TCP_CTX, 'should enforce policy to allow ingress traffic for a target', [{
    policies: [
      policy('x', 'deny-all', {}, ingressRules()),
      policy('x', 'allow-all-to-a', labels({ pod: 'a' }), ingressRules(from({ podSelector: {}, namespaceSelector: {} }))),
    ],
    probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', true); r.expectAllIngress('x/b', false); r.expectAllIngress('x/c', false) })],
  }]),

  k8s(TCP_CTX, 'should enforce policy to allow ingress traffic from pods in all namespaces', [{
    policies: [policy('x', 'allow-from-another-ns', labels({ pod: 'a' }), ingressRules(from({ namespaceSelector: labels({}) })))],
    probes: [one(80, 'TCP', allowAll)],
  }]),

  k8s(TCP_CTX, 'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector', [{
    policies: [policy('x', 'allow-client-a-via-ns-selector', labels({ pod: 'a' }), ingressRules(from({ namespaceSelector: labels({ [NS]: 'y' }) })))],
    probes: [one(80, 'TCP', (r) => {
      r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
      r.expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
    })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on PodSelector with MatchExpressions', [{
    policies: [policy('x', 'x-a-allows-x-b', labels({ pod: 'a' }), ingressRules(from({ podSelector: expr('pod', 'In', ['b']) })))],
    probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expect('x/b', 'x/a', true) })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on NamespaceSelector with MatchExpressions', [{
    policies: [policy('x', 'allow-ns-y-match-selector', labels({ pod: 'a' }), ingressRules(from({ namespaceSelector: expr(NS, 'In', ['y']) })))],
    probes: [one(80, 'TCP', (r) => {
      r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
      r.expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
    })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on PodSelector or NamespaceSelector', [{
    policies: [policy('x', 'allow-ns-y-match-selector', labels({ pod: 'a' }),
      ingressRules(from({ namespaceSelector: expr(NS, 'NotIn', ['x']) }, { podSelector: labels({ pod: 'b' }) })))],
    probes: [one(80, 'TCP', (r) => { r.expect('x/a', 'x/a', false); r.expect('x/c', 'x/a', false) })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on PodSelector and NamespaceSelector', [{
    policies: [policy('x', 'allow-ns-y-podselector-and-nsselector', labels({ pod: 'a' }),
      ingressRules(from({ namespaceSelector: expr(NS, 'NotIn', ['x']), podSelector: labels({ pod: 'b' }) })))],
    probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expect('y/b', 'x/a', true); r.expect('z/b', 'x/a', true) })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on Multiple PodSelectors and NamespaceSelectors', [{
    policies: [policy('x', 'allow-ns-y-z-pod-b-c', labels({ pod: 'a' }),
      ingressRules(from({ namespaceSelector: expr(NS, 'NotIn', ['x']), podSelector: expr('pod', 'In', ['b', 'c']) })))],
    probes: [one(80, 'TCP', (r) => {
      r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
      r.expect('y/a', 'x/a', false)
      r.expect('z/a', 'x/a', false)
    })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on any PodSelectors', [{
    policies: [policy('x', 'allow-ns-x-pod-b-c', labels({ pod: 'a' }),
      ingressRules(from({ podSelector: labels({ pod: 'b' }) }, { podSelector: labels({ pod: 'c' }) })))],
    probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expect('x/b', 'x/a', true); r.expect('x/c', 'x/a', true) })],
  }]),

  podAndNsCase(TCP_CTX, 'TCP'),
  portsCase(TCP_CTX, 'TCP', 'allow-client-a-via-ns-selector', true),

  (() => {
    const port81 = policy('x', 'allow-client-a-via-ns-selector', labels({ pod: 'a' }), ingressRules({ ...from({ namespaceSelector: labels({ [NS]: 'y' }) }), ports: [tcp(81)] }))
    const port80 = policy('x', 'allow-client-a-via-ns-selector-80', labels({ pod: 'a' }), ingressRules({ ...from({ namespaceSelector: labels({ [NS]: 'y' }) }), ports: [tcp(80)] }))
    const allow = (r: Reachability): void => {
      r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
      r.expectPeer({ namespace: 'y' }, { namespace: 'x', pod: 'a' }, true)
      r.expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
    }
    return k8s(TCP_CTX, 'should enforce multiple, stacked policies with overlapping podSelectors', [
      { by: 'Verifying traffic on port 81 / port 80', policies: [port81], probes: [one(81, 'TCP', allow), one(80, 'TCP', (r) => r.expectAllIngress('x/a', false))] },
      { by: 'Verifying that we can add a policy to unblock port 80', policies: [port81, port80], probes: [one(80, 'TCP', allow)] },
    ])
  })(),

  k8s(TCP_CTX, 'should support allow-all policy', [{
    policies: [policy('x', 'allow-all', labels({}), ingressRules({}))],
    probes: [one(80, 'TCP', allowAll), one(81, 'TCP', allowAll)],
  }]),

  k8s(TCP_CTX, 'should allow ingress access on one named port', [{
    policies: [policy('x', 'allow-all', labels({}), ingressRules({ ports: [{ port: 'serve-81-tcp' }] }))],
    probes: [one(81, 'TCP', allowAll), one(80, 'TCP', (r) => r.expectPeer({}, { namespace: 'x' }, false))],
  }]),

  k8s(TCP_CTX, 'should allow ingress access from namespace on one named port', [{
    policies: [policy('x', 'allow-client-a-via-ns-selector-80', labels({ pod: 'a' }),
      ingressRules({ ...from({ namespaceSelector: labels({ [NS]: 'y' }) }), ports: [tcp('serve-80-tcp')] }))],
    probes: [
      one(80, 'TCP', (r) => {
        r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
        r.expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
      }),
      one(81, 'TCP', (r) => r.expectAllIngress('x/a', false)),
    ],
  }]),

  k8s(TCP_CTX, 'should allow egress access on one named port', [{
    policies: [policy('x', 'allow-egress', labels({}), egressRules({ ports: [{ port: 'serve-80-tcp' }] }))],
    probes: [one(80, 'TCP', allowAll), one(81, 'TCP', (r) => r.expectPeer({ namespace: 'x' }, {}, false))],
  }]),

  k8s(TCP_CTX, 'should enforce updated policy', [
    { by: 'allow all', policies: [policy('x', 'allow-all-mutate-to-deny-all', labels({}), ingressRules({}))], probes: [one(81, 'TCP', allowAll)] },
    // policy.Spec.Ingress = []; UpdatePolicy: policyTypes stay [Ingress].
    { by: 'update the policy to deny all', policies: [policy('x', 'allow-all-mutate-to-deny-all', labels({}), ingressRules())], probes: [one(81, 'TCP', (r) => r.expectPeer({}, { namespace: 'x' }, false))] },
  ]),

  (() => {
    const p = policy('x', 'allow-client-a-via-ns-selector', labels({ pod: 'a' }), ingressRules(from({ namespaceSelector: labels({ ns2: 'updated' }) })))
    return k8s(TCP_CTX, 'should allow ingress access from updated namespace', [
      { policies: [p], probes: [one(80, 'TCP', (r) => r.expectAllIngress('x/a', false))] },
      {
        by: 'AddNamespaceLabel(y, ns2=updated)',
        policies: [p],
        namespaceLabels: { y: { ns2: 'updated' } },
        probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expectPeer({ namespace: 'y' }, {}, true) })],
      },
    ])
  })(),

  (() => {
    const matchLabels = { pod: 'b', pod2: 'updated' }
    const p = policy('x', 'allow-client-a-via-pod-selector', labels({ pod: 'a' }), ingressRules(from({ podSelector: labels(matchLabels) })))
    return k8s(TCP_CTX, 'should allow ingress access from updated pod', [
      { policies: [p], probes: [one(80, 'TCP', (r) => r.expectAllIngress('x/a', false))] },
      {
        by: 'AddPodLabels(x/b, pod=b, pod2=updated)',
        policies: [p],
        podLabels: { 'x/b': matchLabels },
        probes: [one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expect('x/b', 'x/a', true) })],
      },
    ])
  })(),

  k8s(TCP_CTX, 'should deny ingress from pods on other namespaces', [{
    policies: [policy('x', 'deny-empty-policy', {}, ingressRules(from({ podSelector: labels({}) })))],
    probes: [one(80, 'TCP', (r) => { r.expectPeer({ namespace: 'y' }, { namespace: 'x' }, false); r.expectPeer({ namespace: 'z' }, { namespace: 'x' }, false) })],
  }]),

  (() => {
    const p = policy('x', 'deny-ingress-via-label-selector', labels({ target: 'isolated' }), ingressRules())
    return k8s(TCP_CTX, 'should deny ingress access to updated pod', [
      { by: 'Verify that everything can reach x/a', policies: [p], probes: [one(80, 'TCP', allowAll)] },
      { by: 'AddPodLabels(x/a, target=isolated)', policies: [p], podLabels: { 'x/a': { target: 'isolated' } }, probes: [one(80, 'TCP', (r) => r.expectAllIngress('x/a', false))] },
    ])
  })(),

  k8s(TCP_CTX, 'should deny egress from pods based on PodSelector', [{
    policies: [policy('x', 'deny-egress-pod-a', labels({ pod: 'a' }), egressRules())],
    probes: [one(80, 'TCP', (r) => r.expectAllEgress('x/a', false))],
  }]),

  k8s(TCP_CTX, 'should deny egress from all pods in a namespace', [{
    policies: [policy('x', 'deny-egress-ns-x', {}, egressRules())],
    probes: [one(80, 'TCP', (r) => r.expectPeer({ namespace: 'x' }, {}, false))],
  }]),

  (() => {
    // Built with SetSpecIngressRules, then Spec.Egress and Spec.PolicyTypes overwritten.
    const p = policy('x', 'allow-client-a-via-pod-selector', labels({ pod: 'a' }), ingressRules(from({ podSelector: labels({ pod: 'b' }) })),
      (s) => { s.egress = [{ ports: [{ port: 80 }] }]; s.policyTypes = ['Egress', 'Ingress'] })
    return k8s(TCP_CTX, 'should work with Ingress, Egress specified together', [{
      policies: [p],
      probes: [
        one(80, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expect('x/b', 'x/a', true) }),
        one(81, 'TCP', (r) => { r.expectAllIngress('x/a', false); r.expectAllEgress('x/a', false); r.expect('x/b', 'x/a', true) }),
      ],
    }])
  })(),

  (() => {
    const xa = from({ namespaceSelector: labels({ [NS]: 'x' }), podSelector: labels({ pod: 'a' }) })
    return k8s(TCP_CTX, 'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)', [{
      policies: [
        policy('x', 'allow-to-ns-y-pod-a', labels({ pod: 'a' }), egressRules({ to: [{ namespaceSelector: labels({ [NS]: 'y' }), podSelector: labels({ pod: 'a' }) }] })),
        policy('y', 'allow-from-xa-on-ya-match-selector', labels({ pod: 'a' }), ingressRules(xa)),
        policy('y', 'allow-from-xa-on-yb-match-selector', labels({ pod: 'b' }), ingressRules(xa)),
      ],
      probes: [one(80, 'TCP', (r) => {
        r.expectPeer({ namespace: 'x', pod: 'a' }, {}, false)
        r.expectPeer({}, { namespace: 'y', pod: 'a' }, false)
        r.expectPeer({ namespace: 'x', pod: 'a' }, { namespace: 'y', pod: 'a' }, true)
        r.expectPeer({}, { namespace: 'y', pod: 'b' }, false)
      })],
    }])
  })(),

  k8s(TCP_CTX, 'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector', [{
    policies: [policy('x', 'allow-to-ns-y-pod-a', labels({ pod: 'a' }), egressRules({ to: [{ namespaceSelector: labels({ [NS]: 'y' }), podSelector: labels({ pod: 'a' }) }] }))],
    probes: [one(80, 'TCP', (r) => { r.expectAllEgress('x/a', false); r.expect('x/a', 'y/a', true) })],
  }]),

  k8s(TCP_CTX, 'should enforce ingress policy allowing any port traffic to a server on a specific protocol', [{
    policies: [policy('x', 'allow-ingress-by-proto', labels({ pod: 'a' }), ingressRules({ ports: [{ protocol: 'TCP' }] }))],
    probes: [one(80, 'TCP', allowAll), one(80, 'UDP', (r) => r.expectPeer({}, { namespace: 'x', pod: 'a' }, false))],
  }]),

  (() => {
    const only80 = policy('x', 'allow-ingress-port-80', labels({}), ingressRules({ ports: [{ port: 80 }] }))
    return k8s(TCP_CTX, 'should enforce multiple ingress policies with ingress allow-all policy taking precedence', [
      { by: 'The policy targets port 80 -- so let\'s make sure traffic on port 81 is blocked', policies: [only80], probes: [one(81, 'TCP', (r) => r.expectPeer({}, { namespace: 'x' }, false))] },
      { by: 'Allowing all ports', policies: [only80, policy('x', 'allow-ingress', labels({}), ingressRules({}))], probes: [one(81, 'TCP', allowAll)] },
    ])
  })(),

  (() => {
    const only80 = policy('x', 'allow-egress-port-80', labels({}), egressRules({ ports: [{ port: 80 }] }))
    return k8s(TCP_CTX, 'should enforce multiple egress policies with egress allow-all policy taking precedence', [
      { by: 'Making sure ingress doesn\'t work other than port 80', policies: [only80], probes: [one(81, 'TCP', (r) => r.expectPeer({ namespace: 'x' }, {}, false))] },
      { by: 'Allowing all ports', policies: [only80, policy('x', 'allow-egress', labels({}), egressRules({}))], probes: [one(81, 'TCP', allowAll)] },
    ])
  })(),

  k8s(TCP_CTX, 'should stop enforcing policies after they are deleted', [
    {
      policies: [policy('x', 'deny-all', {}, ingressRules(), egressRules())],
      probes: [one(80, 'TCP', (r) => { r.expectPeer({ namespace: 'x' }, {}, false); r.expectPeer({}, { namespace: 'x' }, false) })],
    },
    { by: 'cleanNetworkPolicies', policies: [], probes: [one(80, 'TCP', allowAll)] },
  ]),

  k8s(TCP_CTX, 'should allow egress access to server in CIDR block', [{
    policies: [policy('x', 'allow-client-a-via-cidr-egress-rule', labels({ pod: 'a' }), egressRules({ to: [{ ipBlock: { cidr: `${podIP('y/b')}/32` } }] }))],
    probes: [one(80, 'TCP', (r) => { r.expectAllEgress('x/a', false); r.expect('x/a', 'y/b', true) })],
  }]),

  // podServerAllowCIDR := fmt.Sprintf("%s/4", podA.Status.PodIP): host bits set, as upstream writes it.
  k8s(TCP_CTX, 'should enforce except clause while egress access to server in CIDR block', [{
    policies: [exceptPolicy(`${podIP('x/a')}/4`, [`${podIP('x/b')}/32`])],
    probes: [one(80, 'TCP', (r) => r.expect('x/a', 'x/b', false))],
  }]),

  k8s(TCP_CTX, 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed', [
    { policies: [exceptPolicy(`${podIP('x/a')}/4`, [`${podIP('x/b')}/32`])], probes: [one(80, 'TCP', (r) => r.expect('x/a', 'x/b', false))] },
    // UpdatePolicy with the same name: the /32 policy replaces the /4 one.
    {
      by: 'UpdatePolicy: allow x/b by its /32',
      policies: [exceptPolicy(`${podIP('x/b')}/32`, [])],
      probes: [one(80, 'TCP', (r) => { r.expectAllEgress('x/a', false); r.expect('x/a', 'x/b', true) })],
    },
  ]),

  (() => {
    const allowEgress = policy('x', 'allow-egress-for-target', labels({ pod: 'a' }), egressRules({}))
    return k8s(TCP_CTX, 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector', [
      { by: 'Creating a network policy for pod-a which allows Egress traffic to pod-b.', policies: [allowEgress], probes: [one(80, 'TCP', allowAll)] },
      {
        by: 'Creating a network policy for pod-a that denies traffic from pod-b.',
        policies: [allowEgress, policy('x', 'deny-ingress-via-label-selector', labels({ pod: 'a' }), ingressRules())],
        probes: [one(80, 'TCP', (r) => r.expectAllIngress('x/a', false))],
      },
    ])
  })(),

  k8s(TCP_CTX, "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", [{
    policies: [
      policy('x', 'deny-ingress', {}, ingressRules()),
      policy('x', 'allow-only-sctp-ingress-on-port-81', labels({ pod: 'a' }), ingressRules({ ports: [{ port: 81, protocol: 'SCTP' }] })),
    ],
    probes: [one(81, 'TCP', (r) => r.expectPeer({}, { namespace: 'x' }, false))],
  }]),

  k8s(TCP_CTX, "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", [{
    policies: [policy('x', 'allow-only-sctp-ingress-on-port-80', labels({ pod: 'a' }), ingressRules({ ports: [{ port: 80, protocol: 'SCTP' }] }))],
    probes: [one(81, 'TCP', (r) => r.expectAllIngress('x/a', false))],
  }]),

  k8s(TCP_CTX, 'should not allow access by TCP when a policy specifies only UDP', [{
    policies: [policy('x', 'allow-only-udp-ingress-on-port-81', labels({ pod: 'a' }), ingressRules({ ports: [{ port: 81, protocol: 'UDP' }] }))],
    probes: [one(81, 'TCP', (r) => r.expectAllIngress('x/a', false))],
  }]),

  k8s(TCP_CTX, 'should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label', [{
    policies: [policy('x', 'allow-client-a-via-ns-selector-for-immutable-ns-label', labels({ pod: 'a' }), ingressRules(from({ namespaceSelector: labels({ [NS]: 'y' }) })))],
    probes: [one(80, 'TCP', (r) => {
      r.expectPeer({ namespace: 'x' }, { namespace: 'x', pod: 'a' }, false)
      r.expectPeer({ namespace: 'z' }, { namespace: 'x', pod: 'a' }, false)
    })],
  }]),

  k8s(TCP_CTX, 'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label', [{
    policies: [policy('x', 'allow-ns-y-match-selector-for-immutable-ns-label', labels({ pod: 'a' }), egressRules({ to: [{ namespaceSelector: expr(NS, 'NotIn', ['y']) }] }))],
    probes: [one(80, 'TCP', (r) => r.expectPeer({ namespace: 'x', pod: 'a' }, { namespace: 'y' }, false))],
  }]),

  denyIngressCase(UDP_CTX, 'UDP', 'deny-all'),
  portsCase(UDP_CTX, 'UDP', 'allow-ingress-on-port-81-ns-x', false),
  podAndNsCase(UDP_CTX, 'UDP'),
  denyIngressCase(SCTP_CTX, 'SCTP', 'deny-all'),
  portsCase(SCTP_CTX, 'SCTP', 'allow-ingress-on-port-81-ns-x', false),
  podAndNsCase(SCTP_CTX, 'SCTP'),
]

// --- policy-assistant (formerly cyclonus) -------------------------------------
// kubernetes-sigs/network-policy-api cmd/policy-assistant grew from
// mattfenwick/cyclonus; its pkg/generator/conflictcases.go ConflictTestCases()
// pairs a deny with an allow on source x/b (pod=b) and destination y/c (pod=c).
// Its probes compare against its own simulator, not a written table, so the
// expectation here is the API's rule, named in `derived`.

const CYCLONUS = 'mattfenwick/cyclonus pkg/generator/conflictcases.go@2858a9aa4623 ConflictTestCases'
const SOURCE = labels({ pod: 'b' }) // NewNetpolTarget("x", {pod: b})
const DEST = labels({ pod: 'c' }) // NewNetpolTarget("y", {pod: c})
const EXPLICIT_ALLOW_ALL = [{}]
const ALL_PODS_RULE = from({ namespaceSelector: {} })
const ALL_IPS_RULE = from({ ipBlock: { cidr: '0.0.0.0/0' } })
const NO_IP_RULE = from({ ipBlock: { cidr: '0.0.0.0/31' } })
const NO_POD_RULE = from({ namespaceSelector: labels({ 'this-will-never-happen': 'qrs123' }) })
/** Netpol.NetworkPolicySpec: policyTypes from which of Ingress/Egress is set; rules as given. */
const cyPolicy = (ns: string, name: string, sel: Sel, dir: 'Ingress' | 'Egress', rules: unknown[]): unknown => policy(ns, name, sel, (s) => {
  s.policyTypes = [dir]
  const mapped = rules.map((r) => (dir === 'Egress' && (r as { from?: unknown }).from ? { to: (r as { from: unknown }).from } : r))
  if (dir === 'Ingress') s.ingress = mapped; else s.egress = mapped
})
const CY_PROBES = (expect: (r: Reachability) => void): Probe[] => [one(80, 'TCP', expect), one(81, 'UDP', expect)]

function cyclonus (n: number, fn: string, derived: string, policies: unknown[], expect: (r: Reachability) => void): UpstreamCase {
  return { context: 'policy-assistant conflict', name: `allow/deny conflict ${n} (${fn})`, source: `${CYCLONUS} ${fn}`, derived, steps: [{ policies, probes: CY_PROBES(expect) }] }
}

export const CYCLONUS_CASES: UpstreamCase[] = [
  cyclonus(1, 'AllowAllIngressDenyAllEgress', 'both sides must allow: x/b egress denies everything',
    [cyPolicy('x', 'deny-all-egress', SOURCE, 'Egress', []), cyPolicy('y', 'allow-all-ingress', DEST, 'Ingress', EXPLICIT_ALLOW_ALL)],
    (r) => r.expectAllEgress('x/b', false)),
  cyclonus(2, 'AllowAllEgressDenyAllIngress', 'both sides must allow: y/c ingress denies everything',
    [cyPolicy('x', 'allow-all-egress', SOURCE, 'Egress', EXPLICIT_ALLOW_ALL), cyPolicy('y', 'deny-all-ingress', DEST, 'Ingress', [])],
    (r) => r.expectAllIngress('y/c', false)),
  cyclonus(3, 'DenyAllEgressAllowAllEgress', 'policies are additive: the allow-all rule wins',
    [cyPolicy('x', 'deny-all-egress', SOURCE, 'Egress', []), cyPolicy('x', 'allow-all-egress', SOURCE, 'Egress', EXPLICIT_ALLOW_ALL)], allowAll),
  cyclonus(4, 'DenyAllIngressAllowAllIngress', 'policies are additive: the allow-all rule wins',
    [cyPolicy('y', 'deny-all-ingress', DEST, 'Ingress', []), cyPolicy('y', 'allow-all-ingress', DEST, 'Ingress', EXPLICIT_ALLOW_ALL)], allowAll),
  cyclonus(5, 'DenyAllEgressAllowAllEgressByPod', 'namespaceSelector {} selects every pod of every namespace',
    [cyPolicy('x', 'deny-all-egress', SOURCE, 'Egress', []), cyPolicy('x', 'allow-all-egress-by-pod', SOURCE, 'Egress', [ALL_PODS_RULE])], allowAll),
  cyclonus(6, 'DenyAllEgressAllowAllEgressByIP', 'ipBlock 0.0.0.0/0 holds every pod IPv4 address',
    [cyPolicy('x', 'deny-all-egress', SOURCE, 'Egress', []), cyPolicy('x', 'allow-all-egress-by-ip', SOURCE, 'Egress', [ALL_IPS_RULE])], allowAll),
  cyclonus(7, 'DenyAllEgressByIPAllowAllEgressByPod', 'additive: the all-pods rule allows what the /31 does not',
    [cyPolicy('x', 'deny-all-egress-by-ip', SOURCE, 'Egress', [NO_IP_RULE]), cyPolicy('x', 'allow-all-egress-by-pod', SOURCE, 'Egress', [ALL_PODS_RULE])], allowAll),
  cyclonus(8, 'DenyAllEgressByPodAllowAllEgressByIP', 'additive: the 0.0.0.0/0 rule allows what the empty selector does not',
    [cyPolicy('x', 'deny-all-egress-by-pod', SOURCE, 'Egress', [NO_POD_RULE]), cyPolicy('x', 'allow-all-egress-by-ip', SOURCE, 'Egress', [ALL_IPS_RULE])], allowAll),
  cyclonus(9, 'DenyAllIngressAllowAllIngressByPod', 'additive; note the target is the source x/b, as upstream has it',
    [cyPolicy('x', 'deny-all-ingress', SOURCE, 'Ingress', []), cyPolicy('x', 'allow-all-ingress-by-pod', SOURCE, 'Ingress', [ALL_PODS_RULE])], allowAll),
  cyclonus(13, 'DenyAllEgressByIP', 'an ipBlock no pod is in isolates x/b egress and allows no pod',
    [cyPolicy('x', 'deny-all-egress-by-ip', SOURCE, 'Egress', [NO_IP_RULE])], (r) => r.expectAllEgress('x/b', false)),
  cyclonus(14, 'DenyAllEgressByPod', 'a namespaceSelector matching nothing allows no pod',
    [cyPolicy('x', 'deny-all-egress-by-ip', SOURCE, 'Egress', [NO_POD_RULE])], (r) => r.expectAllEgress('x/b', false)),
  cyclonus(15, 'DenyAllIngressByIP', 'an ipBlock no pod is in isolates x/b ingress and allows no pod',
    [cyPolicy('x', 'deny-all-ingress-by-ip', SOURCE, 'Ingress', [NO_IP_RULE])], (r) => r.expectAllIngress('x/b', false)),
  cyclonus(16, 'DenyAllIngressByPod', 'a namespaceSelector matching nothing allows no pod',
    [cyPolicy('x', 'deny-all-ingress-by-ip', SOURCE, 'Ingress', [NO_POD_RULE])], (r) => r.expectAllIngress('x/b', false)),
]
