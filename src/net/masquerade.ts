// NAT outgoing: pod traffic leaving the cluster takes the node's address, as
// flannel's --ip-masq does; pod-to-pod traffic keeps the pod's own. The rules live
// in flatnet's own nftables tables (`ip flatnet`, `ip6 flatnet`), replaced whole in
// one `nft -f` transaction, so re-applying converges and never leaves a gap.
import { nft } from './nft.js'
import { type Cidr, type Family, formatCidr } from './cidr.js'

export const TABLE = 'flatnet'

/**
 * The ruleset for one family (flannel's four rules, in nftables):
 * pod -> cluster: untouched; pod -> elsewhere (not multicast): masquerade;
 * outside -> own pods: untouched; outside -> other nodes' pods: masquerade, so
 * replies come back through this node.
 */
export function masqueradeRules (family: Family, podCIDRs: Cidr[], clusterCIDRs: Cidr[]): string {
  const ip = family === 4 ? 'ip' : 'ip6'
  const set = (cidrs: Cidr[]): string => `{ ${cidrs.filter((c) => c.family === family).map(formatCidr).join(', ')} }`
  const pods = set(podCIDRs)
  const cluster = set(clusterCIDRs)
  const multicast = family === 4 ? '224.0.0.0/4' : 'ff00::/8'
  return [
    `table ${ip} ${TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ${ip} saddr ${pods} ${ip} daddr ${cluster} return`,
    `    ${ip} saddr ${pods} ${ip} daddr != ${multicast} masquerade fully-random`,
    `    ${ip} saddr != ${cluster} ${ip} daddr ${pods} return`,
    `    ${ip} saddr != ${cluster} ${ip} daddr ${cluster} masquerade fully-random`,
    '  }',
    '}',
  ].join('\n')
}

function families (podCIDRs: Cidr[]): Family[] {
  return [...new Set(podCIDRs.map((c) => c.family))]
}

/** Installs (or replaces) the tables for each pod CIDR family, atomically. */
export function applyMasquerade (podCIDRs: Cidr[], clusterCIDRs: Cidr[]): void {
  // `add table` makes `delete table` safe on first run; the new table follows in the same transaction.
  const script = families(podCIDRs).flatMap((f) => {
    const ip = f === 4 ? 'ip' : 'ip6'
    return [`add table ${ip} ${TABLE}`, `delete table ${ip} ${TABLE}`, masqueradeRules(f, podCIDRs, clusterCIDRs)]
  }).join('\n')
  nft(['-f', '-'], `${script}\n`)
}

/** Removes flatnet's tables (both families); no error if they are gone already. */
export function removeMasquerade (): void {
  nft(['-f', '-'], ['ip', 'ip6'].flatMap((ip) => [`add table ${ip} ${TABLE}`, `delete table ${ip} ${TABLE}`]).join('\n') + '\n')
}
