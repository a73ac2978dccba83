// The compiled model (model.ts) as nftables, for the pods of one node. One table,
// `inet flatnet-policy`, replaced whole in one transaction. Its forward chain sees
// every pod's traffic: routed (to and from other nodes) and, through br_netfilter,
// bridged between pods on cni0. Only a connection's first packet is judged
// (conntrack established/related pass), as in sig-network's kube-network-policies.
// A verdict map keyed by pod address jumps to the pod's own chain, so a packet's cost
// grows with the rules selecting its pod, not with the number of pods or policies.
import { canonicalIP } from './addresses.js'
import type { AllowEntry, PodPolicy, PolicyModel, PortRange } from './model.js'

export const POLICY_TABLE = 'flatnet-policy'

export interface NodePods {
  /** This node's pod CIDRs: an address there that the model does not know yet is dropped
   *  (a new pod is isolated before its first packet, until its policies are in). */
  podCIDRs: string[]
  /** The node's name, for the model's pods (spec.nodeName) that live here. */
  nodeName: string
}

export interface Ruleset { script: string, pods: number, rules: number }

const family = (ip: string): 4 | 6 => ip.includes(':') ? 6 : 4
const ipKw = (f: 4 | 6): string => f === 4 ? 'ip' : 'ip6'

/** nft's matches for one port range ('' for all). */
function portMatch (p: PortRange): string {
  const proto = p.protocol.toLowerCase()
  if (!p.ports) return `meta l4proto ${proto}`
  const range = p.ports.from === p.ports.to ? `${p.ports.from}` : `${p.ports.from}-${p.ports.to}`
  return `${proto} dport ${range}`
}

/**
 * The rules of one allow entry in a pod's chain for one family: each returns (allowed,
 * go on to the other direction's check). peer: the address field the peers are
 * matched on (saddr for ingress, daddr for egress).
 */
function entryRules (e: AllowEntry, f: 4 | 6, peer: 'saddr' | 'daddr', sets: PeerSets): string[] {
  const ip = ipKw(f)
  const peers: string[] = []
  if (e.peers.any) {
    peers.push('')
  } else {
    const ips = e.peers.ips.filter((a) => family(a) === f)
    if (ips.length > 0) peers.push(`${ip} ${peer} @${sets.name(ips, f)} `)
    for (const b of e.peers.blocks.filter((b) => family(b.cidr) === f)) {
      const except = b.except.length > 0 ? `${ip} ${peer} != { ${b.except.join(', ')} } ` : ''
      peers.push(`${ip} ${peer} ${b.cidr} ${except}`)
    }
  }
  const ports = e.ports === 'all' ? [''] : e.ports.map((p) => `${portMatch(p)} `)
  const comment = `comment "${e.policy} rule ${e.rule}"`
  return peers.flatMap((pm) => ports.map((pp) => `${pm}${pp}return ${comment}`))
}

/**
 * The peer address lists as named sets, each list once: a rule's peers are the same
 * for every pod its policy selects, so inline they would repeat once per selected pod.
 */
class PeerSets {
  private readonly byContent = new Map<string, string>()
  readonly lines: string[] = []

  name (ips: string[], f: 4 | 6): string {
    const content = [...ips].sort().join(', ')
    let name = this.byContent.get(content)
    if (!name) {
      name = `peers${f}-${this.byContent.size}`
      this.byContent.set(content, name)
      this.lines.push(`  set ${name} {`, `    type ${f === 4 ? 'ipv4_addr' : 'ipv6_addr'}`, `    elements = { ${content} }`, '  }')
    }
    return name
  }
}

function podChain (name: string, entries: AllowEntry[], f: 4 | 6, peer: 'saddr' | 'daddr', counter: string, sets: PeerSets): string[] {
  return [
    `  chain ${name} {`,
    ...entries.flatMap((e) => entryRules(e, f, peer, sets)).map((r) => `    ${r}`),
    `    counter name ${counter} drop`,
    '  }',
  ]
}

/** The ruleset for the pods of this node; an empty model gives the table with nothing isolated. */
export function policyRuleset (model: PolicyModel, node: NodePods): Ruleset {
  const local = [...new Set(model.byName.values())].filter((p) => p.nodeName === node.nodeName)
  const chains: string[] = []
  const sets = new PeerSets()
  const maps: Record<string, string[]> = { in4: [], in6: [], out4: [], out6: [] }
  let rules = 0
  local.forEach((p: PodPolicy, i) => {
    for (const ip of p.ips) {
      const f = family(ip)
      const addr = canonicalIP(ip) ?? ip
      for (const [dir, d, peer, counter] of [['in', p.ingress, 'saddr', 'ingress_denied'], ['out', p.egress, 'daddr', 'egress_denied']] as const) {
        if (!d.isolated) continue
        const name = `${dir}${f}-${i}`
        chains.push(`  # ${dir === 'in' ? 'ingress to' : 'egress from'} ${p.pod} (${d.policies.join(', ')})`, ...podChain(name, d.entries, f, peer, counter, sets))
        maps[`${dir}${f}`].push(`${addr} : jump ${name}`)
        rules += d.entries.length
      }
    }
  })
  const known = { 4: [] as string[], 6: [] as string[] }
  for (const p of local) for (const ip of p.ips) known[family(ip)].push(canonicalIP(ip) ?? ip)
  const map = (name: string, f: 4 | 6): string[] => [
    `  map ${name} {`,
    `    type ${f === 4 ? 'ipv4_addr' : 'ipv6_addr'} : verdict`,
    ...(maps[name].length > 0 ? [`    elements = { ${maps[name].join(', ')} }`] : []),
    '  }',
  ]
  const unknownLocal = ([4, 6] as const).flatMap((f) => {
    const cidrs = node.podCIDRs.filter((c) => family(c) === f)
    if (cidrs.length === 0) return []
    const knownSet = known[f].length > 0 ? ` ${ipKw(f)} daddr != { ${known[f].join(', ')} }` : ''
    return [`    ${ipKw(f)} daddr { ${cidrs.join(', ')} }${knownSet} counter name ingress_denied drop comment "a pod of this node not yet in the model"`]
  })
  const script = [
    `table inet ${POLICY_TABLE} {`,
    '  counter ingress_denied {}',
    '  counter egress_denied {}',
    ...map('in4', 4), ...map('in6', 6), ...map('out4', 4), ...map('out6', 6),
    ...sets.lines,
    '  chain forward {',
    // Before kube-proxy's and any other filter chain; DNAT (prerouting) has already put the pod in daddr.
    '    type filter hook forward priority filter - 10; policy accept;',
    '    ct state established,related accept',
    // IPv6 neighbour and router discovery between a pod and its bridge is not a connection.
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    '    ip saddr vmap @out4',
    '    ip6 saddr vmap @out6',
    ...unknownLocal,
    '    ip daddr vmap @in4',
    '    ip6 daddr vmap @in6',
    '  }',
    ...chains,
    '}',
  ].join('\n')
  return { script: `${script}\n`, pods: local.length, rules }
}
