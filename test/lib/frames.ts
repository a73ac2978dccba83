// VXLAN frames for receive-path tests, built by hand (RFC 7348 section 5).
import { parseAddress } from '../../src/net/cidr.js'
import { parseMac } from '../../src/net/mac.js'
import { ipv4, udp } from './packets.js'

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
