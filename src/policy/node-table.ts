// One node's NetworkPolicy table, kept current change by change. Each object change
// (a Namespace, a Pod, a NetworkPolicy, added, updated or deleted) becomes the nft
// commands that change exactly what it touches: a pod elsewhere in the cluster is
// set elements added or removed in the rules whose peers select it (Calico's Felix
// keeps its IP sets the same way); a pod of this node, its chains and verdict map
// entries; a policy, the sets of its rules and the chains of the pods it selects.
// The semantics are compile.ts's (the API's); script() renders the same state whole.
//
// Only the rules of policies selecting a pod of this node are "active": they have sets
// in the table, shared between rules of the same peers. Set membership is not stored: a
// pod's elements are recomputed from its previous and next versions, which the reflector
// hands over.
import { type Family, family } from '../net/cidr.js'
import { inBlock } from './addresses.js'
import { addressable, namedPort, numericPort } from './compile.js'
import type { Namespace, NetworkPolicy, Pod, PolicyRule, PolicyType } from './objects.js'
import {
  FAMILIES, MAPS, type NodePods, type RuleView, TABLE, denyChain, elementCommand, hasSelectors, isNamed,
  localSet, namedElement, namedSet, namedSetType, peerSet, peerSetType, portMatch, ruleComment, ruleLines, tableText,
} from './nftables.js'
import { matches, peerSelectsPod, selects } from './selector.js'

const key = (o: { namespace: string, name: string }): string => `${o.namespace}/${o.name}`

/**
 * The sets of one shape of peers: every rule with the same peers (in the same namespace,
 * where a peer without namespaceSelector makes it matter) and, for egress named ports,
 * the same names, shares them. Clusters repeat peers ("from the monitoring namespace"),
 * so the sets, their elements and the work per pod change grow with the distinct shapes,
 * not with the rules (Calico keys its IP sets by selector the same way).
 */
interface PeerSets {
  id: number
  key: string
  /** A policy and rule of this shape: membership is judged by them. */
  policy: NetworkPolicy
  rule: PolicyRule
  /** Selector peers: peer sets of addresses. */
  selectors: boolean
  /** Egress named ports: sets of address . protocol . port. */
  named: boolean
  /** The active rules sharing them. */
  refs: number
}

interface ActiveRule {
  type: PolicyType
  index: number
  sets?: PeerSets
}

interface ActivePolicy {
  policy: NetworkPolicy
  rules: ActiveRule[]
  /** The pods of this node it selects (by key). */
  pods: Set<string>
}

interface LocalPod {
  id: number
  /** Chain name -> its lines, as the table holds them. */
  chains: Map<string, { comment: string, lines: string[] }>
  /** Verdict map claims ("in4 10.0.0.5" -> chain) and local addresses this pod holds. */
  claims: Map<string, string>
  ips: string[]
  policies: Map<string, ActivePolicy>
}

export class NodeTable {
  private readonly namespaces = new Map<string, Namespace>()
  private readonly policies = new Map<string, Map<string, NetworkPolicy>>() // by namespace, then key
  // Addressable pods by namespace, held as the objects the reflector stores: a key per pod
  // here would cost as much again as the pod's own strings at 150,000 pods. Lists, not
  // Sets: a slot each instead of a hash entry, and a removal scans one namespace's pods.
  private readonly byNamespace = new Map<string, Pod[]>()
  private readonly owners = new Map<string, Pod | Pod[]>() // ip -> addressable pods holding it
  private readonly active = new Map<string, ActivePolicy>()
  private readonly sets = new Map<string, PeerSets>() // by shape
  private readonly local = new Map<string, LocalPod>()
  // Verdict map key -> pod key -> chain: with two pods of this node on one address (an IP
  // reused before the old pod's deletion arrives), the first by key holds the entry.
  private readonly claims = new Map<string, Map<string, string>>()
  private ids = 0
  private pending: string[] = []
  // Off until the table is first applied whole: until then no command is worth keeping,
  // and a rule's sets are filled when script() renders them, not when it becomes active.
  private recording = false
  // The sets whose peers can select a pod of each namespace (see setsFor).
  private readonly nsSets = new Map<string, PeerSets[]>()

  constructor (readonly node: NodePods) {}

  counts (): { policies: number, localPods: number, rules: number } {
    let policies = 0
    for (const m of this.policies.values()) policies += m.size
    let rules = 0
    for (const l of this.local.values()) for (const c of l.chains.values()) rules += c.lines.length - 1
    return { policies, localPods: this.local.size, rules }
  }

