// Segmentation of TSO/USO super-packets and NEEDS_CSUM completion (native/gso.cc),
// every output checked with the slow reference checksum.
import t from 'tap'
import { testing } from '../lib/testing-addon.js'
import {
  ACK, CWR, FIN, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_UDP_L4, NEEDS_CSUM, PSH, TCP, UDP, V4, V6,
  internetChecksum, ipChecksumOk, ipv4, ipv6, parse, pattern, pseudoSum, sum16, tcp, tcpPacket, transportChecksumOk,
  udpPacket, vnetHdr
} from '../lib/packets.js'

const gsoSplit: (h: Buffer, p: Buffer) => Buffer[] = testing.gsoSplit

// RFC 7323 timestamps (NOP NOP TS) as Linux sends on every segment: a 32-byte TCP header.
const TS_OPTION = Buffer.from('0101080a0001e2400000abcd', 'hex')
const MSS = 1448

function tso (v: 4 | 6, payloadLen: number, flags: number, extra: object = {}): { pkt: Buffer, hdr: Buffer, payload: Buffer } {
  const payload = pattern(payloadLen, v)
  const pkt = tcpPacket(payload, { v, flags, seq: 0xfffff000, id: 0xfffe, options: TS_OPTION, ...extra })
  const ipLen = v === 4 ? 20 : 40
  const hdr = vnetHdr({ flags: NEEDS_CSUM, gsoType: v === 4 ? GSO_TCPV4 : GSO_TCPV6, hdrLen: ipLen + 32, gsoSize: MSS, csumStart: ipLen, csumOffset: 16 })
  return { pkt, hdr, payload }
}

t.test('TSO super-packets of 64 KB', async (t) => {
  for (const v of [4, 6] as const) {
    const { pkt, hdr, payload } = tso(v, 65535 - 40 - 32, ACK | PSH | FIN | CWR)
    const segs = gsoSplit(hdr, pkt)
    const n = Math.ceil(payload.length / MSS)
    t.equal(segs.length, n, `IPv${v}: ${n} segments`)
    let bad = 0
    segs.forEach((s, i) => {
      const p = parse(s)
      const last = i === n - 1
      const want = last ? payload.length - MSS * (n - 1) : MSS
      const flags = (ACK | (i === 0 ? CWR : 0) | (last ? PSH | FIN : 0))
      const problems = [
        !ipChecksumOk(s) && 'IP checksum',
        !transportChecksumOk(s) && 'TCP checksum',
        p.payload.length !== want && `size ${p.payload.length}`,
        p.l4.readUInt32BE(4) !== ((0xfffff000 + i * MSS) >>> 0) && 'seq',
        p.l4[13] !== flags && `flags ${p.l4[13].toString(16)}`,
        v === 4 && s.readUInt16BE(2) !== s.length && 'total length',
        v === 4 && s.readUInt16BE(4) !== ((0xfffe + i) & 0xffff) && 'IP id',
        v === 6 && s.readUInt16BE(4) !== s.length - 40 && 'payload length',
        !p.l4.subarray(20, 32).equals(TS_OPTION) && 'options'
      ].filter(Boolean)
      if (problems.length) { bad++; t.fail(`IPv${v} segment ${i}: ${problems.join(', ')}`) }
    })
    t.equal(bad, 0, `IPv${v}: every segment valid`)
    t.ok(Buffer.concat(segs.map((s) => parse(s).payload)).equals(payload), `IPv${v}: payload reassembles`)
  }
})

t.test('TSO variants', async (t) => {
  const { pkt, hdr, payload } = tso(4, 10000, ACK)
  const ecn = Buffer.from(hdr)
  ecn[1] |= GSO_ECN
  t.equal(gsoSplit(ecn, pkt).length, Math.ceil(10000 / MSS), 'ECN bit masked')
  const zeroLen = Buffer.from(pkt)
  zeroLen.writeUInt16BE(0, 2)
  t.equal(gsoSplit(hdr, zeroLen).length, Math.ceil(10000 / MSS), 'IPv4 total length 0 (BIG TCP) accepted')
  const lying = vnetHdr({ gsoType: GSO_TCPV4, hdrLen: 7, gsoSize: MSS, csumStart: 3, csumOffset: 999 })
  t.same(gsoSplit(lying, pkt), gsoSplit(hdr, pkt), 'hdrLen and csum offsets are not trusted for TSO')
  const one = gsoSplit(vnetHdr({ gsoType: GSO_TCPV4, gsoSize: 20000 }), pkt)
  t.equal(one.length, 1, 'gsoSize beyond the payload: one segment')
  t.ok(transportChecksumOk(one[0]) && parse(one[0]).payload.equals(payload), 'one segment valid')
  t.equal(gsoSplit(vnetHdr({ gsoType: GSO_TCPV4, gsoSize: 1000 }), tcpPacket(pattern(3000))).length, 3, 'payload an exact multiple')
  const ipOpts = ipv4(V4.src, V4.dst, TCP, tcp(V4.src, V4.dst, pattern(3000)), { ipOptions: Buffer.from('01010100', 'hex') })
  const withOpts = gsoSplit(vnetHdr({ gsoType: GSO_TCPV4, gsoSize: 1000 }), ipOpts)
  t.ok(withOpts.every((s) => ipChecksumOk(s) && transportChecksumOk(s) && parse(s).ipLen === 24), 'IPv4 options copied to every segment')
})

