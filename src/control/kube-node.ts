// A Kubernetes Node as a peer record: pod CIDRs from spec.podCIDRs, the underlay address from
// its InternalIP, and the VTEP's MAC, port and VNI (and the WireGuard public key and port, when
// the node encrypts) from the `flatnet.io/` annotations each daemon writes on its own Node. A node of
// flannel (its kube subnet manager: the `flannel.alpha.coreos.com/` annotations) is a peer too,
// and each daemon writes flannel's annotations as well, so that a cluster moves between the two
// node by node (flannel's pkg/subnet/kube: nodeToLease; pkg/backend/{vxlan,wireguard}).
import { family, formatAddress, parseAddress } from '../net/cidr.js'
import { formatKey } from '../wireguard/keys.js'
import { formatMac } from '../net/mac.js'
import { fromWire, type VtepRecord, type VtepWire } from './vtep.js'

export const ANNOTATION = {
  mac: 'flatnet.io/vtep-mac',
  port: 'flatnet.io/vtep-port',
  vni: 'flatnet.io/vni',
  wgKey: 'flatnet.io/wg-public-key',
  wgPort: 'flatnet.io/wg-port',
  // flannel's backend-data as this daemon wrote it: flannel's own differing from it later means
  // flannel runs on the node now (it was moved back), and its annotations are the current ones.
  flannelData: 'flatnet.io/flannel-backend-data',
}

/** flannel's annotations (its default prefix), as its kube subnet manager reads and writes them. */
export const FLANNEL = {
  managed: 'flannel.alpha.coreos.com/kube-subnet-manager',
  type: 'flannel.alpha.coreos.com/backend-type',
  data: 'flannel.alpha.coreos.com/backend-data',
  data6: 'flannel.alpha.coreos.com/backend-v6-data',
  ip: 'flannel.alpha.coreos.com/public-ip',
  ip6: 'flannel.alpha.coreos.com/public-ipv6',
}

/** The Node's fields read here, from the API's JSON. */
export interface NodeJson {
  metadata?: { name?: string, annotations?: Record<string, unknown>, resourceVersion?: string }
  spec?: { podCIDR?: unknown, podCIDRs?: unknown }
  status?: { addresses?: Array<{ type?: unknown, address?: unknown }> }
}

/**
 * The Node's record; null when it runs neither flatnet nor flannel's vxlan or wireguard backend
 * (no VTEP annotation, InternalIP or pod CIDR); a string saying why when what it carries is
 * malformed. defaults: this node's port and VNI, for a Node that does not say.
 */
export function nodeRecord (n: NodeJson, defaults: { port: number, vni: number }): VtepRecord | string | null {
  const name = n.metadata?.name
  const a = n.metadata?.annotations ?? {}
  const cidrs = Array.isArray(n.spec?.podCIDRs) && n.spec.podCIDRs.length > 0 ? n.spec.podCIDRs : typeof n.spec?.podCIDR === 'string' ? [n.spec.podCIDR] : []
  if (typeof name !== 'string' || cidrs.length === 0) return null
  const ver = Number(n.metadata?.resourceVersion) || 0 // opaque to clients, numeric in practice; order comes from the watch
  if (typeof a[ANNOTATION.mac] !== 'string' || flannelTookOver(a)) return a[FLANNEL.managed] === 'true' ? flannelRecord(name, a, cidrs, ver, defaults) : null
  const addr = (Array.isArray(n.status?.addresses) ? n.status.addresses : []).find((x) => x?.type === 'InternalIP')?.address
  if (typeof addr !== 'string') return null
  const wg = a[ANNOTATION.wgKey]
  const wgPort = a[ANNOTATION.wgPort]
  return fromWire({
    node: name,
    cidrs,
    addr,
    port: Number(a[ANNOTATION.port] ?? defaults.port),
    vni: Number(a[ANNOTATION.vni] ?? defaults.vni),
    mac: a[ANNOTATION.mac],
    ver,
    ...(wg === undefined ? {} : { wg }),
    ...(wgPort === undefined ? {} : { wgPort: Number(wgPort) }),
  }, 'kubernetes')
}

/** flannel rewrote its annotations after flatnet wrote them: the node runs flannel now. */
function flannelTookOver (a: Record<string, unknown>): boolean {
  const wrote = a[ANNOTATION.flannelData]
  return typeof wrote === 'string' && a[FLANNEL.managed] === 'true' && a[FLANNEL.data] !== wrote && a[FLANNEL.data6] !== wrote
}