  /** The pod ("namespace/name") holding ip, of this node or another; the first by key where pods share it. */
  podAt (ip: string): string | undefined {
    const o = this.owners.get(ip)
    if (o === undefined) return undefined
    return Array.isArray(o) ? o.map(key).sort()[0] : key(o)
  }

  /** The policies whose rules make a pod of this node's chain for a direction (none: not isolated that way). */
  isolatedBy (pod: string, type: PolicyType): string[] {
    const l = this.local.get(pod)
    return l ? [...l.policies.values()].filter((a) => a.policy.policyTypes.includes(type)).map((a) => key(a.policy)) : []
  }

  /** The table has just been applied whole from script(): from now on, keep the commands each change makes. */
  record (): void {
    this.recording = true
    this.pending = []
  }

  /** The commands since the last call (one transaction), or undefined when nothing changed. */
  takeDelta (): string | undefined {
    if (this.pending.length === 0) return undefined
    const script = `${this.pending.join('\n')}\n`
    this.pending = []
    return script
  }

  private queue (command: string): void {
    if (this.recording) this.pending.push(command)
  }

  namespace (next: Namespace | undefined, previous: Namespace | undefined): void {
    const name = (next ?? previous as Namespace).name
    // Namespace labels matter only to namespaceSelector peers: the pods of this namespace move in or out of those sets.
    const pods = [...this.byNamespace.get(name)?.values() ?? []]
    const before = pods.map((p) => this.elements(p))
    if (next) this.namespaces.set(name, next)
    else this.namespaces.delete(name)
    this.nsSets.clear()
    pods.forEach((p, i) => this.diff(before[i], this.elements(p), p))
  }

  pod (next: Pod | undefined, previous: Pod | undefined): void {
    const k = key(next ?? previous as Pod)
    const was = previous && addressable(previous) ? previous : undefined
    const is = next && addressable(next) ? next : undefined
    const before = was ? this.elements(was) : undefined
    if (was) this.forget(was)
    if (is) this.remember(is)
    this.diff(before, is ? this.elements(is) : undefined, was)
    if (was?.nodeName === this.node.nodeName || is?.nodeName === this.node.nodeName) {
      this.refreshLocal(k, is?.nodeName === this.node.nodeName ? is : undefined)
    }
  }

  policy (next: NetworkPolicy | undefined, previous: NetworkPolicy | undefined): void {
    const k = key(next ?? previous as NetworkPolicy)
    const ns = (next ?? previous as NetworkPolicy).namespace
    const old = this.active.get(k)
    if (old) this.active.delete(k)
    let inNs = this.policies.get(ns)
    if (next) {
      if (!inNs) this.policies.set(ns, inNs = new Map())
      inNs.set(k, next)
    } else if (inNs) {
      inNs.delete(k)
      if (inNs.size === 0) this.policies.delete(ns)
    }
    const affected = new Set(old?.pods)
    const here = new Map<string, Pod>()
    for (const p of this.byNamespace.get(ns) ?? []) {
      if (p.nodeName !== this.node.nodeName) continue
      here.set(key(p), p)
      if (next && selects(next, p)) affected.add(key(p))
    }
    for (const pk of [...affected].sort()) this.refreshLocal(pk, here.get(pk))
    if (old) this.dropSets(old)
  }

  /** The whole table as the current state has it, in pieces (nftables.ts tableText). */
  scriptChunks (): Generator<string> {
    const maps: Record<string, string[]> = Object.fromEntries(MAPS.map((m) => [m, []]))
    for (const [k, holders] of this.claims) {
      const [map, ip] = k.split(' ')
      maps[map].push(`${ip} : jump ${first(holders)}`)
    }
    const local: Record<Family, string[]> = { 4: [], 6: [] }
    const seen = new Set<string>()
    for (const l of this.local.values()) for (const ip of l.ips) if (!seen.has(ip)) { seen.add(ip); local[family(ip)].push(ip) }
    const shapes = [...this.sets.values()]
    const sets = shapes.flatMap((ps) => this.names(ps))
    const chains = [...this.local.values()].flatMap((l) => [...l.chains].map(([name, c]) => ({ name, ...c })))
    const filled = (function * (table: NodeTable) { for (const ps of shapes) yield * table.filled(ps) })(this)
    return tableText({ node: this.node, maps, local, sets, chains, elements: filled })
  }

  /** The whole table as one string: for tests and small tables. */
  script (): string {
    return [...this.scriptChunks()].join('')
  }

  // --- pods as peers -------------------------------------------------------------

  private remember (p: Pod): void {
    let m = this.byNamespace.get(p.namespace)
    if (!m) this.byNamespace.set(p.namespace, m = [])
    m.push(p)
    for (const ip of p.ips) {
      const o = this.owners.get(ip)
      this.owners.set(ip, o === undefined ? p : Array.isArray(o) ? [...o, p] : [o, p])
    }
  }