t.test('USO super-packets', async (t) => {
  for (const v of [4, 6] as const) {
    const payload = pattern(8000, 9)
    const pkt = udpPacket(payload, { v })
    const segs = gsoSplit(vnetHdr({ flags: NEEDS_CSUM, gsoType: GSO_UDP_L4, gsoSize: 1200, csumStart: v === 4 ? 20 : 40, csumOffset: 6 }), pkt)
    t.equal(segs.length, 7, `IPv${v}: 7 segments`)
    t.ok(segs.every((s) => ipChecksumOk(s) && transportChecksumOk(s)), `IPv${v}: checksums valid`)
    t.same(segs.map((s) => parse(s).l4.readUInt16BE(4)), [...Array(6).fill(1208), 8000 - 6 * 1200 + 8], `IPv${v}: UDP lengths`)
    t.ok(Buffer.concat(segs.map((s) => parse(s).payload)).equals(payload), `IPv${v}: payload reassembles`)
  }
  // Choose the last payload word so the checksum comes out 0, which UDP must send as ffff.
  const payload = Buffer.alloc(100, 7).fill(0, 98)
  const base = udpPacket(payload)
  const p = parse(base)
  p.l4.writeUInt16BE(0, 6)
  payload.writeUInt16BE(~sum16(p.l4, pseudoSum(p.src, p.dst, UDP, p.l4.length)) & 0xffff, 98)
  const zero = udpPacket(payload)
  const [seg] = gsoSplit(vnetHdr({ gsoType: GSO_UDP_L4, gsoSize: 1200 }), zero)
  t.equal(parse(seg).l4.readUInt16BE(6), 0xffff, 'checksum 0 sent as ffff (RFC 768)')
  t.ok(transportChecksumOk(seg), 'and still verifies')
})

t.test('GSO_NONE', async (t) => {
  for (const [name, pkt, field] of [['TCPv4', tcpPacket(pattern(777)), 16], ['TCPv6', tcpPacket(pattern(777), { v: 6 }), 16], ['UDPv4', udpPacket(pattern(333)), 6], ['UDPv6', udpPacket(pattern(333), { v: 6 }), 6]] as const) {
    const p = parse(pkt)
    // What the kernel hands over with NEEDS_CSUM: the pseudo-header sum in the field.
    const partial = Buffer.from(pkt)
    partial.writeUInt16BE(sum16(Buffer.alloc(0), pseudoSum(p.src, p.dst, p.proto, p.l4.length)), p.ipLen + field)
    const hdr = vnetHdr({ flags: NEEDS_CSUM, csumStart: p.ipLen, csumOffset: field })
    t.same(gsoSplit(hdr, partial), [pkt], `${name}: NEEDS_CSUM completed`)
    t.same(gsoSplit(vnetHdr(), partial), [partial], `${name}: no flag, copied unchanged`)
  }
  const odd = Buffer.from('45000015', 'hex')
  t.equal(gsoSplit(vnetHdr({ gsoType: GSO_NONE, flags: NEEDS_CSUM, csumStart: 0, csumOffset: 2 }), odd)[0].readUInt16BE(2), internetChecksum(odd), 'any offsets inside the packet')
})

