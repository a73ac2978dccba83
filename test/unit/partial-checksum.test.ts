// Inner checksums a kernel vxlan peer left partial (CHECKSUM_PARTIAL over a veth or
// virtio-net underlay: the field holds the folded pseudo-header sum, as
// tcp_v4_send_check and udp4_hwcsum leave it). The receive path must finish them —
// the kernel, through a NEEDS_CSUM vnet header, or flatnet itself without one — and
// still drop a checksum that is in neither form.
import t from 'tap'
import { testing } from '../lib/testing-addon.js'
import {
  ACK, GSO_TCPV4, GSO_TCPV6, NEEDS_CSUM, PSH, SYN, TCP, parse, parseVnetHdr, pattern, pseudoSum, sum16, tcpPacket,
  transportChecksumOk, udpPacket
} from '../lib/packets.js'

interface Coalesced { writes: Buffer[], merged: number, badChecksum: number, partial: number }
const coalesce: (packets: Buffer[], udp?: boolean, mtu?: number) => Coalesced = testing.coalesce
const gsoSplit: (h: Buffer, p: Buffer) => Buffer[] = testing.gsoSplit
const finish: (packet: Buffer) => Buffer | null = testing.finishPartialChecksum

/** The packet as a sender leaves it for the NIC: the pseudo-header sum, folded, in the checksum field. */
function leftPartial (pkt: Buffer): Buffer {
  const c = Buffer.from(pkt)
  const p = parse(c)
  p.l4.writeUInt16BE(sum16(Buffer.alloc(0), pseudoSum(p.src, p.dst, p.proto, p.l4.length)), p.proto === TCP ? 16 : 6)
  return c
}
const seg = (i: number, v: 4 | 6 = 4, flags = ACK): Buffer => tcpPacket(pattern(1000, i + 1), { v, seq: 1000 + i * 1000, flags })
const corrupt = (pkt: Buffer): Buffer => { const c = Buffer.from(pkt); c[c.length - 1] ^= 0x55; return c }

t.test('a lone partial packet is written with NEEDS_CSUM for the kernel to finish, unchanged', async (t) => {
  const cases: Array<[string, Buffer, number, number]> = [
    ['TCP IPv4', leftPartial(seg(0, 4, ACK | PSH)), 20, 16],
    ['TCP IPv6', leftPartial(seg(0, 6, ACK | PSH)), 40, 16],
    ['a SYN', leftPartial(tcpPacket(Buffer.alloc(0), { flags: SYN })), 20, 16],
    ['a pure ACK', leftPartial(tcpPacket(Buffer.alloc(0))), 20, 16],
    ['UDP IPv4', leftPartial(udpPacket(pattern(64))), 20, 6],
    ['UDP IPv6', leftPartial(udpPacket(pattern(64), { v: 6 })), 40, 6],
    // Nothing past the 8-byte header: the TCP-only reads must not reach past it (the gro fuzzer's find).
    ['UDP without payload', leftPartial(udpPacket(Buffer.alloc(0))), 20, 6],
  ]
  for (const [name, pkt, csumStart, csumOffset] of cases) {
    const r = coalesce([pkt], false, 1450)
    t.equal(r.writes.length, 1, `${name}: written`)
    t.same(parseVnetHdr(r.writes[0]), { flags: NEEDS_CSUM, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart, csumOffset }, `${name}: NEEDS_CSUM at its checksum field`)
    t.ok(r.writes[0].subarray(10).equals(pkt), `${name}: the packet itself unchanged`)
    t.same([r.partial, r.badChecksum], [1, 0], `${name}: counted as partial`)
  }
})

