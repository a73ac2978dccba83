// Receive coalescing (native/gro.cc): what is merged, what passes unchanged, and
// that a merged write splits back into exactly the segments it was made of.
import t, { type Test } from 'tap'
import { testing } from '../lib/testing-addon.js'
import {
  ACK, FIN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, PSH, SYN, V4, ipChecksumOk, ipv4, parse, parseVnetHdr, pattern,
  pseudoSum, sum16, tcp, TCP, tcpPacket, UDP, udpPacket, vnetHdr, type IpFields, type TcpFields
} from '../lib/packets.js'

interface Coalesced { writes: Buffer[], merged: number, badChecksum: number }
const coalesce: (packets: Buffer[], udp?: boolean) => Coalesced = testing.coalesce
const gsoSplit: (h: Buffer, p: Buffer) => Buffer[] = testing.gsoSplit

const TS_OPTION = Buffer.from('0101080a0001e2400000abcd', 'hex')
const ZERO_HDR = Buffer.alloc(10)

// Segment i of a flow sending `size`-byte segments from sequence 1000.
function seg (i: number, f: TcpFields & IpFields & { v?: 4 | 6, size?: number, seq?: number } = {}): Buffer {
  const size = f.size ?? 1000
  return tcpPacket(pattern(size, i + 1), { seq: 1000 + i * 1000, options: TS_OPTION, ...f })
}

function corrupt (pkt: Buffer): Buffer {
  const c = Buffer.from(pkt)
  c[c.length - 1] ^= 0x55
  return c
}

/** Checks a merged write and returns its IP packet. */
function checkMerged (t: Test, w: Buffer, v: 4 | 6, gsoSize: number, name: string): Buffer {
  const ipLen = v === 4 ? 20 : 40
  t.same(parseVnetHdr(w), { flags: NEEDS_CSUM, gsoType: v === 4 ? GSO_TCPV4 : GSO_TCPV6, hdrLen: ipLen + 32, gsoSize, csumStart: ipLen, csumOffset: 16 }, `${name}: vnet header`)
  const pkt = w.subarray(10)
  const p = parse(pkt)
  t.ok(ipChecksumOk(pkt), `${name}: IP checksum`)
  t.equal(v === 4 ? pkt.readUInt16BE(2) : pkt.readUInt16BE(4) + 40, pkt.length, `${name}: IP length`)
  t.equal(p.l4.readUInt16BE(16), sum16(Buffer.alloc(0), pseudoSum(p.src, p.dst, TCP, p.l4.length)), `${name}: pseudo-header sum, not complemented`)
  return pkt
}

t.test('gsoSplit output coalesces back into the super-packet', async (t) => {
  for (const v of [4, 6] as const) {
    const payload = pattern(65535 - 40 - 32, 3)
    const superPkt = tcpPacket(payload, { v, flags: ACK | PSH, options: TS_OPTION, seq: 0xffffff00 })
    const hdr = vnetHdr({ gsoType: v === 4 ? GSO_TCPV4 : GSO_TCPV6, gsoSize: 1448 })
    const segs = gsoSplit(hdr, superPkt)
    const r = coalesce(segs)
    t.equal(r.writes.length, 1, `IPv${v}: one write`)
    t.equal(r.merged, segs.length - 1, `IPv${v}: merged count`)
    t.equal(r.badChecksum, 0)
    const pkt = checkMerged(t, r.writes[0], v, 1448, `IPv${v}`)
    t.ok(parse(pkt).payload.equals(payload), `IPv${v}: payload equals the original`)
    t.equal(parse(pkt).l4[13], ACK | PSH, `IPv${v}: PSH from the last segment`)
    t.same(gsoSplit(r.writes[0].subarray(0, 10), pkt), segs, `IPv${v}: splits back into the same segments`)
  }
})

interface Case {
  name: string
  packets: Buffer[]
  // Each write: i = packet i unchanged with a zero header, [i, j, ...] = those merged.
  writes: Array<number | number[]>
  badChecksum?: number
}

const a = (i: number, f: TcpFields & IpFields & { v?: 4 | 6, size?: number } = {}) => seg(i, f)
const b = (i: number, f: TcpFields & IpFields = {}) => seg(i, { srcPort: 40001, ...f })

