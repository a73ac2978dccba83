// Namespaces, Pods and NetworkPolicies in; the per-pod model (model.ts) out. The
// semantics are the API's (networking.k8s.io/v1 NetworkPolicySpec docs and
// https://kubernetes.io/docs/concepts/services-networking/network-policies/):
// a pod is isolated for a direction when any policy of that type selects it, and
// then only the union of those policies' rules allows traffic.
import { canonicalIP, inBlock } from './addresses.js'
import type { AddressSet, AllowEntry, DirectionPolicy, PodPolicy, PolicyModel, PortRange } from './model.js'
import type { Namespace, NetworkPolicy, Peer, Pod, PolicyPort, PolicyRule } from './objects.js'
import { peerSelectsPod, selects } from './selector.js'

export interface CompileOptions {
  /** Node name -> its addresses; traffic from these to the node's own pods is always allowed. */
  nodeAddresses?: Record<string, string[]>
  /** Only this node's pods get their policies compiled (all pods are still peers): what its enforcement needs. */
  node?: string
}

const podKey = (p: { namespace: string, name: string }): string => `${p.namespace}/${p.name}`

/** A pod that can be a peer or a destination: own IPs, not host-network (its IPs are the node's), not finished (its IPs may be reused). */
export const addressable = (p: Pod): boolean => !p.hostNetwork && !p.finished && p.ips.length > 0

export function compile (namespaces: readonly Namespace[], pods: readonly Pod[], policies: readonly NetworkPolicy[], options: CompileOptions = {}): PolicyModel {
  const nsByName = new Map(namespaces.map((n) => [n.name, n]))
  const targets = pods.filter(addressable)
  const model: PolicyModel = { byIP: new Map(), byName: new Map(), nodeAddresses: new Map() }
  for (const [node, addrs] of Object.entries(options.nodeAddresses ?? {})) {
    model.nodeAddresses.set(node, addrs.map((a) => canonicalIP(a) ?? a))
  }
  const byNamespace = new Map<string, Pod[]>()
  for (const p of targets) {
    const list = byNamespace.get(p.namespace)
    if (list) list.push(p)
    else byNamespace.set(p.namespace, [p])
  }
  const ctx: Ctx = { nsByName, pods: targets, byNamespace, peers: new Map(), peerIPs: new Map() }
  for (const pod of targets) {
    if (options.node !== undefined && pod.nodeName !== options.node) continue
    const entry: PodPolicy = {
      pod: podKey(pod),
      ips: pod.ips,
      ingress: direction(ctx, pod, policies, 'Ingress'),
      egress: direction(ctx, pod, policies, 'Egress'),
    }
    if (pod.nodeName !== undefined) entry.nodeName = pod.nodeName
    model.byName.set(entry.pod, entry)
    for (const ip of pod.ips) model.byIP.set(ip, entry)
  }
  return model
}

// peers: each rule's peer set, resolved once however many pods the policy selects.
interface Ctx { nsByName: Map<string, Namespace>, pods: Pod[], byNamespace: Map<string, Pod[]>, peers: Map<readonly Peer[], AddressSet>, peerIPs: Map<string, string[]> }

function direction (ctx: Ctx, pod: Pod, policies: readonly NetworkPolicy[], type: 'Ingress' | 'Egress'): DirectionPolicy {
  const d: DirectionPolicy = { isolated: false, policies: [], entries: [] }
  for (const policy of policies) {
    if (!policy.policyTypes.includes(type) || !selects(policy, pod)) continue
    d.isolated = true
    d.policies.push(podKey(policy))
    const rules = type === 'Ingress' ? policy.ingress : policy.egress
    rules.forEach((rule, i) => {
      d.entries.push(...(type === 'Ingress' ? ingressEntries(ctx, policy, i, rule, pod) : egressEntries(ctx, policy, i, rule)))
    })
  }
  return d
}

/** The addresses a rule's peers name; empty peers is every address. */
function peerAddresses (ctx: Ctx, policy: NetworkPolicy, peers: readonly Peer[]): AddressSet {
  let set = ctx.peers.get(peers)
  if (!set) {
    set = resolvePeers(ctx, policy, peers)
    ctx.peers.set(peers, set)
  }
  return set
}

