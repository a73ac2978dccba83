// The compiled form of a cluster's NetworkPolicies: what both the nftables renderer
// and `flatnet policy explain` read, so that what is enforced and what is explained
// cannot drift apart. Keyed by pod IP, because packets carry addresses, not names.
import type { IPBlock, Protocol } from './objects.js'

/**
 * The peers of one allow entry. any: every address (a rule without from/to).
 * Otherwise the union of ips (pod IPs the selectors resolved to, canonical) and
 * blocks (ipBlock cidr minus its excepts). Renders as one nftables set per entry.
 */
export interface AddressSet { any: boolean, ips: string[], blocks: IPBlock[] }

/** A protocol and, when given, an inclusive port range; no range means every port of the protocol. */
export interface PortRange { protocol: Protocol, ports?: { from: number, to: number } }

/**
 * One way traffic may pass: from (ingress) or to (egress) an address of peers, on
 * one of ports ('all': every protocol and port, a rule without ports). Named ports
 * are already numbers here, resolved against the destination pod.
 */
export interface AllowEntry {
  /** "namespace/name" of the policy this comes from. */
  policy: string
  /** Index of the rule in the policy's spec.ingress or spec.egress. */
  rule: number
  peers: AddressSet
  ports: 'all' | PortRange[]
}

/** One direction of one pod. Not isolated: everything passes. Isolated: only what an entry allows. */
export interface DirectionPolicy {
  isolated: boolean
  /** The policies selecting the pod for this direction (each isolates it, even with no rules). */
  policies: string[]
  entries: AllowEntry[]
}

export interface PodPolicy {
  /** "namespace/name" */
  pod: string
  nodeName?: string
  ips: string[]
  ingress: DirectionPolicy
  egress: DirectionPolicy
}

export interface PolicyModel {
  /** Every pod with IPs of its own, under each of its IPs (host-network pods are not here). */
  byIP: Map<string, PodPolicy>
  /** The same pods by "namespace/name". */
  byName: Map<string, PodPolicy>
  /** Addresses of each node, for the rule that a pod's own node may always reach it. */
  nodeAddresses: Map<string, string[]>
}