const cases: Case[] = [
  { name: 'one flow', packets: [a(0), a(1), a(2)], writes: [[0, 1, 2]] },
  { name: 'IPv6 flow', packets: [a(0, { v: 6 }), a(1, { v: 6 })], writes: [[0, 1]] },
  { name: 'a single segment is passed unchanged', packets: [a(0)], writes: [0] },
  { name: 'flows interleaved', packets: [a(0), b(0), a(1), b(1)], writes: [0, 1, 2, 3] },
  { name: 'flows one after the other', packets: [a(0), a(1), b(0), b(1)], writes: [[0, 1], [2, 3]] },
  { name: 'sequence gap', packets: [a(0), a(2)], writes: [0, 1] },
  { name: 'retransmission', packets: [a(0), a(0)], writes: [0, 1] },
  { name: 'PSH ends the run', packets: [a(0), a(1, { flags: ACK | PSH }), a(2)], writes: [[0, 1], 2] },
  { name: 'PSH head stands alone', packets: [a(0, { flags: ACK | PSH }), a(1)], writes: [0, 1] },
  { name: 'FIN not merged', packets: [a(0), a(1, { flags: ACK | FIN })], writes: [0, 1] },
  { name: 'SYN not merged', packets: [a(0, { flags: SYN }), a(1, { flags: SYN })], writes: [0, 1] },
  { name: 'smaller segment ends the run', packets: [a(0), a(1, { size: 500 }), a(2, { seq: 2500 })], writes: [[0, 1], 2] },
  { name: 'larger segment starts a new run', packets: [a(0, { size: 500 }), a(1, { seq: 1500 })], writes: [0, 1] },
  { name: 'different ack', packets: [a(0), a(1, { ack: 9 })], writes: [0, 1] },
  { name: 'different window', packets: [a(0), a(1, { window: 9 })], writes: [0, 1] },
  { name: 'different options', packets: [a(0), a(1, { options: Buffer.from('0101080a0001e2410000abcd', 'hex') })], writes: [0, 1] },
  { name: 'different TTL', packets: [a(0), a(1, { ttl: 9 })], writes: [0, 1] },
  { name: 'different TOS', packets: [a(0), a(1, { tos: 4 })], writes: [0, 1] },
  { name: 'DF differs', packets: [a(0), a(1, { df: false })], writes: [0, 1] },
  { name: 'IPv4 options', packets: [a(0, { ipOptions: Buffer.from('01010100', 'hex') }), a(1, { ipOptions: Buffer.from('01010100', 'hex') })], writes: [0, 1] },
  { name: 'pure ACKs', packets: [a(0, { size: 0 }), a(0, { size: 0 })], writes: [0, 1] },
  { name: 'UDP passes unchanged and ends the run', packets: [a(0), udpPacket(pattern(100)), a(1)], writes: [0, 1, 2] },
  { name: 'IPv4 then IPv6', packets: [a(0), a(1, { v: 6 })], writes: [0, 1] },
  { name: 'bad checksum dropped', packets: [a(0), corrupt(a(1)), a(2)], writes: [0, 2], badChecksum: 1 },
  { name: 'bad head dropped, the rest merged', packets: [corrupt(a(0)), a(1), a(2)], writes: [[1, 2]], badChecksum: 1 },
  { name: 'lone bad segment not verified', packets: [corrupt(a(0)), udpPacket(pattern(10))], writes: [0, 1] },
  { name: 'bad retry after a good one', packets: [a(0), a(1), corrupt(a(2)), a(2)], writes: [[0, 1, 3]], badChecksum: 1 }
]

// Coalesces a case's packets (UDP merged too when udp) and checks every write.
function checkCase (t: Test, c: Case, udp: boolean): void {
  const r = coalesce(c.packets, udp)
  t.equal(r.writes.length, c.writes.length, `${c.name}: ${c.writes.length} writes`)
  t.equal(r.badChecksum, c.badChecksum ?? 0, `${c.name}: bad checksums`)
  let merged = 0
  c.writes.forEach((want, k) => {
    const w = r.writes[k]
    if (!w) return
    if (typeof want === 'number') {
      t.ok(w.subarray(0, 10).equals(ZERO_HDR) && w.subarray(10).equals(c.packets[want]), `${c.name}: write ${k} is packet ${want} unchanged`)
      return
    }
    merged += want.length - 1
    const first = c.packets[want[0]]
    const check = parse(first).proto === TCP ? checkMerged : checkMergedUdp
    const pkt = check(t, w, first[0] >> 4 as 4 | 6, parse(first).payload.length, `${c.name}: write ${k}`)
    const payloads = want.map((i) => parse(c.packets[i]).payload)
    t.ok(parse(pkt).payload.equals(Buffer.concat(payloads)), `${c.name}: write ${k} payload`)
  })
  t.equal(r.merged, merged, `${c.name}: merged count`)
}