function resolvePeers (ctx: Ctx, policy: NetworkPolicy, peers: readonly Peer[]): AddressSet {
  if (peers.length === 0) return { any: true, ips: [], blocks: [] }
  const ips = new Set<string>()
  const blocks = []
  for (const peer of peers) {
    if (peer.ipBlock) { blocks.push(peer.ipBlock); continue }
    for (const ip of peerIPs(ctx, policy, peer)) ips.add(ip)
  }
  return { any: false, ips: [...ips], blocks }
}

/**
 * The addresses of the pods one selector peer selects, resolved once per distinct peer
 * (policies of a cluster repeat the same peers): the namespaces first, then only their
 * pods, so a namespaceSelector costs the pods of the namespaces it selects, not the cluster's.
 */
function peerIPs (ctx: Ctx, policy: NetworkPolicy, peer: Peer): string[] {
  // Without a namespaceSelector a peer is in the policy's own namespace: only its pods can match.
  const key = `${peer.namespaceSelector ? '' : policy.namespace}\0${JSON.stringify(peer)}`
  let ips = ctx.peerIPs.get(key)
  if (ips) return ips
  ips = []
  const namespaces = peer.namespaceSelector ? [...ctx.byNamespace.keys()] : [policy.namespace]
  for (const ns of namespaces) {
    const pods = ctx.byNamespace.get(ns) ?? []
    if (pods.length === 0 || !peerSelectsPod(policy, { namespaceSelector: peer.namespaceSelector }, pods[0], ctx.nsByName)) continue
    for (const p of pods) if (peerSelectsPod(policy, peer, p, ctx.nsByName)) ips.push(...p.ips)
  }
  ctx.peerIPs.set(key, ips)
  return ips
}

/** Whether ip is in the set (an ipBlock matches inside cidr and outside every except). */
export function addressIn (set: AddressSet, ip: string): boolean {
  if (set.any || set.ips.includes(ip)) return true
  return set.blocks.some((b) => inBlock(b, ip))
}

/** A numeric or protocol-only port as a range; undefined for a named port. */
export function numericPort (p: PolicyPort): PortRange | undefined {
  if (typeof p.port === 'string') return undefined
  if (p.port === undefined) return { protocol: p.protocol }
  return { protocol: p.protocol, ports: { from: p.port, to: p.endPort ?? p.port } }
}

/**
 * A named port resolved on the destination pod: the containers' ports of that
 * name and the policy port's protocol. None: the rule port matches nothing there.
 */
export function namedPort (p: PolicyPort, dest: Pod): PortRange[] {
  return dest.ports
    .filter((cp) => cp.name === p.port && cp.protocol === p.protocol)
    .map((cp) => ({ protocol: p.protocol, ports: { from: cp.containerPort, to: cp.containerPort } }))
}

function ingressEntries (ctx: Ctx, policy: NetworkPolicy, rule: number, r: PolicyRule, dest: Pod): AllowEntry[] {
  const peers = peerAddresses(ctx, policy, r.peers)
  if (r.ports.length === 0) return [{ policy: podKey(policy), rule, peers, ports: 'all' }]
  const ports = r.ports.flatMap((p) => { const n = numericPort(p); return n ? [n] : namedPort(p, dest) })
  return ports.length === 0 ? [] : [{ policy: podKey(policy), rule, peers, ports }]
}

/**
 * Egress: the numeric ports hold for the whole peer set; a named port is resolved
 * per destination pod, so it becomes one entry per pod among the peers that has a
 * port of that name. Addresses that are no pod's (outside the cluster) match no
 * named port.
 */
function egressEntries (ctx: Ctx, policy: NetworkPolicy, rule: number, r: PolicyRule): AllowEntry[] {
  const peers = peerAddresses(ctx, policy, r.peers)
  const name = podKey(policy)
  if (r.ports.length === 0) return [{ policy: name, rule, peers, ports: 'all' }]
  const out: AllowEntry[] = []
  const numeric = r.ports.flatMap((p) => { const n = numericPort(p); return n ? [n] : [] })
  if (numeric.length > 0) out.push({ policy: name, rule, peers, ports: numeric })
  const named = r.ports.filter((p) => typeof p.port === 'string')
  if (named.length === 0) return out
  for (const dest of ctx.pods) {
    const ips = dest.ips.filter((ip) => addressIn(peers, ip))
    if (ips.length === 0) continue
    const ports = named.flatMap((p) => namedPort(p, dest))
    if (ports.length > 0) out.push({ policy: name, rule, peers: { any: false, ips, blocks: [] }, ports })
  }
  return out
}