  private forget (p: Pod): void {
    const m = this.byNamespace.get(p.namespace)
    // previous is the object remembered; an equal copy (a caller's) is found by name.
    let i = m?.indexOf(p) ?? -1
    if (i < 0) i = m?.findIndex((q) => q.name === p.name) ?? -1
    const held = m !== undefined && i >= 0 ? m[i] : p
    if (m !== undefined && i >= 0) {
      m[i] = m[m.length - 1] // order does not matter: the last takes its place
      m.pop()
      if (m.length === 0) this.byNamespace.delete(p.namespace)
    }
    for (const ip of p.ips) {
      const o = this.owners.get(ip)
      const rest = o === undefined ? [] : (Array.isArray(o) ? o : [o]).filter((x) => x !== held)
      if (rest.length === 0) this.owners.delete(ip)
      else this.owners.set(ip, rest.length === 1 ? rest[0] : rest)
    }
  }

  /** The elements pod p puts in every set: "set element" strings. */
  private elements (p: Pod): Set<string> {
    const out = new Set<string>()
    for (const ps of this.setsFor(p.namespace)) this.setElements(ps, p, (set, e) => out.add(`${set} ${e}`))
    return out
  }

  /** The sets with a peer that can select pods of namespace ns: a pod change checks only these. */
  private setsFor (ns: string): PeerSets[] {
    let list = this.nsSets.get(ns)
    if (!list) this.nsSets.set(ns, list = [...this.sets.values()].filter((ps) => this.reaches(ps, ns)))
    return list
  }

  /** Whether a peer of these sets can select pods of namespace ns (an ipBlock or no peers, with named ports: any pod). */
  private reaches (r: PeerSets, ns: string): boolean {
    const rule = r.rule
    if (r.named && (rule.peers.length === 0 || rule.peers.some((p) => p.ipBlock !== undefined))) return true
    const labels = this.namespaces.get(ns)?.labels ?? { 'kubernetes.io/metadata.name': ns }
    return rule.peers.some((p) => p.ipBlock === undefined && (p.namespaceSelector ? matches(p.namespaceSelector, labels) : ns === r.policy.namespace))
  }

  /** The elements pod p (addressable) puts in sets r. */
  private setElements (r: PeerSets, p: Pod, add: (set: string, element: string) => void): void {
    const rule = r.rule
    const selected = r.selectors && rule.peers.some((peer) => peerSelectsPod(r.policy, peer, p, this.namespaces))
    if (selected) for (const ip of p.ips) add(peerSet(r.id, family(ip)), ip)
    if (!r.named) return
    // Egress named ports resolve on each destination pod among the rule's peers (compile.ts egressEntries).
    const ips = selected || rule.peers.length === 0 ? p.ips : p.ips.filter((ip) => rule.peers.some((peer) => peer.ipBlock !== undefined && inBlock(peer.ipBlock, ip)))
    if (ips.length === 0) return
    for (const rp of rule.ports.filter(isNamed)) {
      for (const range of namedPort(rp, p)) for (const ip of ips) add(namedSet(r.id, family(ip)), namedElement(ip, range.protocol, range.ports?.from as number))
    }
  }

  /** Element commands for a pod's change; an element another pod on the same address still puts there stays. */
  private diff (before: Set<string> | undefined, after: Set<string> | undefined, previous: Pod | undefined): void {
    const adds: Record<string, string[]> = {}
    const dels: Record<string, string[]> = {}
    const push = (to: Record<string, string[]>, se: string): void => {
      const i = se.indexOf(' ')
      ;(to[se.slice(0, i)] ??= []).push(se.slice(i + 1))
    }
    for (const se of after ?? []) if (!before?.has(se)) push(adds, se)
    let others: Set<string> | undefined
    for (const se of before ?? []) {
      if (after?.has(se)) continue
      // Another pod on one of these addresses may hold the element too.
      others ??= this.othersElements(previous as Pod)
      if (!others.has(se)) push(dels, se)
    }
    for (const [set, e] of Object.entries(dels)) this.queue(elementCommand('delete', set, e))
    for (const [set, e] of Object.entries(adds)) this.queue(elementCommand('add', set, e))
  }

  private othersElements (p: Pod): Set<string> {
    const out = new Set<string>()
    for (const ip of p.ips) {
      const o = this.owners.get(ip)
      for (const q of o === undefined ? [] : Array.isArray(o) ? o : [o]) if (key(q) !== key(p)) for (const e of this.elements(q)) out.add(e)
    }
    return out
  }

