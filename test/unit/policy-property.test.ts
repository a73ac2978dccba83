// Random clusters and policies (seeded, so a failure replays): evaluate() over the
// compiled model against a reference written straight from the API's prose, which
// compiles nothing and walks every policy for every query. They must agree.
import t from 'tap'
import { isIPv4 } from 'node:net'
import { parseBlockCidr, inCidr } from '../../src/policy/addresses.js'
import { compile } from '../../src/policy/compile.js'
import { evaluate, type Query } from '../../src/policy/evaluate.js'
import { policyRuleset } from '../../src/policy/nftables.js'
import { podRelevance } from '../../src/policy/relevance.js'
import {
  type LabelSelector, type Namespace, type NetworkPolicy, type Peer, type Pod, type PolicyRule, type Protocol,
  parseNamespace, parseNetworkPolicy, parsePod,
} from '../../src/policy/objects.js'
import { prng } from '../lib/prng.js'

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

// --- random worlds ------------------------------------------------------------

function generator (seed: number) {
  const r = prng(seed)
  const int = (n: number): number => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]
  const chance = (p: number): boolean => r() < p
  const some = <T>(xs: readonly T[], max: number): T[] => Array.from({ length: int(max + 1) }, () => pick(xs))
  const KEYS = ['app', 'tier', 'team']
  const VALUES = ['a', 'b', 'c']
  const labels = (): Record<string, string> => Object.fromEntries(some(KEYS, 2).map((k) => [k, pick(VALUES)]))
  const selector = (): Record<string, unknown> => {
    if (chance(0.25)) return {}
    const s: Record<string, unknown> = {}
    if (chance(0.6)) s.matchLabels = labels()
    if (chance(0.5)) {
      s.matchExpressions = some(KEYS, 2).map((key) => {
        const operator = pick(['In', 'NotIn', 'Exists', 'DoesNotExist'])
        return operator === 'In' || operator === 'NotIn' ? { key, operator, values: [pick(VALUES), ...some(VALUES, 1)] } : { key, operator }
      })
    }
    return s
  }
  const BLOCKS = [
    { cidr: '10.244.0.0/16', except: ['10.244.1.0/24'] },
    { cidr: '10.244.1.0/24', except: ['10.244.1.16/28'] },
    { cidr: '10.244.2.20/30' },
    { cidr: '0.0.0.0/0', except: ['10.244.3.0/24', '192.168.0.0/16'] },
    { cidr: '10.0.0.0/8' },
    { cidr: 'fd00:10:244::/48', except: ['fd00:10:244:1::/64'] },
    { cidr: '::/0' },
  ]
  const peer = (): Record<string, unknown> => {
    const kind = int(4)
    if (kind === 0) return { ipBlock: pick(BLOCKS) }
    if (kind === 1) return { podSelector: selector() }
    if (kind === 2) return { namespaceSelector: selector() }
    return { podSelector: selector(), namespaceSelector: selector() }
  }
  const PORT_NAMES = ['http', 'dns', 'metrics']
  const policyPort = (): Record<string, unknown> => {
    const p: Record<string, unknown> = {}
    if (chance(0.7)) p.protocol = pick(['TCP', 'UDP', 'SCTP'])
    const kind = int(4)
    if (kind === 1) p.port = pick([53, 80, 81, 8080])
    if (kind === 2) { p.port = pick([53, 80, 8000]); p.endPort = (p.port as number) + pick([0, 1, 100]) }
    if (kind === 3) p.port = pick(PORT_NAMES)
    return p
  }
  const rule = (peersKey: 'from' | 'to'): Record<string, unknown> => {
    const o: Record<string, unknown> = {}
    if (chance(0.7)) o[peersKey] = Array.from({ length: 1 + int(2) }, peer)
    if (chance(0.7)) o.ports = Array.from({ length: 1 + int(2) }, policyPort)
    return o
  }
  function world (): { json: { namespaces: unknown[], pods: unknown[], policies: unknown[] }, ips: string[] } {
    const nsNames = ['x', 'y', 'z'].slice(0, 2 + int(2))
    const namespaces = nsNames.map((name) => ({ metadata: { name, labels: labels() } }))
    const ips: string[] = []
    const pods = Array.from({ length: 2 + int(6) }, (_, i) => {
      const node = 1 + int(3)
      const podIPs = [{ ip: `10.244.${node}.${10 + i * 3 + int(3)}` }]
      if (chance(0.3)) podIPs.push({ ip: `fd00:10:244:${node}::${(10 + i).toString(16)}` })
      const hostNetwork = chance(0.1)
      if (hostNetwork) podIPs.splice(0, podIPs.length, { ip: `192.168.0.${node}` })
      ips.push(...podIPs.map((p) => p.ip))
      return {
        metadata: { namespace: pick(nsNames), name: `p${i}`, labels: labels() },
        spec: {
          nodeName: `node-${node}`,
          hostNetwork,
          containers: [{
            ports: some([['http', 80, 'TCP'], ['http', 8080, 'TCP'], ['dns', 53, 'UDP'], ['dns', 53, 'TCP'], ['metrics', 81, 'TCP'], [undefined, 80, 'UDP']] as const, 3)
              .filter((v, k, all) => all.findIndex((o) => o[0] === v[0] && v[0] !== undefined) === k || v[0] === undefined)
              .map(([name, containerPort, protocol]) => (name ? { name, containerPort, protocol } : { containerPort, protocol }))
          }],
        },
        status: { podIPs },
      }
    })
    const policies = Array.from({ length: int(5) }, (_, i) => {
      const spec: Record<string, unknown> = { podSelector: selector() }
      if (chance(0.7)) spec.ingress = Array.from({ length: int(3) }, () => rule('from'))
      if (chance(0.6)) spec.egress = Array.from({ length: int(3) }, () => rule('to'))
      if (chance(0.5)) spec.policyTypes = pick([['Ingress'], ['Egress'], ['Ingress', 'Egress'], ['Egress', 'Ingress']])
      return { metadata: { namespace: pick(nsNames), name: `np${i}` }, spec }
    })
    return { json: { namespaces, pods, policies }, ips: [...ips, '8.8.8.8', '10.244.9.9', '2001:db8::1'] }
  }
  return { world, pick, int }
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

