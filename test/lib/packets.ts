// IP, TCP and UDP packets built by hand for tests, with checksums from a slow,
// obviously-correct RFC 1071 loop (the native fast path is checked against it).
import { parseAddress } from '../../src/net/cidr.js'

export const TCP = 6
export const UDP = 17
export const FIN = 0x01
export const SYN = 0x02
export const PSH = 0x08
export const ACK = 0x10
export const CWR = 0x80

// virtio_net_hdr values (include/uapi/linux/virtio_net.h).
export const NEEDS_CSUM = 1
export const GSO_NONE = 0
export const GSO_TCPV4 = 1
export const GSO_UDP = 3
export const GSO_TCPV6 = 4
export const GSO_UDP_L4 = 5
export const GSO_ECN = 0x80

/** Address bytes of a literal, e.g. addr('192.0.2.1'). */
export function addr (text: string): Buffer {
  const a = parseAddress(text)
  if (!a) throw new Error(`test address ${text} does not parse`)
  return a.bytes
}

/** Ones' complement sum of big-endian 16-bit words, folded to 16 bits (not complemented). */
export function sum16 (buf: Uint8Array, initial = 0): number {
  let s = initial
  for (let i = 0; i < buf.length; i += 2) s += (buf[i] << 8) | (i + 1 < buf.length ? buf[i + 1] : 0)
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000)
  return s
}

/** The final internet checksum of buf: the complement of its folded sum. */
export function internetChecksum (buf: Uint8Array, initial = 0): number {
  return ~sum16(buf, initial) & 0xffff
}

/** TCP/UDP pseudo-header sum (RFC 793 3.1, RFC 8200 8.1); the family follows the address length. */
export function pseudoSum (src: Buffer, dst: Buffer, proto: number, length: number): number {
  return sum16(Buffer.concat([src, dst]), proto + (length >>> 16) + (length & 0xffff))
}

export function udp (src: Buffer, dst: Buffer, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8)
  h.writeUInt16BE(srcPort, 0)
  h.writeUInt16BE(dstPort, 2)
  h.writeUInt16BE(8 + payload.length, 4)
  const seg = Buffer.concat([h, payload])
  seg.writeUInt16BE(internetChecksum(seg, pseudoSum(src, dst, UDP, seg.length)) || 0xffff, 6)
  return seg
}

export interface TcpFields {
  srcPort?: number
  dstPort?: number
  seq?: number
  ack?: number
  flags?: number // default ACK
  window?: number
  options?: Buffer // padded to a multiple of 4 by the caller
}

export function tcp (src: Buffer, dst: Buffer, payload: Buffer, f: TcpFields = {}): Buffer {
  const options = f.options ?? Buffer.alloc(0)
  const h = Buffer.alloc(20 + options.length)
  h.writeUInt16BE(f.srcPort ?? 40000, 0)
  h.writeUInt16BE(f.dstPort ?? 80, 2)
  h.writeUInt32BE((f.seq ?? 1000) >>> 0, 4)
  h.writeUInt32BE((f.ack ?? 5000) >>> 0, 8)
  h[12] = (h.length / 4) << 4
  h[13] = f.flags ?? ACK
  h.writeUInt16BE(f.window ?? 502, 14)
  options.copy(h, 20)
  const seg = Buffer.concat([h, payload])
  seg.writeUInt16BE(internetChecksum(seg, pseudoSum(src, dst, TCP, seg.length)), 16)
  return seg
}

export interface IpFields {
  id?: number
  ttl?: number // hop limit for IPv6
  tos?: number // traffic class for IPv6
  df?: boolean
  ipOptions?: Buffer // IPv4 only, multiple of 4
  flowLabel?: number
}

export function ipv4 (src: Buffer, dst: Buffer, proto: number, l4: Buffer, f: IpFields = {}): Buffer {
  const options = f.ipOptions ?? Buffer.alloc(0)
  const h = Buffer.alloc(20 + options.length)
  h[0] = 0x40 | (h.length / 4)
  h[1] = f.tos ?? 0
  h.writeUInt16BE(h.length + l4.length > 0xffff ? 0 : h.length + l4.length, 2) // 0: BIG TCP
  h.writeUInt16BE(f.id ?? 0x1234, 4)
  h.writeUInt16BE(f.df === false ? 0 : 0x4000, 6)
  h[8] = f.ttl ?? 64
  h[9] = proto
  src.copy(h, 12)
  dst.copy(h, 16)
  options.copy(h, 20)
  h.writeUInt16BE(internetChecksum(h), 10)
  return Buffer.concat([h, l4])
}

