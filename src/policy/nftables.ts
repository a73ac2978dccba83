// The text of the table `inet flatnet-policy` (node-table.ts decides what is in it).
// Its forward chain sees every pod's traffic: routed (to and from other nodes) and,
// through br_netfilter, bridged between pods on cni0. Only a connection's first packet
// is judged (conntrack established/related pass), as in sig-network's
// kube-network-policies. A verdict map keyed by pod address jumps to the pod's own
// chain, so a packet's cost grows with the rules selecting its pod, not with the number
// of pods or policies; each rule's peers are a named set, so a pod appearing elsewhere
// in the cluster is one element added, not a table rewritten.
import { type Family, family } from '../net/cidr.js'
import type { PortRange } from './model.js'
import type { IPBlock, PolicyPort, PolicyRule } from './objects.js'

export const POLICY_TABLE = 'flatnet-policy'
export const TABLE = `inet ${POLICY_TABLE}`

export interface NodePods {
  /** This node's pod CIDRs: an address there that the table does not know yet is dropped
   *  (a new pod is isolated before its first packet, until its policies are in). */
  podCIDRs: string[]
  /** The node's name, for the pods (spec.nodeName) that live here. */
  nodeName: string
  /** Where denied first packets are copied for `flatnet policy drops`; undefined: counted only. */
  dropLog?: DropLog
}

/** An NFLOG group (net/netfilter/nfnetlink_log.c) the daemon reads denied first packets from. */
export interface DropLog { group: number }

// Only the headers are wanted: addresses, protocol and ports.
export const DROP_LOG_SNAPLEN = 128
// One limit for every drop rule: a flood of denied packets, to one pod or to all, costs the
// daemon at most this many records a second; dropping itself is unchanged.
export const DROP_LOG_RATE = '100/second burst 200 packets'
/** Each log prefix: "flatnet-policy DIRECTION REASON" (parsed back by drops.ts). */
export const DROP_LOG_PREFIX = 'flatnet-policy'

export type Direction = 'ingress' | 'egress'
/** isolated: the pod's policies allow nothing that matches; unknown: an address of this node's pod CIDRs the table does not know. */
export type DenyReason = 'isolated' | 'unknown'
const DENIES: ReadonlyArray<[Direction, DenyReason]> = [['ingress', 'isolated'], ['egress', 'isolated'], ['ingress', 'unknown'], ['egress', 'unknown']]

/**
 * The chain every denied first packet of a direction ends in: it counts, logs (within the
 * limit) and drops. Pod chains end in a goto here, so whether drops are logged is four
 * small chains, not every pod's.
 */
export const denyChain = (d: Direction, r: DenyReason): string => `deny-${d === 'ingress' ? 'in' : 'out'}${r === 'unknown' ? '-unknown' : ''}`

function denyLines (d: Direction, r: DenyReason, log: DropLog | undefined): string[] {
  const counter = `counter name ${d}_denied`
  if (log === undefined) return [`${counter} drop`]
  // A limit that is over ends the rule before log; the drop is the next rule's, so every packet is dropped.
  return [`${counter} limit name drop_log log prefix "${DROP_LOG_PREFIX} ${d} ${r}" group ${log.group} snaplen ${DROP_LOG_SNAPLEN}`, 'drop']
}

export const FAMILIES: readonly Family[] = [4, 6]
const ipKw = (f: Family): string => f === 4 ? 'ip' : 'ip6'
const addrType = (f: Family): string => f === 4 ? 'ipv4_addr' : 'ipv6_addr'

/** The named sets of one shape of peers: the addresses its selectors select, and (egress) address . protocol . port of its named ports. */
export const peerSet = (sets: number, f: Family): string => `s${sets}-${f}`
export const namedSet = (sets: number, f: Family): string => `s${sets}-n${f}`
export const peerSetType = (f: Family): string => addrType(f)
export const namedSetType = (f: Family): string => `${addrType(f)} . inet_proto . inet_service`
/** The element of a named-port set: the address, the protocol and the port number a name resolved to. */
export const namedElement = (ip: string, protocol: string, port: number): string => `${ip} . ${protocol.toLowerCase()} . ${port}`

/** A port range as nft's match. */
export function portMatch (p: PortRange): string {
  const proto = p.protocol.toLowerCase()
  if (!p.ports) return `meta l4proto ${proto}`
  return `${proto} dport ${p.ports.from === p.ports.to ? p.ports.from : `${p.ports.from}-${p.ports.to}`}`
}

/** What one rule of a policy holds for the chain of one pod, already resolved for it. */
export interface RuleView {
  /** "namespace/name rule i" */
  comment: string
  /** The rule's sets (peerSet, namedSet). */
  sets: number
  /** No peers: every address. */
  any: boolean
  selectors: boolean
  blocks: IPBlock[]
  /** nft port matches ('' = every port); empty: the rule allows nothing here (only unresolvable named ports). */
  ports: string[]
  /** Egress with named ports: matched through the rule's named set. */
  named: boolean
}

// nft refuses a comment over 128 bytes (NFTNL_UDATA_COMMENT_MAXLEN), and a namespace and a
// policy name may be 63 + 253: the policy's key is clipped, the rule's index kept.
const COMMENT_MAX = 128

/** A rule's comment: the policy (namespace/name, clipped to fit) and the rule's index. */
export function ruleComment (policy: string, index: number): string {
  const tail = ` rule ${index}`
  const room = COMMENT_MAX - tail.length
  return (policy.length <= room ? policy : `${policy.slice(0, room - 3)}...`) + tail
}

