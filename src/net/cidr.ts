// IP addresses and CIDRs as the control plane handles them: parsed once, kept as
// bytes (the form the native forwarding table takes), printed back canonically.
import { isIPv4, isIPv6 } from 'node:net'

export type Family = 4 | 6

/** The family of an address or CIDR in text, already known to be one of them (IPv6's alone has a colon). */
export const family = (text: string): Family => text.includes(':') ? 6 : 4

export interface Address {
  family: Family
  bytes: Buffer // 4 or 16 bytes, network order
}

export interface Cidr extends Address {
  length: number // prefix length; host bits of bytes are zero
}

export function parseAddress (text: string): Address | undefined {
  if (isIPv4(text)) return { family: 4, bytes: Buffer.from(text.split('.').map(Number)) }
  if (!isIPv6(text) || text.includes('%')) return undefined
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const words = (s: string | undefined): string[] => (s ? s.split(':') : [])
  let left = words(head)
  let right = words(tail)
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two words.
  const v4 = (list: string[]): string[] => {
    const last = list[list.length - 1]
    if (!last || !isIPv4(last)) return list
    const b = last.split('.').map(Number)
    return [...list.slice(0, -1), ((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16)]
  }
  left = v4(left)
  right = v4(right)
  const fill = tail === undefined ? [] : new Array(8 - left.length - right.length).fill('0')
  const all = [...left, ...fill, ...right]
  const bytes = Buffer.alloc(16)
  all.forEach((w, i) => bytes.writeUInt16BE(parseInt(w, 16), i * 2))
  return { family: 6, bytes }
}

export function formatAddress (a: Address): string {
  if (a.family === 4) return [...a.bytes].join('.')
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push(a.bytes.readUInt16BE(i))
  // RFC 5952: compress the longest run (>= 2) of zero words.
  let best = -1; let bestLen = 1
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/** Parses "a.b.c.d/n" or "x::/n". Host bits must be zero, as Kubernetes requires of podCIDRs. */
export function parseCidr (text: string): Cidr | string {
  const slash = text.indexOf('/')
  if (slash < 0) return 'is not a CIDR (missing "/length")'
  const addr = parseAddress(text.slice(0, slash))
  const lenText = text.slice(slash + 1)
  if (!addr) return 'is not a CIDR (bad address)'
  const max = addr.family === 4 ? 32 : 128
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) return `is not a CIDR (prefix length must be 0-${max})`
  const cidr: Cidr = { ...addr, length: Number(lenText) }
  if (!masked(cidr.bytes, cidr.length).equals(cidr.bytes)) {
    return `has host bits set (did you mean ${formatCidr({ ...cidr, bytes: masked(cidr.bytes, cidr.length) })}?)`
  }
  return cidr
}

export function formatCidr (c: Cidr): string {
  return `${formatAddress(c)}/${c.length}`
}

function masked (bytes: Buffer, length: number): Buffer {
  const out = Buffer.from(bytes)
  for (let i = 0; i < out.length; i++) {
    const keep = length - i * 8
    if (keep < 8) out[i] &= keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff
  }
  return out
}

export function contains (outer: Cidr, inner: Address & { length?: number }): boolean {
  if (outer.family !== inner.family) return false
  if ((inner.length ?? inner.bytes.length * 8) < outer.length) return false
  return masked(inner.bytes, outer.length).equals(outer.bytes)
}

export function overlaps (a: Cidr, b: Cidr): boolean {
  return contains(a, b) || contains(b, a)
}

/** The address at offset n inside the CIDR (n = 0 is the network address). */
export function nth (c: Cidr, n: number): Address {
  const bytes = Buffer.from(c.bytes)
  let carry = n
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const v = bytes[i] + (carry & 0xff)
    bytes[i] = v & 0xff
    carry = (carry >>> 8) + (v >> 8)
  }
  return { family: c.family, bytes }
}
