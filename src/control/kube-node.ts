// A Kubernetes Node as a peer record: pod CIDRs from spec.podCIDRs, the underlay address from
// its InternalIP, and the VTEP's MAC, port and VNI (and the WireGuard public key, when the node
// encrypts) from the `flatnet.io/` annotations each daemon writes on its own Node.
import { formatKey } from '../wireguard/keys.js'
import { formatMac } from '../net/mac.js'
import { fromWire, type VtepRecord } from './vtep.js'

export const ANNOTATION = {
  mac: 'flatnet.io/vtep-mac',
  port: 'flatnet.io/vtep-port',
  vni: 'flatnet.io/vni',
  wgKey: 'flatnet.io/wg-public-key',
}

/** The Node's fields read here, from the API's JSON. */
export interface NodeJson {
  metadata?: { name?: string, annotations?: Record<string, unknown>, resourceVersion?: string }
  spec?: { podCIDR?: unknown, podCIDRs?: unknown }
  status?: { addresses?: Array<{ type?: unknown, address?: unknown }> }
}

/**
 * The Node's record; null when it runs no flatnet (no VTEP annotation, InternalIP or pod CIDR);
 * a string saying why when what it carries is malformed. defaults: this node's port and VNI,
 * for a Node that does not say.
 */
export function nodeRecord (n: NodeJson, defaults: { port: number, vni: number }): VtepRecord | string | null {
  const name = n.metadata?.name
  const a = n.metadata?.annotations ?? {}
  const addr = (Array.isArray(n.status?.addresses) ? n.status.addresses : []).find((x) => x?.type === 'InternalIP')?.address
  const cidrs = Array.isArray(n.spec?.podCIDRs) && n.spec.podCIDRs.length > 0 ? n.spec.podCIDRs : typeof n.spec?.podCIDR === 'string' ? [n.spec.podCIDR] : []
  if (typeof name !== 'string' || typeof a[ANNOTATION.mac] !== 'string' || typeof addr !== 'string' || cidrs.length === 0) return null
  const wg = a[ANNOTATION.wgKey]
  return fromWire({
    node: name,
    cidrs,
    addr,
    port: Number(a[ANNOTATION.port] ?? defaults.port),
    vni: Number(a[ANNOTATION.vni] ?? defaults.vni),
    mac: a[ANNOTATION.mac],
    ver: Number(n.metadata?.resourceVersion) || 0, // opaque to clients, numeric in practice; order comes from the watch
    ...(wg === undefined ? {} : { wg }),
  }, 'kubernetes')
}

/**
 * The annotations this node writes on its own Node (a merge patch). The key's is null when it
 * publishes none: a node that turned encryption off must not leave its old key for peers to
 * encrypt to.
 */
export function selfAnnotations (self: VtepRecord): Record<string, string | null> {
  return {
    [ANNOTATION.mac]: formatMac(self.vtepMAC),
    [ANNOTATION.port]: String(self.port),
    [ANNOTATION.vni]: String(self.vni),
    [ANNOTATION.wgKey]: self.wgKey ? formatKey(self.wgKey) : null,
  }
}