/**
 * The rules of one policy rule in a pod's chain for one family: each returns (allowed,
 * on to the other direction's check). peer: saddr for ingress, daddr for egress.
 */
export function ruleLines (v: RuleView, f: Family, peer: 'saddr' | 'daddr'): string[] {
  const ip = ipKw(f)
  const comment = `comment "${v.comment}"`
  const peers: string[] = []
  if (v.any) peers.push('')
  if (v.selectors) peers.push(`${ip} ${peer} @${peerSet(v.sets, f)} `)
  for (const b of v.blocks.filter((b) => family(b.cidr) === f)) {
    const except = b.except.length > 0 ? `${ip} ${peer} != { ${b.except.join(', ')} } ` : ''
    peers.push(`${ip} ${peer} ${b.cidr} ${except}`)
  }
  const lines = peers.flatMap((pm) => v.ports.map((pp) => `${pm}${pp === '' ? '' : `${pp} `}return ${comment}`))
  if (v.named) lines.push(`${ip} daddr . meta l4proto . th dport @${namedSet(v.sets, f)} return ${comment}`)
  return lines
}

/** Whether a rule's ports are all named ports (they resolve per destination pod). */
export const isNamed = (p: PolicyPort): p is PolicyPort & { port: string } => typeof p.port === 'string'
export const hasSelectors = (r: PolicyRule): boolean => r.peers.some((p) => p.ipBlock === undefined)

export interface TableParts {
  node: NodePods
  /** Verdict map elements ("10.0.0.5 : jump in4-3") by map (in4, in6, out4, out6). */
  maps: Record<string, string[]>
  /** The addresses of this node's pods the table knows, by family. */
  local: Record<Family, string[]>
  sets: Array<{ name: string, type: string }>
  chains: Array<{ name: string, comment: string, lines: string[] }>
  /** Each set's elements, produced one set at a time. */
  elements: Iterable<{ set: string, elements: string[] }>
}

export const MAPS = ['in4', 'in6', 'out4', 'out6'] as const
export const localSet = (f: Family): string => `local${f}`

const inline = (e: string[]): string[] => e.length > 0 ? [`    elements = { ${e.join(', ')} }`] : []

// Elements per command when a table is written whole: its peer sets can hold a cluster's pods.
const ELEMENTS_PER_COMMAND = 5000

/**
 * The whole table, for the first apply and for a rebuild, in pieces: the declarations,
 * then the peer sets' elements a few thousand per command, so that no piece (and no
 * string in the daemon) grows with the cluster.
 */
export function * tableText (t: TableParts): Generator<string> {
  // Both ways: a pod the table does not know yet (CNI ADD puts it in before it runs) is
  // neither reachable nor able to send; its policies might isolate it either way.
  const unknownLocal = (end: 'saddr' | 'daddr'): string[] => FAMILIES.flatMap((f) => {
    const cidrs = t.node.podCIDRs.filter((c) => family(c) === f)
    if (cidrs.length === 0) return []
    const chain = denyChain(end === 'daddr' ? 'ingress' : 'egress', 'unknown')
    return [`    ${ipKw(f)} ${end} { ${cidrs.join(', ')} } ${ipKw(f)} ${end} != @${localSet(f)} goto ${chain} comment "a pod of this node not yet in the table"`]
  })
  const log = t.node.dropLog
  yield [
    `table ${TABLE} {`,
    '  counter ingress_denied {}',
    '  counter egress_denied {}',
    ...log ? [`  limit drop_log { rate ${DROP_LOG_RATE} }`] : [],
    ...MAPS.flatMap((m) => [`  map ${m} {`, `    type ${addrType(m.endsWith('4') ? 4 : 6)} : verdict`, ...inline(t.maps[m]), '  }']),
    ...FAMILIES.flatMap((f) => [`  set ${localSet(f)} {`, `    type ${addrType(f)}`, ...inline(t.local[f]), '  }']),
    ...t.sets.flatMap((s) => [`  set ${s.name} {`, `    type ${s.type}`, '  }']),
    '  chain forward {',
    // Before kube-proxy's and any other filter chain; DNAT (prerouting) has already put the pod in daddr.
    '    type filter hook forward priority filter - 10; policy accept;',
    '    ct state established,related accept',
    // IPv6 neighbour and router discovery between a pod and its bridge is not a connection.
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    '    ip saddr vmap @out4',
    '    ip6 saddr vmap @out6',
    ...unknownLocal('saddr'),
    ...unknownLocal('daddr'),
    '    ip daddr vmap @in4',
    '    ip6 daddr vmap @in6',
    '  }',
    ...DENIES.flatMap(([d, r]) => [`  chain ${denyChain(d, r)} {`, ...denyLines(d, r, log).map((l) => `    ${l}`), '  }']),
    ...t.chains.flatMap((c) => [`  # ${c.comment}`, `  chain ${c.name} {`, ...c.lines.map((l) => `    ${l}`), '  }']),
    '}',
  ].join('\n') + '\n'
  for (const { set, elements } of t.elements) {
    for (let i = 0; i < elements.length; i += ELEMENTS_PER_COMMAND) yield `${elementCommand('add', set, elements.slice(i, i + ELEMENTS_PER_COMMAND))}\n`
  }
}

/** `add element` / `delete element` of some elements of one set. */
export const elementCommand = (verb: 'add' | 'delete', set: string, elements: string[]): string => `${verb} element ${TABLE} ${set} { ${elements.join(', ')} }`