// A pod change that podRelevance passes over (neither its old nor its new version
// matters to the node) must leave the node's ruleset exactly as it was: the filter is
// what lets a change elsewhere in the cluster cost no recompile.
t.test('a pod change the relevance filter passes over leaves the node\'s ruleset as it was', async (t) => {
  const ROUNDS = 300
  let passedOver = 0
  let changes = 0
  for (let seed = 1; seed <= ROUNDS; seed++) {
    const g = generator(seed)
    const { json } = g.world()
    const namespaces = json.namespaces.map(parseNamespace)
    const policies = json.policies.map(parseNetworkPolicy)
    let pods = json.pods.map(parsePod)
    const KEYS = ['app', 'tier', 'team']
    const VALUES = ['a', 'b', 'c']
    for (let step = 0; step < 25; step++) {
      const node = `node-${1 + g.int(3)}`
      const render = (ps: Pod[]): string => policyRuleset(compile(namespaces, ps, policies, { node }), { nodeName: node, podCIDRs: ['10.244.0.0/16'] }).script
      const relevant = podRelevance(namespaces, pods, policies, node)
      const i = g.int(pods.length)
      const previous: Pod | undefined = pods[i]
      let next: Pod | undefined = { ...previous }
      switch (g.int(5)) {
        case 0: next.labels = Object.fromEntries(KEYS.filter(() => g.int(2) === 0).map((k) => [k, g.pick(VALUES)])); break
        case 1: next.nodeName = `node-${1 + g.int(3)}`; break
        case 2: next.ips = [`10.244.${1 + g.int(3)}.${100 + step}`]; break
        case 3: next = undefined; break // deleted
        default: next = { ...previous, name: `new${step}`, namespace: g.pick(namespaces).name } // another pod like it
      }
      const after = next === undefined ? pods.filter((_, k) => k !== i) : previous.name === next.name ? pods.map((p, k) => k === i ? next as Pod : p) : [...pods, next]
      changes++
      const matters = (next !== undefined && relevant(next)) || (previous.name === next?.name && relevant(previous)) || (next === undefined && relevant(previous))
      if (!matters) {
        passedOver++
        const before = render(pods)
        if (render(after) !== before) {
          t.fail(`seed ${seed}, step ${step}: a change called irrelevant to ${node} changed its ruleset`, { world: JSON.stringify(json), previous, next })
          return
        }
      }
      pods = after.length > 0 ? after : pods
    }
  }
  t.pass(`${passedOver} of ${changes} pod changes passed over, each leaving the ruleset as it was`)
  t.ok(passedOver > changes * 0.2 && passedOver < changes * 0.95, 'the filter passes over some changes, not all')
})