  // --- policies and their sets ---------------------------------------------------

  private activate (policy: NetworkPolicy): ActivePolicy {
    const k = key(policy)
    let a = this.active.get(k)
    if (a) return a
    a = { policy, rules: [], pods: new Set() }
    for (const type of policy.policyTypes) {
      ;(type === 'Ingress' ? policy.ingress : policy.egress).forEach((rule, index) => {
        const selectors = hasSelectors(rule)
        const named = type === 'Egress' && rule.ports.some(isNamed)
        a?.rules.push({ type, index, sets: selectors || named ? this.share(policy, rule, selectors, named) : undefined })
      })
    }
    this.active.set(k, a)
    return a
  }

  /** The sets of this rule's shape, created (and filled) if no active rule has them yet. */
  private share (policy: NetworkPolicy, rule: PolicyRule, selectors: boolean, named: boolean): PeerSets {
    const inNamespace = rule.peers.some((p) => p.ipBlock === undefined && p.namespaceSelector === undefined)
    const shape = JSON.stringify([inNamespace ? policy.namespace : '', rule.peers, named ? rule.ports.filter(isNamed).map((p) => `${p.protocol}/${p.port}`).sort() : []])
    let ps = this.sets.get(shape)
    if (ps) {
      ps.refs++
      return ps
    }
    ps = { id: this.ids++, key: shape, policy, rule, selectors, named, refs: 1 }
    this.sets.set(shape, ps)
    this.nsSets.clear()
    if (this.recording) {
      for (const s of this.names(ps)) this.queue(`add set ${TABLE} ${s.name} { type ${s.type}; }`)
      for (const s of this.filled(ps)) if (s.elements.length > 0) this.queue(elementCommand('add', s.set, s.elements))
    }
    return ps
  }

  /** The policy no longer selects a pod here: sets no other active rule shares go. */
  private dropSets (a: ActivePolicy): void {
    for (const r of a.rules) {
      const ps = r.sets
      if (ps === undefined || --ps.refs > 0) continue
      this.sets.delete(ps.key)
      this.nsSets.clear()
      for (const f of FAMILIES) {
        if (ps.selectors) this.queue(`delete set ${TABLE} ${peerSet(ps.id, f)}`)
        if (ps.named) this.queue(`delete set ${TABLE} ${namedSet(ps.id, f)}`)
      }
    }
  }

  /** The names and types of sets r. */
  private names (r: PeerSets): Array<{ name: string, type: string }> {
    return FAMILIES.flatMap((f) => [
      ...r.selectors ? [{ name: peerSet(r.id, f), type: peerSetType(f) }] : [],
      ...r.named ? [{ name: namedSet(r.id, f), type: namedSetType(f) }] : [],
    ])
  }

  /** Sets r with every element: scans the pods of the namespaces its peers reach. */
  private filled (r: PeerSets): Array<{ set: string, elements: string[] }> {
    const found = new Map(this.names(r).map((s) => [s.name, new Set<string>()]))
    for (const [ns, pods] of this.byNamespace) {
      if (!this.reaches(r, ns)) continue
      for (const p of pods.values()) this.setElements(r, p, (set, e) => found.get(set)?.add(e))
    }
    return [...found].map(([set, e]) => ({ set, elements: [...e] }))
  }

  // --- this node's pods ------------------------------------------------------------