t.test('coalescing rules', async (t) => {
  for (const c of cases) checkCase(t, c, false)
})

t.test('a merged packet stays within 64 KB', async (t) => {
  const packets = Array.from({ length: 50 }, (_, i) => seg(i, { size: 1448, seq: 1000 + i * 1448 }))
  const r = coalesce(packets)
  t.equal(r.writes.length, 2, 'two writes')
  const first = r.writes[0].length - 10
  t.ok(first <= 65535 && first + 1448 > 65535, `first write ${first} bytes, as full as it can be`)
  t.equal(r.merged, 48)
  t.ok(Buffer.concat(r.writes.map((w) => parse(w.subarray(10)).payload)).equals(Buffer.concat(packets.map((p) => parse(p).payload))), 'payloads in order')
})

t.test('Ethernet padding is trimmed', async (t) => {
  const ack = ipv4(V4.src, V4.dst, TCP, tcp(V4.src, V4.dst, Buffer.alloc(0)))
  const r = coalesce([Buffer.concat([ack, Buffer.alloc(6)])])
  t.ok(r.writes[0].subarray(10).equals(ack), 'written without the padding')
  t.throws(() => coalesce([Buffer.from('4500', 'hex')]), /not an IP packet/, 'the caller validates')
})

t.test('garbage never crashes', async (t) => {
  // Mutated headers from the network: every packet must be written, merged or dropped,
  // and nothing may be read out of bounds (run under ASan in CI).
  let rnd = 777
  const next = (n: number) => { rnd = (rnd * 1103515245 + 12345) & 0x7fffffff; return (rnd >>> 8) % n }
  // What parseIp accepts: the receive path drops anything else before coalescing.
  const isIp = (p: Buffer) => p.length >= 20 && (p[0] >> 4 === 4
    ? (p[0] & 15) >= 5 && (p[0] & 15) * 4 <= p.readUInt16BE(2) && p.readUInt16BE(2) <= p.length
    : p[0] >> 4 === 6 && p.length >= 40 && 40 + p.readUInt16BE(4) <= p.length)
  let broken = 0
  let merged = 0
  for (let round = 0; round < 2000; round++) {
    const v = next(2) ? 4 : 6
    const packets = Array.from({ length: 1 + next(12) }, (_, i) => {
      const p = Buffer.from(seg(i, { v, size: [0, 1, 999, 1000][next(4)] }))
      for (let k = next(3); k > 0; k--) p[next(Math.min(p.length, 80))] = next(256)
      if (p[0] >> 4 === 4 && p.length >= 4) p.writeUInt16BE(p.length, 2)
      return next(8) === 0 ? p.subarray(0, next(p.length)) : p
    })
    const r = coalesce(packets.filter(isIp))
    if (r.writes.length + r.merged + r.badChecksum !== packets.filter(isIp).length || r.writes.some((w) => w.length > 65535 + 10)) broken++
    merged += r.merged
  }
  t.equal(broken, 0, `${merged} merged: every packet accounted for, every write within 64 KB`)
})

// UDP merging (a TUN with USO): datagram i of a flow of `size`-byte payloads.
function dgram (i: number, f: IpFields & { v?: 4 | 6, size?: number, srcPort?: number } = {}): Buffer {
  return udpPacket(pattern(f.size ?? 64, i + 1), f)
}

