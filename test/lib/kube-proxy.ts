// kube-proxy's iptables mode for a few Services, in the shapes its syncProxyRules writes
// (kubernetes/kubernetes pkg/proxy/iptables/proxier.go): the jumps from the built-in
// chains first (EnsureChain, EnsureRule Prepend), then one `iptables-restore --noflush`
// of its own chains. Defaults: masquerade-all off, --cluster-cidr set (the local-traffic
// detector), mark bit 14 (0x4000), NodePorts on every local address.
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import type { Namespace } from '../../src/lab/netns.js'

export interface Service {
  name: string // the service port as kube-proxy names it: namespace/name:port
  protocol: 'tcp' | 'udp'
  clusterIP: string
  port: number
  endpoint: string // ip:port, the one ready endpoint
  nodePort?: number // type NodePort, externalTrafficPolicy Cluster
}

const MARK = '0x4000' // --iptables-masquerade-bit=14

// proxier.go iptablesJumpChains, the nat and forwarding ones: [table, built-in chain, kube chain, comment].
const JUMPS: Array<[string, string, string, string]> = [
  ['nat', 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals'],
  ['nat', 'PREROUTING', 'KUBE-SERVICES', 'kubernetes service portals'],
  ['nat', 'POSTROUTING', 'KUBE-POSTROUTING', 'kubernetes postrouting rules'],
  ['filter', 'FORWARD', 'KUBE-FORWARD', 'kubernetes forwarding rules'],
]

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** The 16 characters kube-proxy puts after KUBE-SVC- (and -SEP-, -EXT-): sha256, base32 (RFC 4648), cut (portProtoHash). */
export function chainHash (text: string): string {
  let out = ''
  let value = 0
  let bits = 0
  for (const byte of createHash('sha256').update(text).digest()) {
    value = ((value << 8) | byte) & 0xfff
    bits += 8
    while (bits >= 5 && out.length < 16) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out
}

export const svcChain = (s: Service): string => `KUBE-SVC-${chainHash(s.name + s.protocol)}`
const extChain = (s: Service): string => `KUBE-EXT-${chainHash(s.name + s.protocol)}`
const sepChain = (s: Service): string => `KUBE-SEP-${chainHash(s.name + s.protocol + s.endpoint)}`

/** The iptables-restore input kube-proxy writes for `services` (one endpoint each). */
export function kubeProxyRules (services: readonly Service[], clusterCIDR: string): string {
  const nat: string[] = []
  const chains = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']
  // Masquerade only what KUBE-MARK-MASQ marked, clearing the mark first so a packet
  // that goes round the stack again is not masqueraded twice.
  nat.push(`-A KUBE-POSTROUTING -m mark ! --mark ${MARK}/${MARK} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${MARK}`,
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${MARK}`)
  for (const s of services) {
    const p = `-m ${s.protocol} -p ${s.protocol}`
    const vip = `${p} -d ${s.clusterIP} --dport ${s.port}`
    const ip = s.endpoint.slice(0, s.endpoint.lastIndexOf(':'))
    chains.push(svcChain(s), sepChain(s))
    nat.push(`-A KUBE-SERVICES -m comment --comment "${s.name} cluster IP" ${vip} -j ${svcChain(s)}`)
    if (s.nodePort) {
      chains.push(extChain(s))
      nat.push(`-A KUBE-NODEPORTS -m comment --comment ${s.name} ${p} --dport ${s.nodePort} -j ${extChain(s)}`,
        // externalTrafficPolicy Cluster: the endpoint may be on another node, so masquerade.
        `-A ${extChain(s)} -m comment --comment "masquerade traffic for ${s.name} external destinations" -j KUBE-MARK-MASQ`,
        `-A ${extChain(s)} -j ${svcChain(s)}`)
    }
    // Only traffic to the ClusterIP from outside the cluster CIDR is masqueraded (IfNotLocal).
    nat.push(`-A ${svcChain(s)} -m comment --comment "${s.name} cluster IP" ${vip} ! -s ${clusterCIDR} -j KUBE-MARK-MASQ`,
      `-A ${svcChain(s)} -m comment --comment "${s.name} -> ${s.endpoint}" -j ${sepChain(s)}`,
      // A pod reaching itself through its Service (hairpin) is masqueraded.
      `-A ${sepChain(s)} -m comment --comment ${s.name} -s ${ip} -j KUBE-MARK-MASQ`,
      `-A ${sepChain(s)} -m comment --comment ${s.name} ${p} -j DNAT --to-destination ${s.endpoint}`)
  }
  nat.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" ' +
    '-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
  const filter = [
    // What a FORWARD policy of DROP would stop; the INVALID drop applies whatever the policy.
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${MARK}/${MARK} -j ACCEPT`,
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ]
  return ['*filter', ':KUBE-FORWARD - [0:0]', ...filter, 'COMMIT',
    '*nat', ...chains.map((c) => `:${c} - [0:0]`), ...nat, 'COMMIT', ''].join('\n')
}

/** Installs the rules in a node's namespace (never the root namespace); returns what was restored. */
export function installKubeProxy (ns: Namespace, services: readonly Service[], clusterCIDR: string, file: string): string {
  const made = new Set<string>()
  for (const [table, from, to, comment] of JUMPS) {
    if (!made.has(`${table} ${to}`)) ns.exec('iptables', '-w', '-t', table, '-N', to) // EnsureChain: once
    made.add(`${table} ${to}`)
    ns.exec('iptables', '-w', '-t', table, '-I', from, '-m', 'comment', '--comment', comment, '-j', to)
  }
  const rules = kubeProxyRules(services, clusterCIDR)
  writeFileSync(file, rules)
  ns.exec('iptables-restore', '-w', '--noflush', file)
  return rules
}