t.test('partial segments merge like complete ones; the merged write carries NEEDS_CSUM', async (t) => {
  for (const v of [4, 6] as const) {
    const r = coalesce([leftPartial(seg(0, v)), seg(1, v), leftPartial(seg(2, v))])
    t.same([r.writes.length, r.merged, r.partial, r.badChecksum], [1, 2, 2, 0], `IPv${v}: one write of three, two of them partial`)
    t.equal(parseVnetHdr(r.writes[0]).flags, NEEDS_CSUM, `IPv${v}: NEEDS_CSUM`)
    if (v === 4) t.equal(parseVnetHdr(r.writes[0]).gsoType, GSO_TCPV4)
    t.ok(parse(r.writes[0].subarray(10)).payload.equals(Buffer.concat([0, 1, 2].map((i) => parse(seg(i, v)).payload))), `IPv${v}: payload`)
  }
  const u = (i: number): Buffer => leftPartial(udpPacket(pattern(64, i + 1)))
  const r = coalesce([u(0), u(1), u(2)], true)
  t.same([r.writes.length, r.merged, r.partial], [1, 2, 3], 'UDP (a TUN with USO): one train, three partial datagrams')
})

// Over a veth the kernel passes its GSO skb through to flatnet's socket whole: one
// datagram holding a TCP super-packet, its checksum partial, longer than the TUN's MTU.
t.test('a partial TCP super-packet is handed to the kernel to cut at the MTU', async (t) => {
  for (const v of [4, 6] as const) {
    const ipLen = v === 4 ? 20 : 40
    const superPkt = leftPartial(tcpPacket(pattern(20000, 7), { v, seq: 5, flags: ACK | PSH }))
    const r = coalesce([superPkt], false, 1450)
    const h = parseVnetHdr(r.writes[0])
    t.same(h, { flags: NEEDS_CSUM, gsoType: v === 4 ? GSO_TCPV4 : GSO_TCPV6, hdrLen: ipLen + 20, gsoSize: 1450 - ipLen - 20, csumStart: ipLen, csumOffset: 16 },
      `IPv${v}: GSO TCP, segments of MTU - headers`)
    const segs = gsoSplit(r.writes[0].subarray(0, 10), r.writes[0].subarray(10))
    t.ok(segs.every((s) => s.length <= 1450 && transportChecksumOk(s)), `IPv${v}: what the kernel cuts fits the MTU, every checksum valid (${segs.length} segments)`)
    t.ok(Buffer.concat(segs.map((s) => parse(s).payload)).equals(parse(superPkt).payload), `IPv${v}: the payload, in order`)
    t.equal(parseVnetHdr(coalesce([superPkt], false, 0).writes[0]).gsoType, 0, `IPv${v}: no MTU given: not cut`)
  }
})

t.test('a checksum in neither form is still dropped as bad', async (t) => {
  const r = coalesce([seg(0), corrupt(seg(1)), leftPartial(seg(2))])
  t.same([r.writes.length, r.badChecksum, r.partial], [2, 1, 1], 'the corrupted segment dropped; the partial one kept')
  const head = coalesce([corrupt(seg(0)), leftPartial(seg(1)), seg(2)])
  t.same([head.writes.length, head.badChecksum, head.merged], [1, 1, 1], 'a corrupted head dropped; the rest merged')
})

t.test('not partial: left as they are', async (t) => {
  const fragment = leftPartial(udpPacket(pattern(64)))
  fragment.writeUInt16BE(0x2000, 6) // MF: the checksum covers the whole datagram, not this fragment
  const noChecksum = udpPacket(pattern(64))
  noChecksum.writeUInt16BE(0, 26) // IPv4 UDP without a checksum (RFC 768)
  for (const [name, pkt] of [['a complete checksum', seg(0, 4, ACK | PSH)], ['an IPv4 fragment', fragment], ['IPv4 UDP without a checksum', noChecksum]] as const) {
    const r = coalesce([pkt])
    t.ok(r.writes[0].subarray(0, 10).equals(Buffer.alloc(10)) && r.partial === 0, `${name}: zero vnet header`)
    t.equal(finish(pkt), null, `${name}: nothing to finish`)
  }
})

t.test('without a vnet header flatnet finishes the checksum itself', async (t) => {
  for (const [name, pkt] of [
    ['TCP IPv4', seg(0)], ['TCP IPv6', seg(0, 6)], ['UDP IPv4', udpPacket(pattern(33))], ['UDP IPv6', udpPacket(pattern(33), { v: 6 })],
  ] as const) {
    const done = finish(leftPartial(pkt))
    t.ok(done && transportChecksumOk(done), `${name}: the checksum verifies`)
    t.ok(done?.equals(pkt), `${name}: the very bytes a NIC would have sent`)
  }
})