function checkMergedUdp (t: Test, w: Buffer, v: 4 | 6, gsoSize: number, name: string): Buffer {
  const ipLen = v === 4 ? 20 : 40
  t.same(parseVnetHdr(w), { flags: NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: ipLen + 8, gsoSize, csumStart: ipLen, csumOffset: 6 }, `${name}: vnet header`)
  const pkt = w.subarray(10)
  const p = parse(pkt)
  t.ok(ipChecksumOk(pkt), `${name}: IP checksum`)
  t.equal(v === 4 ? pkt.readUInt16BE(2) : pkt.readUInt16BE(4) + 40, pkt.length, `${name}: IP length`)
  t.equal(p.l4.readUInt16BE(4), p.l4.length, `${name}: UDP length covers the whole train`)
  t.equal(p.l4.readUInt16BE(6), sum16(Buffer.alloc(0), pseudoSum(p.src, p.dst, UDP, p.l4.length)), `${name}: pseudo-header sum, not complemented`)
  return pkt
}

t.test('UDP datagrams of a flow merge into one GSO_UDP_L4 write that splits back into them', async (t) => {
  for (const v of [4, 6] as const) {
    // IPv4 IDs counting up, as the kernel numbers the datagrams it cuts.
    const dgrams = [0, 1, 2, 3].map((i) => dgram(i, { v, size: i === 3 ? 20 : 64, id: 0x1234 + i }))
    const r = coalesce(dgrams, true)
    t.equal(r.writes.length, 1, `IPv${v}: one write`)
    t.equal(r.merged, 3, `IPv${v}: merged count`)
    const pkt = checkMergedUdp(t, r.writes[0], v, 64, `IPv${v}`)
    t.ok(parse(pkt).payload.equals(Buffer.concat(dgrams.map((d) => parse(d).payload))), `IPv${v}: payloads in order`)
    // What the kernel does with it before the socket: cut it back at gsoSize.
    t.same(gsoSplit(r.writes[0].subarray(0, 10), pkt), dgrams, `IPv${v}: splits back into the same datagrams`)
    t.equal(coalesce(dgrams).writes.length, 4, `IPv${v}: without USO each datagram is its own write`)
  }
})

const u = (i: number, f: IpFields & { v?: 4 | 6, size?: number, srcPort?: number } = {}) => dgram(i, f)
const noChecksum = (pkt: Buffer) => { const c = Buffer.from(pkt); c.writeUInt16BE(0, 26); return c }

const udpCases: Case[] = [
  { name: 'UDP flow', packets: [u(0), u(1), u(2)], writes: [[0, 1, 2]] },
  { name: 'shorter datagram ends the run', packets: [u(0), u(1, { size: 10 }), u(2)], writes: [[0, 1], 2] },
  { name: 'larger datagram starts a new run', packets: [u(0, { size: 10 }), u(1), u(2)], writes: [0, [1, 2]] },
  { name: 'another port', packets: [u(0), u(1, { srcPort: 40001 })], writes: [0, 1] },
  { name: 'different TTL', packets: [u(0), u(1, { ttl: 9 })], writes: [0, 1] },
  { name: 'TCP then UDP', packets: [a(0), a(1), u(0), u(1)], writes: [[0, 1], [2, 3]] },
  { name: 'bad checksum dropped', packets: [u(0), corrupt(u(1)), u(2)], writes: [[0, 2]], badChecksum: 1 },
  { name: 'bad head dropped', packets: [corrupt(u(0)), u(1), u(2)], writes: [[1, 2]], badChecksum: 1 },
  { name: 'IPv4 without checksum (0) merges unverified', packets: [noChecksum(u(0)), noChecksum(corrupt(u(1)))], writes: [[0, 1]] },
  { name: 'IPv4 fragment not merged', packets: [u(0, { df: false, id: 1 }), u(1, { df: false, id: 1 })].map((p) => { p.writeUInt16BE(0x2000, 6); return p }), writes: [0, 1] }
]

t.test('UDP coalescing rules', async (t) => {
  for (const c of udpCases) checkCase(t, c, true)
})

t.test('a UDP run stops at 64 datagrams, as the kernel\'s own UDP GRO', async (t) => {
  const r = coalesce(Array.from({ length: 100 }, (_, i) => dgram(i)), true)
  t.equal(r.writes.length, 2, 'two writes')
  t.equal(parseVnetHdr(r.writes[0]).gsoType, GSO_UDP_L4)
  t.equal(parse(r.writes[0].subarray(10)).payload.length, 64 * 64, 'the first carries 64 datagrams')
  t.equal(r.merged, 98)
})
