// Addresses as policies name them: pod IPs and ipBlock CIDRs, IPv4 and IPv6, in
// one canonical text form so that a pod IP is one key whatever way it was written.
import { type Address, type Cidr, contains, formatAddress, parseAddress } from '../net/cidr.js'

/** The canonical text of an IP address (RFC 5952 for IPv6), or undefined when it is none. */
export function canonicalIP (text: string): string | undefined {
  const a = parseAddress(text)
  return a ? formatAddress(a) : undefined
}

/**
 * Parses an ipBlock CIDR. The API server validates these with the "sloppy" parser
 * (k8s.io/utils/net ParseCIDRSloppy), which accepts host bits: upstream's own e2e
 * test writes `<podIP>/4`. The host bits are dropped here, as net.ParseCIDR does.
 */
export function parseBlockCidr (text: string): Cidr | string {
  const slash = text.indexOf('/')
  if (slash < 0) return 'is not a CIDR (missing "/length")'
  const addr = parseAddress(text.slice(0, slash))
  if (!addr) return 'is not a CIDR (bad address)'
  const lenText = text.slice(slash + 1)
  const max = addr.family === 4 ? 32 : 128
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) return `is not a CIDR (prefix length must be 0-${max})`
  const length = Number(lenText)
  const bytes = Buffer.from(addr.bytes)
  for (let i = 0; i < bytes.length; i++) {
    const keep = length - i * 8
    if (keep < 8) bytes[i] &= keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff
  }
  return { family: addr.family, bytes, length }
}

export function formatBlockCidr (c: Cidr): string {
  return `${formatAddress(c)}/${c.length}`
}

/** Whether ip (canonical or not) lies in cidr. */
export function inCidr (cidr: Cidr, ip: string | Address): boolean {
  const a = typeof ip === 'string' ? parseAddress(ip) : ip
  return a !== undefined && contains(cidr, a)
}

/** Whether ip is in an ipBlock: inside its cidr and outside every except. */
export function inBlock (block: { cidr: string, except: readonly string[] }, ip: string): boolean {
  const c = parseBlockCidr(block.cidr)
  if (typeof c === 'string' || !inCidr(c, ip)) return false
  return !block.except.some((x) => { const e = parseBlockCidr(x); return typeof e !== 'string' && inCidr(e, ip) })
}
