// A peer VTEP as every source knows it, and its wire form (plain strings and
// numbers: what the control channel, etcd values, the state file and the
// Kubernetes annotations carry). Anything a source hands over is checked here
// first, so a hostile or broken source cannot put a malformed entry in the table.
import type { PeerConfig } from '../config.js'
import { type Cidr, formatAddress, formatCidr, parseAddress, parseCidr } from '../net/cidr.js'
import { formatMac, parseMac } from '../net/mac.js'
import { formatKey, parseKey } from '../wireguard/keys.js'

export type SourceName = 'static' | 'channel' | 'kubernetes' | 'etcd'

export interface VtepRecord extends PeerConfig {
  vni: number
  version: number // grows with every change the owner makes (etcd mod revision, channel incarnation, ...)
  source: SourceName
}

/** Wire form: versioned by the channel's schema number, not here. */
export interface VtepWire {
  node: string
  cidrs: string[]
  addr: string
  port: number
  vni: number
  mac?: string // absent only beside wg: a node that speaks WireGuard only (flannel's wireguard backend)
  ver: number
  // WireGuard public key, base64 (`wg pubkey`). Optional and additive: a node of an older
  // version ignores it, and a record without it is a peer that publishes no key.
  wg?: string
  wgPort?: number // its WireGuard port, when it says (flannel's backend-data does); else the reader's own
}

export function toWire (r: VtepRecord): VtepWire {
  return {
    node: r.nodeName,
    cidrs: r.podCIDRs.map(formatCidr),
    addr: formatAddress(r.address),
    port: r.port,
    vni: r.vni,
    ...(r.vtepMAC ? { mac: formatMac(r.vtepMAC) } : {}),
    ver: r.version,
    ...(r.wgKey ? { wg: formatKey(r.wgKey) } : {}),
    ...(r.wgPort !== undefined ? { wgPort: r.wgPort } : {}),
  }
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/

/** Checks an untrusted wire record; returns the record or why it was refused. */
export function fromWire (v: unknown, source: SourceName): VtepRecord | string {
  if (typeof v !== 'object' || v === null) return 'not an object'
  const w = v as Record<string, unknown>
  if (typeof w.node !== 'string' || !NODE_NAME.test(w.node)) return `node ${JSON.stringify(w.node)} is not a node name`
  if (!Array.isArray(w.cidrs) || w.cidrs.length < 1 || w.cidrs.length > 2) return `${w.node}: cidrs must hold one or two CIDRs`
  const podCIDRs: Cidr[] = []
  for (const c of w.cidrs) {
    const parsed = typeof c === 'string' ? parseCidr(c) : 'is not a string'
    if (typeof parsed === 'string') return `${w.node}: cidr ${JSON.stringify(c)} ${parsed}`
    podCIDRs.push(parsed)
  }
  if (podCIDRs.length === 2 && podCIDRs[0].family === podCIDRs[1].family) return `${w.node}: two cidrs must be one IPv4 and one IPv6`
  const address = typeof w.addr === 'string' ? parseAddress(w.addr) : undefined
  if (!address) return `${w.node}: addr ${JSON.stringify(w.addr)} is not an IP address`
  if (!isInt(w.port, 1, 65535)) return `${w.node}: port ${JSON.stringify(w.port)} is not 1-65535`
  if (!isInt(w.vni, 1, 0xffffff)) return `${w.node}: vni ${JSON.stringify(w.vni)} is not 1-16777215`
  if (!isInt(w.ver, 0, Number.MAX_SAFE_INTEGER)) return `${w.node}: ver ${JSON.stringify(w.ver)} is not a version number`
  let wgKey: Buffer | undefined
  if (w.wg !== undefined) {
    // Exactly the canonical form: no whitespace, no other encoding of the same bytes.
    wgKey = typeof w.wg === 'string' ? parseKey(w.wg) : undefined
    if (!wgKey || formatKey(wgKey) !== w.wg) return `${w.node}: wg ${JSON.stringify(w.wg)} is not a WireGuard public key (32 bytes in base64)`
  }
  if (w.wgPort !== undefined && !isInt(w.wgPort, 1, 65535)) return `${w.node}: wgPort ${JSON.stringify(w.wgPort)} is not 1-65535`
  const vtepMAC = typeof w.mac === 'string' ? parseMac(w.mac) : undefined
  if (w.mac === undefined && !wgKey) return `${w.node}: has neither a VTEP mac nor a WireGuard key (wg)`
  if (w.mac !== undefined && (!vtepMAC || (vtepMAC[0] & 1))) return `${w.node}: mac ${JSON.stringify(w.mac)} is not a unicast MAC`
  const r: VtepRecord = { nodeName: w.node, podCIDRs, address, port: w.port, vni: w.vni, version: w.ver, source }
  if (vtepMAC) r.vtepMAC = vtepMAC
  if (wgKey) r.wgKey = wgKey
  if (w.wgPort !== undefined) r.wgPort = w.wgPort
  return r
}

/** The static config's peers as records (they carry no VNI of their own: the node's). */
export function fromPeerConfig (p: PeerConfig, vni: number): VtepRecord {
  return { ...p, vni, version: 0, source: 'static' }
}

/** The same bytes (a WireGuard key, a MAC), or both without any. */
export function sameBytes (a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b)
}

/** Same forwarding meaning (what the native table sees), whatever the version or source. */
export function sameVtep (a: PeerConfig & { vni: number }, b: PeerConfig & { vni: number }): boolean {
  return a.nodeName === b.nodeName && a.port === b.port && a.vni === b.vni && a.address.bytes.equals(b.address.bytes) &&
    sameBytes(a.vtepMAC, b.vtepMAC) && a.wgPort === b.wgPort && a.podCIDRs.length === b.podCIDRs.length &&
    a.podCIDRs.every((c, i) => c.length === b.podCIDRs[i].length && c.bytes.equals(b.podCIDRs[i].bytes))
}

function isInt (v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
}
