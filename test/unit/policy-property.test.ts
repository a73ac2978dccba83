// Random clusters and policies (seeded, so a failure replays): evaluate() over the
// compiled model against a reference written straight from the API's prose, which
// compiles nothing and walks every policy for every query. They must agree.
import t from 'tap'
import { isIPv4 } from 'node:net'
import { parseBlockCidr, inCidr } from '../../src/policy/addresses.js'
import { compile } from '../../src/policy/compile.js'
import { evaluate, type Query } from '../../src/policy/evaluate.js'
import {
  type LabelSelector, type Namespace, type NetworkPolicy, type Peer, type Pod, type PolicyRule, type Protocol,
  parseNamespace, parseNetworkPolicy, parsePod,
} from '../../src/policy/objects.js'
import { generator } from '../policy/random-world.js'

// --- the reference ------------------------------------------------------------
// From https://kubernetes.io/docs/concepts/services-networking/network-policies/
// and the NetworkPolicySpec field docs, sentence by sentence.

function labelsMatch (sel: LabelSelector, labels: Record<string, string>): boolean {
  // "matchLabels ... matchExpressions ... The requirements are ANDed."
  const okLabels = Object.entries(sel.matchLabels).every(([k, v]) => labels[k] === v)
  const okExprs = sel.matchExpressions.every((e) => {
    const v = labels[e.key]
    if (e.operator === 'In') return v !== undefined && e.values.includes(v)
    if (e.operator === 'NotIn') return v === undefined || !e.values.includes(v)
    if (e.operator === 'Exists') return v !== undefined
    return v === undefined
  })
  return okLabels && okExprs
}

interface World { namespaces: Namespace[], pods: Pod[], policies: NetworkPolicy[] }

/** "the pod" of an address: a pod with its own IP (host-network pods have the node's). */
function podAt (w: World, ip: string): Pod | undefined {
  return w.pods.find((p) => !p.hostNetwork && p.ips.includes(ip))
}

function peerMatches (w: World, policy: NetworkPolicy, peer: Peer, ip: string): boolean {
  if (peer.ipBlock) {
    // "cidr ... except is a slice of CIDRs that should not be included within an IPBlock"
    const c = parseBlockCidr(peer.ipBlock.cidr)
    if (typeof c === 'string' || !inCidr(c, ip)) return false
    return peer.ipBlock.except.every((x) => { const e = parseBlockCidr(x); return typeof e === 'string' || !inCidr(e, ip) })
  }
  const pod = podAt(w, ip)
  if (!pod) return false
  // "If namespaceSelector is also set ... pods matching podSelector in the namespaces
  // selected by namespaceSelector. Otherwise it selects the pods matching podSelector
  // in the policy's own namespace."
  if (peer.namespaceSelector) {
    const ns = w.namespaces.find((n) => n.name === pod.namespace)
    if (!ns || !labelsMatch(peer.namespaceSelector, ns.labels)) return false
  } else if (pod.namespace !== policy.namespace) return false
  return labelsMatch(peer.podSelector ?? { matchLabels: {}, matchExpressions: [] }, pod.labels)
}

function ruleAllows (w: World, policy: NetworkPolicy, rule: PolicyRule, peerIP: string, dest: Pod | undefined, q: Query): boolean {
  // "If this field is empty or missing, this rule matches all sources/destinations."
  const peerOK = rule.peers.length === 0 || rule.peers.some((p) => peerMatches(w, policy, p, peerIP))
  // "If this field is empty or missing, this rule matches all ports."
  const portOK = rule.ports.length === 0 || rule.ports.some((pp) => {
    if (pp.protocol !== q.protocol) return false
    if (pp.port === undefined) return true
    if (typeof pp.port === 'number') return q.port >= pp.port && q.port <= (pp.endPort ?? pp.port)
    // "a numerical or named port on a pod": named on the destination pod.
    return dest !== undefined && dest.ports.some((cp) => cp.name === pp.port && cp.protocol === pp.protocol && cp.containerPort === q.port)
  })
  return peerOK && portOK
}

function referenceAllowed (w: World, q: Query): boolean {
  const src = podAt(w, q.fromIP)
  const dst = podAt(w, q.toIP)
  const side = (pod: Pod | undefined, type: 'Ingress' | 'Egress'): boolean => {
    if (!pod) return true
    const applying = w.policies.filter((p) => p.namespace === pod.namespace && p.policyTypes.includes(type) && labelsMatch(p.podSelector, pod.labels))
    // "a pod is isolated ... if there is any NetworkPolicy that both selects the pod and has <type> in its policyTypes"
    if (applying.length === 0) return true
    // "the union of what each of the policies allow" (additive)
    return applying.some((p) => (type === 'Ingress' ? p.ingress : p.egress).some((r) =>
      type === 'Ingress' ? ruleAllows(w, p, r, q.fromIP, dst, q) : ruleAllows(w, p, r, q.toIP, dst, q)))
  }
  return side(src, 'Egress') && side(dst, 'Ingress')
}

t.test('evaluate agrees with the reference on random clusters', async (t) => {
  const ROUNDS = 400
  let queries = 0
  let allowed = 0
  for (let seed = 1; seed <= ROUNDS; seed++) {
    const g = generator(seed)
    const { json, ips } = g.world()
    const w: World = { namespaces: json.namespaces.map(parseNamespace), pods: json.pods.map(parsePod), policies: json.policies.map(parseNetworkPolicy) }
    const model = compile(w.namespaces, w.pods, w.policies)
    for (let i = 0; i < 60; i++) {
      const fromIP = g.pick(ips)
      const sameFamily = ips.filter((ip) => isIPv4(ip) === isIPv4(fromIP))
      const q: Query = { fromIP, toIP: g.pick(sameFamily), protocol: g.pick(['TCP', 'UDP', 'SCTP'] as Protocol[]), port: g.pick([53, 80, 81, 100, 8000, 8080]) }
      const got = evaluate(model, q).allowed
      const want = referenceAllowed(w, q)
      queries++
      if (got) allowed++
      if (got !== want) {
        t.fail(`seed ${seed}: ${JSON.stringify(q)}: evaluate says ${got}, the reference ${want}`, { world: JSON.stringify(json) })
        return
      }
    }
  }
  t.pass(`${queries} queries over ${ROUNDS} clusters agree`)
  // Guard against a generator that only ever produces one answer.
  t.ok(allowed > queries * 0.1 && allowed < queries * 0.9, `a mix of verdicts (${allowed} of ${queries} allowed)`)
})