export function ipv6 (src: Buffer, dst: Buffer, nextHeader: number, l4: Buffer, f: IpFields = {}): Buffer {
  const h = Buffer.alloc(40)
  h.writeUInt32BE((0x6 << 28 | (f.tos ?? 0) << 20 | (f.flowLabel ?? 0)) >>> 0, 0)
  h.writeUInt16BE(l4.length > 0xffff ? 0 : l4.length, 4)
  h[6] = nextHeader
  h[7] = f.ttl ?? 64
  src.copy(h, 8)
  dst.copy(h, 24)
  return Buffer.concat([h, l4])
}

/** An IP packet of the family of src (4 or 16 bytes). */
export function ip (src: Buffer, dst: Buffer, proto: number, l4: Buffer, f: IpFields = {}): Buffer {
  return src.length === 4 ? ipv4(src, dst, proto, l4, f) : ipv6(src, dst, proto, l4, f)
}

export const V4 = { src: addr('192.0.2.1'), dst: addr('198.51.100.7') }
export const V6 = { src: addr('2001:db8::1'), dst: addr('2001:db8:1::2') }

/** A complete TCP packet; family from the addresses (default V4). */
export function tcpPacket (payload: Buffer, f: TcpFields & IpFields & { v?: 4 | 6 } = {}): Buffer {
  const a = f.v === 6 ? V6 : V4
  return ip(a.src, a.dst, TCP, tcp(a.src, a.dst, payload, f), f)
}

export function udpPacket (payload: Buffer, f: IpFields & { v?: 4 | 6, srcPort?: number, dstPort?: number } = {}): Buffer {
  const a = f.v === 6 ? V6 : V4
  return ip(a.src, a.dst, UDP, udp(a.src, a.dst, f.srcPort ?? 40000, f.dstPort ?? 4789, payload), f)
}

/** Deterministic pseudo-random bytes (tests must be repeatable). */
export function pattern (n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

export interface VnetHdr {
  flags: number
  gsoType: number
  hdrLen: number
  gsoSize: number
  csumStart: number
  csumOffset: number
}

/** struct virtio_net_hdr: 10 bytes, 16-bit fields little-endian (the host order TUN uses here). */
export function vnetHdr (h: Partial<VnetHdr> = {}): Buffer {
  const b = Buffer.alloc(10)
  b[0] = h.flags ?? 0
  b[1] = h.gsoType ?? 0
  b.writeUInt16LE(h.hdrLen ?? 0, 2)
  b.writeUInt16LE(h.gsoSize ?? 0, 4)
  b.writeUInt16LE(h.csumStart ?? 0, 6)
  b.writeUInt16LE(h.csumOffset ?? 0, 8)
  return b
}

export function parseVnetHdr (b: Buffer): VnetHdr {
  return {
    flags: b[0],
    gsoType: b[1],
    hdrLen: b.readUInt16LE(2),
    gsoSize: b.readUInt16LE(4),
    csumStart: b.readUInt16LE(6),
    csumOffset: b.readUInt16LE(8)
  }
}

/** The parts of a (well-formed) IP packet tests look at. */
export interface Parsed {
  version: number
  ipLen: number
  proto: number
  src: Buffer
  dst: Buffer
  l4: Buffer // the transport header and payload
  l4Len: number // transport header length
  payload: Buffer
}

export function parse (pkt: Buffer): Parsed {
  const version = pkt[0] >> 4
  const ipLen = version === 4 ? (pkt[0] & 15) * 4 : 40
  const proto = version === 4 ? pkt[9] : pkt[6]
  const src = version === 4 ? pkt.subarray(12, 16) : pkt.subarray(8, 24)
  const dst = version === 4 ? pkt.subarray(16, 20) : pkt.subarray(24, 40)
  const l4 = pkt.subarray(ipLen)
  const l4Len = proto === TCP ? (l4[12] >> 4) * 4 : 8
  return { version, ipLen, proto, src, dst, l4, l4Len, payload: l4.subarray(l4Len) }
}

/** Whether the IPv4 header checksum verifies (always true for IPv6, which has none). */
export function ipChecksumOk (pkt: Buffer): boolean {
  const p = parse(pkt)
  return p.version === 6 || sum16(pkt.subarray(0, p.ipLen)) === 0xffff
}

/** Whether the TCP/UDP checksum verifies over pseudo-header, header and payload. */
export function transportChecksumOk (pkt: Buffer): boolean {
  const p = parse(pkt)
  return sum16(p.l4, pseudoSum(p.src, p.dst, p.proto, p.l4.length)) === 0xffff
}