t.test('malformed and unsupported inputs are rejected', async (t) => {
  const good = tso(4, 5000, ACK).pkt
  const good6 = tso(6, 5000, ACK).pkt
  const tso4 = vnetHdr({ gsoType: GSO_TCPV4, gsoSize: MSS })
  const tso6 = vnetHdr({ gsoType: GSO_TCPV6, gsoSize: MSS })
  const edit = (b: Buffer, f: (c: Buffer) => void) => { const c = Buffer.from(b); f(c); return c }
  const cases: Array<[string, Buffer, Buffer, RegExp]> = [
    ['gsoSize 0', vnetHdr({ gsoType: GSO_TCPV4 }), good, /malformed/],
    ['empty packet', tso4, Buffer.alloc(0), /malformed/],
    ['truncated IPv4 header', tso4, good.subarray(0, 12), /malformed/],
    ['truncated TCP header', tso4, edit(good.subarray(0, 30), (c) => c.writeUInt16BE(30, 2)), /malformed/],
    ['TCP options past the end', tso4, edit(good.subarray(0, 48), (c) => c.writeUInt16BE(48, 2)), /malformed/],
    ['TCP data offset < 5', tso4, edit(good, (c) => { c[32] = 0x40 }), /malformed/],
    ['IHL < 5', tso4, edit(good, (c) => { c[0] = 0x44 }), /malformed/],
    ['IHL past the end', tso4, edit(good.subarray(0, 40), (c) => { c[0] = 0x4f; c.writeUInt16BE(40, 2) }), /malformed/],
    ['IPv4 total length too long', tso4, edit(good, (c) => c.writeUInt16BE(c.length + 1, 2)), /malformed/],
    ['IPv4 total length too short', tso4, edit(good, (c) => c.writeUInt16BE(100, 2)), /malformed/],
    ['IPv6 payload length wrong', tso6, edit(good6, (c) => c.writeUInt16BE(100, 4)), /malformed/],
    ['IPv4 fragment', tso4, edit(good, (c) => c.writeUInt16BE(0x2000, 6)), /malformed/],
    ['version 5', tso4, edit(good, (c) => { c[0] = 0x55 }), /malformed/],
    ['TCPV4 on an IPv6 packet', tso4, good6, /malformed/],
    ['TCPV6 on an IPv4 packet', tso6, good, /malformed/],
    ['TCPV4 on UDP', tso4, udpPacket(pattern(3000)), /malformed/],
    ['UDP_L4 on TCP', vnetHdr({ gsoType: GSO_UDP_L4, gsoSize: 1000 }), good, /malformed/],
    ['headers + gsoSize over 64 KB', vnetHdr({ gsoType: GSO_TCPV4, gsoSize: 65535 }), tso(4, 70000, ACK).pkt, /malformed/],
    ['legacy UFO', vnetHdr({ gsoType: GSO_UDP, gsoSize: 1000 }), udpPacket(pattern(3000)), /unsupported/],
    ['unknown gso type', vnetHdr({ gsoType: 0x42, gsoSize: 1000 }), good, /unsupported/],
    ['IPv6 extension header', tso6, ipv6(V6.src, V6.dst, 0, Buffer.alloc(100)), /unsupported/],
    ['1 byte segments', vnetHdr({ gsoType: GSO_TCPV4, gsoSize: 1 }), good, /tooManySegments/],
    ['NEEDS_CSUM field past the end', vnetHdr({ flags: NEEDS_CSUM, csumStart: 20, csumOffset: 6000 }), good, /malformed/],
    ['NEEDS_CSUM field straddles the end', vnetHdr({ flags: NEEDS_CSUM, csumStart: good.length - 1, csumOffset: 0 }), good, /malformed/],
    ['NEEDS_CSUM start past the end', vnetHdr({ flags: NEEDS_CSUM, csumStart: 65535, csumOffset: 65535 }), good, /malformed/],
    ['header too short', Buffer.alloc(9), good, /vnet header Buffer/]
  ]
  for (const [name, hdr, pkt, err] of cases) t.throws(() => gsoSplit(hdr, pkt), { message: err }, name)
})

t.test('garbage never crashes', async (t) => {
  // Random headers over random bytes and over mutated valid packets; run under ASan in CI.
  const valid = [tso(4, 4000, ACK).pkt, tso(6, 4000, ACK | PSH).pkt, udpPacket(pattern(3000)), udpPacket(pattern(3000), { v: 6 })]
  const names = /^gsoSplit: (malformed|unsupported|tooManySegments|noRoom)$/
  let rnd = 12345
  const next = (n: number) => { rnd = (rnd * 1103515245 + 12345) & 0x7fffffff; return (rnd >>> 8) % n }
  let ok = 0; let rejected = 0; let unexpected = 0
  for (let i = 0; i < 20000; i++) {
    const base = valid[next(valid.length)]
    let pkt: Buffer
    if (i % 3 === 0) {
      pkt = pattern(next(200), i)
      if (pkt.length) pkt[0] = next(2) ? 0x45 : 0x60
    } else {
      pkt = Buffer.from(base.subarray(0, next(4) === 0 ? next(base.length + 1) : base.length))
      for (let k = next(4); k > 0 && pkt.length; k--) pkt[next(Math.min(pkt.length, 80))] = next(256)
    }
    const hdr = vnetHdr({
      flags: next(2),
      gsoType: [GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_UDP, next(256)][next(6)] | (next(4) === 0 ? GSO_ECN : 0),
      hdrLen: next(65536),
      gsoSize: [0, 1, 536, MSS, 65535, next(65536)][next(6)],
      csumStart: next(2) ? next(100) : next(65536),
      csumOffset: next(2) ? next(20) : next(65536)
    })
    try {
      const segs = gsoSplit(hdr, pkt)
      ok++
      if (!Array.isArray(segs)) unexpected++
    } catch (e) {
      rejected++
      if (!names.test((e as Error).message)) { unexpected++; t.fail(`unexpected error ${(e as Error).message}`) }
    }
  }
  t.equal(unexpected, 0, `${ok} split, ${rejected} rejected`)
})