  /** Re-derives a pod of this node (undefined: gone from here) and queues what changed. */
  private refreshLocal (k: string, pod: Pod | undefined): void {
    const old = this.local.get(k)
    const l: LocalPod = old ?? { id: this.ids++, chains: new Map(), claims: new Map(), ips: [], policies: new Map() }
    const chains = new Map<string, { comment: string, lines: string[] }>()
    const claims = new Map<string, string>()
    const policies = new Map<string, ActivePolicy>()
    if (pod) {
      const selecting = [...this.policies.get(pod.namespace)?.values() ?? []].filter((p) => selects(p, pod)).sort((a, b) => key(a) < key(b) ? -1 : 1)
      for (const p of selecting) policies.set(key(p), this.activate(p))
      for (const [dir, type, peer, direction] of [['in', 'Ingress', 'saddr', 'ingress'], ['out', 'Egress', 'daddr', 'egress']] as const) {
        const by = [...policies.values()].filter((a) => a.policy.policyTypes.includes(type))
        if (by.length === 0) continue
        const views = by.flatMap((a) => this.views(a, type, pod))
        for (const f of new Set(pod.ips.map(family))) {
          const name = `${dir}${f}-${l.id}`
          chains.set(name, {
            comment: `${dir === 'in' ? 'ingress to' : 'egress from'} ${k} (${by.map((a) => key(a.policy)).join(', ')})`,
            lines: [...views.flatMap((v) => ruleLines(v, f, peer)), `goto ${denyChain(direction, 'isolated')}`].map(flat),
          })
        }
        for (const ip of pod.ips) claims.set(`${dir}${family(ip)} ${ip}`, `${dir}${family(ip)}-${l.id}`)
      }
    }
    for (const [name, c] of chains) {
      const was = l.chains.get(name)
      if (was && same(was.lines, c.lines)) continue
      this.queue(was ? `flush chain ${TABLE} ${name}` : `add chain ${TABLE} ${name}`)
      for (const line of c.lines) this.queue(`add rule ${TABLE} ${name} ${line}`)
    }
    for (const [mk, chain] of l.claims) if (claims.get(mk) !== chain) this.claim(mk, k, undefined)
    for (const [mk, chain] of claims) if (l.claims.get(mk) !== chain) this.claim(mk, k, chain)
    for (const name of l.chains.keys()) if (!chains.has(name)) this.queue(`delete chain ${TABLE} ${name}`)
    const ips = pod?.ips ?? []
    for (const ip of l.ips) if (!ips.includes(ip) && !this.localElsewhere(ip, k)) this.queue(`delete element ${TABLE} ${localSet(family(ip))} { ${ip} }`)
    for (const ip of ips) if (!l.ips.includes(ip) && !this.localElsewhere(ip, k)) this.queue(`add element ${TABLE} ${localSet(family(ip))} { ${ip} }`)
    const held = l.policies
    Object.assign(l, { chains, claims, ips, policies })
    if (pod) this.local.set(k, l)
    else this.local.delete(k)
    // Policies that no longer select a pod here lose their sets once no chain references them.
    for (const [pk, a] of held) {
      if (policies.get(pk) === a) continue
      a.pods.delete(k)
      if (a.pods.size === 0 && this.active.get(pk) === a) {
        this.active.delete(pk)
        this.dropSets(a)
      }
    }
    for (const a of policies.values()) a.pods.add(k)
  }

  private localElsewhere (ip: string, k: string): boolean {
    for (const [lk, l] of this.local) if (lk !== k && l.ips.includes(ip)) return true
    return false
  }

  /** Sets (chain) or drops (undefined) pod k's claim on a verdict map key; the first claimant by pod key holds the element. */
  private claim (mk: string, k: string, chain: string | undefined): void {
    let holders = this.claims.get(mk)
    const before = holders ? first(holders) : undefined
    if (chain !== undefined) {
      if (!holders) this.claims.set(mk, holders = new Map())
      holders.set(k, chain)
    } else if (holders) {
      holders.delete(k)
      if (holders.size === 0) this.claims.delete(mk)
    }
    const after = holders && holders.size > 0 ? first(holders) : undefined
    if (after === before) return
    const [map, ip] = mk.split(' ')
    if (before !== undefined) this.queue(`delete element ${TABLE} ${map} { ${ip} }`)
    if (after !== undefined) this.queue(`add element ${TABLE} ${map} { ${ip} : jump ${after} }`)
  }

  /** The rules of one policy for one direction of pod, ports resolved on it when it is the destination. */
  private views (a: ActivePolicy, type: PolicyType, pod: Pod): RuleView[] {
    const list = type === 'Ingress' ? a.policy.ingress : a.policy.egress
    return list.flatMap((rule, index) => {
      const sets = a.rules.find((x) => x.type === type && x.index === index)?.sets
      // A named port resolves on the destination: for ingress this pod, for egress each peer (its named set).
      const ranges = rule.ports.flatMap((p) => numericPort(p) ?? (type === 'Ingress' ? namedPort(p, pod) : []))
      const ports = rule.ports.length === 0 ? [''] : ranges.map(portMatch)
      const view: RuleView = {
        comment: ruleComment(key(a.policy), index),
        sets: sets?.id ?? -1,
        any: rule.peers.length === 0,
        selectors: sets?.selectors ?? false,
        blocks: rule.peers.flatMap((p) => p.ipBlock ? [p.ipBlock] : []),
        ports,
        named: sets?.named ?? false,
      }
      return ports.length > 0 || view.named ? [view] : []
    })
  }
}

const first = (holders: Map<string, string>): string => holders.get([...holders.keys()].sort()[0]) as string
// Rule lines are built from shared pieces (a template's parts); held for as long as the pod is,
// each kept as one flat string is less than half the heap of its tree of pieces.
const flat = (s: string): string => Buffer.from(s, 'utf8').toString('utf8')
const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])
