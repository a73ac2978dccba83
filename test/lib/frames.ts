// Frames built by hand: VXLAN for receive-path tests (RFC 7348 section 5), and the
// Ethernet frames a hostile pod sends.
import { parseAddress } from '../../src/net/cidr.js'
import { parseMac } from '../../src/net/mac.js'
import { addr, internetChecksum, ip, ipv4, ipv6, pseudoSum, udp, UDP } from './packets.js'

export interface FrameSpec {
  vni: number
  flags?: number // default 0x08, the I bit
  dstMac: string
  srcMac: string
  ethType?: number // default IPv4
  inner: Buffer | string // an IP packet (hex string for deliberately broken ones)
}

export function vxlanFrame (f: FrameSpec): Buffer {
  const inner = typeof f.inner === 'string' ? Buffer.from(f.inner, 'hex') : f.inner
  const head = Buffer.alloc(22)
  head[0] = f.flags ?? 0x08
  head.writeUIntBE(f.vni, 4, 3)
  parseMac(f.dstMac)!.copy(head, 8)
  parseMac(f.srcMac)!.copy(head, 14)
  head.writeUInt16BE(f.ethType ?? 0x0800, 20)
  return Buffer.concat([head, inner])
}

export function ipv4Udp (src: string, dst: string, port: number, payload: Buffer): Buffer {
  return ipv4(parseAddress(src)!.bytes, parseAddress(dst)!.bytes, 17, udp(parseAddress(src)!.bytes, parseAddress(dst)!.bytes, 40000, port, payload))
}

// --- Ethernet frames a hostile pod sends from its own interface (testing.sendFrames) ---

const ETH_IP = 0x0800
const ETH_ARP = 0x0806
const ETH_IP6 = 0x86dd
const ICMPV6 = 58

function ethernet (dstMac: string, srcMac: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14)
  parseMac(dstMac)!.copy(h, 0)
  parseMac(srcMac)!.copy(h, 6)
  h.writeUInt16BE(type, 12)
  return Buffer.concat([h, payload])
}

/** A UDP datagram from src to dst (either family) in a frame from srcMac to dstMac. */
export function udpFrame (srcMac: string, dstMac: string, src: string, dst: string, port: number, payload: Buffer): Buffer {
  const s = addr(src)
  const d = addr(dst)
  return ethernet(dstMac, srcMac, s.length === 4 ? ETH_IP : ETH_IP6, ip(s, d, UDP, udp(s, d, 40000, port, payload)))
}

/** An ARP reply (RFC 826) saying senderIp is at srcMac, to targetIp at dstMac. */
export function arpReplyFrame (srcMac: string, dstMac: string, senderIp: string, targetIp: string): Buffer {
  const a = Buffer.alloc(28)
  a.writeUInt16BE(1, 0) // Ethernet
  a.writeUInt16BE(ETH_IP, 2)
  a[4] = 6
  a[5] = 4
  a.writeUInt16BE(2, 6) // reply
  parseMac(srcMac)!.copy(a, 8)
  addr(senderIp).copy(a, 14)
  parseMac(dstMac)!.copy(a, 18)
  addr(targetIp).copy(a, 24)
  return ethernet(dstMac, srcMac, ETH_ARP, a)
}

function icmpv6Frame (srcMac: string, dstMac: string, src: string, dst: string, message: Buffer): Buffer {
  const s = addr(src)
  const d = addr(dst)
  message.writeUInt16BE(internetChecksum(message, pseudoSum(s, d, ICMPV6, message.length)), 2)
  return ethernet(dstMac, srcMac, ETH_IP6, ipv6(s, d, ICMPV6, message, { ttl: 255 })) // ND needs hop limit 255 (RFC 4861 6.1)
}

/** A neighbour advertisement (RFC 4861 4.4) saying target is at srcMac: solicited off, override on. */
export function neighbourAdvertFrame (srcMac: string, dstMac: string, src: string, dst: string, target: string): Buffer {
  const m = Buffer.alloc(32)
  m[0] = 136
  m.writeUInt32BE(0x20000000, 4) // O: override the cached address
  addr(target).copy(m, 8)
  m[24] = 2 // target link-layer address option, 8 bytes
  m[25] = 1
  parseMac(srcMac)!.copy(m, 26)
  return icmpv6Frame(srcMac, dstMac, src, dst, m)
}

/** A router advertisement (RFC 4861 4.2) to all nodes: "route everything through me" for 1800 s. */
export function routerAdvertFrame (srcMac: string, src: string): Buffer {
  const m = Buffer.alloc(16)
  m[0] = 134
  m[4] = 64 // cur hop limit
  m.writeUInt16BE(1800, 6) // router lifetime: a default router
  return icmpv6Frame(srcMac, '33:33:00:00:00:01', src, 'ff02::1', m)
}