/**
 * A flannel node: its public address and backend data of one family (IPv4's when it has both:
 * flannel's default "separate" mode reaches the other family through a second device and
 * address, which one peer record cannot hold), with its pod CIDR of that family. vxlan: its
 * VtepMAC and VNI, on this node's port (flannel does not publish its own); wireguard: its
 * PublicKey and Port (0 or none: the reader's port, as flannel reads it).
 */
function flannelRecord (name: string, a: Record<string, unknown>, cidrs: unknown[], ver: number, defaults: { port: number, vni: number }): VtepRecord | string | null {
  const type = a[FLANNEL.type]
  if (type !== 'vxlan' && type !== 'wireguard') return null // host-gw, udp, ...: not reachable through a tunnel of ours
  const v4 = typeof a[FLANNEL.ip] === 'string' && typeof a[FLANNEL.data] === 'string'
  const addr = v4 ? a[FLANNEL.ip] : a[FLANNEL.ip6]
  const raw = v4 ? a[FLANNEL.data] : a[FLANNEL.data6]
  if (typeof addr !== 'string' || typeof raw !== 'string') return `${name}: flannel ${type} node with neither ${FLANNEL.ip} and ${FLANNEL.data} nor their IPv6 pair`
  let data: unknown
  try { data = JSON.parse(raw) } catch { data = undefined }
  if (typeof data !== 'object' || data === null) return `${name}: ${v4 ? FLANNEL.data : FLANNEL.data6} ${JSON.stringify(raw.slice(0, 100))} is not a JSON object`
  const d = data as Record<string, unknown>
  const at = parseAddress(addr)?.family
  if (at === undefined) return `${name}: ${v4 ? FLANNEL.ip : FLANNEL.ip6} ${JSON.stringify(addr)} is not an IP address`
  const ofFamily = cidrs.filter((c): c is string => typeof c === 'string' && family(c) === at)
  if (ofFamily.length === 0) return `${name}: no pod CIDR of the family of its flannel address ${addr}`
  const wire: VtepWire = {
    node: name,
    cidrs: ofFamily,
    addr,
    port: defaults.port,
    vni: defaults.vni,
    ver,
  }
  if (type === 'wireguard') {
    wire.wg = d.PublicKey as string
    if (d.Port !== 0 && d.Port !== undefined) wire.wgPort = d.Port as number
  } else {
    wire.mac = d.VtepMAC as string
    wire.vni = d.VNI as number
  }
  return fromWire(wire, 'kubernetes')
}

/**
 * The annotations this node writes on its own Node (a merge patch). The key's is null when it
 * publishes none: a node that turned encryption off must not leave its old key for peers to
 * encrypt to. flannel's say the same for flannel's nodes: wireguard with the key, else vxlan;
 * those of the other address family are removed. What it wrote in flannel's backend-data is
 * kept beside, so that peers see when flannel has rewritten it.
 */
export function selfAnnotations (self: VtepRecord): Record<string, string | null> {
  const mac = formatMac(self.vtepMAC as Buffer) // this node's record always has one
  const data = self.wgKey
    ? { PublicKey: formatKey(self.wgKey), Port: self.wgPort }
    : { VNI: self.vni, VtepMAC: mac }
  const v4 = self.address.family === 4
  const flannelData = JSON.stringify(data)
  return {
    [ANNOTATION.mac]: mac,
    [ANNOTATION.port]: String(self.port),
    [ANNOTATION.vni]: String(self.vni),
    [ANNOTATION.wgKey]: self.wgKey ? formatKey(self.wgKey) : null,
    [ANNOTATION.wgPort]: self.wgKey && self.wgPort !== undefined ? String(self.wgPort) : null,
    [FLANNEL.managed]: 'true',
    [FLANNEL.type]: self.wgKey ? 'wireguard' : 'vxlan',
    [FLANNEL.ip]: v4 ? formatAddress(self.address) : null,
    [FLANNEL.data]: v4 ? flannelData : null,
    [FLANNEL.ip6]: v4 ? null : formatAddress(self.address),
    [FLANNEL.data6]: v4 ? null : flannelData,
    [ANNOTATION.flannelData]: flannelData,
  }
}
