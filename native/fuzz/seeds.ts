// Writes the checked-in seed corpus (native/fuzz/corpus/<target>/) from the test
// packet builders, so the fuzzer starts from valid frames and mutates from there.
//   node --loader @isaacs/ts-node-temp-fork-for-pr-2009/esm native/fuzz/seeds.ts (tap's ts-node)
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  ACK, FIN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, PSH, TCP, UDP, addr, ip, pattern, tcp, udp, vnetHdr
} from '../../test/lib/packets.js'

const dir = fileURLToPath(new URL('./corpus/', import.meta.url))

function u16 (n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}

function write (target: string, seeds: Record<string, Buffer>): void {
  rmSync(dir + target, { recursive: true, force: true })
  mkdirSync(dir + target, { recursive: true })
  for (const [name, bytes] of Object.entries(seeds)) writeFileSync(`${dir}${target}/${name}`, bytes)
}

const TS = Buffer.from('0101080a0001e2400000abcd', 'hex') // NOP NOP timestamps: Linux's 32-byte TCP header

function tcpSeg (v: 4 | 6, seq: number, len: number, flags = ACK, src = v === 4 ? '10.244.2.10' : 'fd00:2::10', dst = v === 4 ? '10.244.1.10' : 'fd00:1::10'): Buffer {
  const s = addr(src)
  const d = addr(dst)
  return ip(s, d, TCP, tcp(s, d, pattern(len, seq), { seq, flags, options: TS }))
}

function udpPkt (v: 4 | 6, len: number): Buffer {
  const s = addr(v === 4 ? '10.244.2.10' : 'fd00:2::10')
  const d = addr(v === 4 ? '10.244.1.10' : 'fd00:1::10')
  return ip(s, d, UDP, udp(s, d, 40000, 53, pattern(len)))
}

// VXLAN (I flag, VNI 1) + Ethernet to this VTEP (02:00:00:00:00:01) from n2.
function frame (inner: Buffer, ethType = inner[0] >> 4 === 4 ? 0x0800 : 0x86dd): Buffer {
  const h = Buffer.from('08000000000001000200000000010200000000020800', 'hex')
  h.writeUInt16BE(ethType, 20)
  return Buffer.concat([h, inner])
}

// receive: [gsoSize][sender 0 = n2][message]
const train = [1000, 2000, 3000].map((seq, i) => frame(tcpSeg(4, seq, 1000, i === 2 ? ACK | PSH : ACK)))
write('receive', {
  'tcp4-one': Buffer.concat([u16(0), Buffer.from([0]), frame(tcpSeg(4, 1, 100))]),
  'tcp4-gro-train': Buffer.concat([u16(train[0].length), Buffer.from([0]), ...train]),
  'tcp6-one': Buffer.concat([u16(0), Buffer.from([0]), frame(tcpSeg(6, 7, 500))]),
  udp4: Buffer.concat([u16(0), Buffer.from([0]), frame(udpPkt(4, 64))]),
  'udp6-from-v6-peer': Buffer.concat([u16(0), Buffer.from([1]), frame(udpPkt(6, 64))]),
})

// gso: [vnet header][outCap selector 0 = the worker's][IP packet]
const v4big = tcpSeg(4, 100, 5000, ACK | PSH | FIN, '192.0.2.1', '198.51.100.7')
const v6big = tcpSeg(6, 100, 5000, ACK, '2001:db8::1', '2001:db8:1::2')
const u4big = udpPkt(4, 3000)
const zero = Buffer.from([0])
write('gso', {
  tso4: Buffer.concat([vnetHdr({ flags: NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 }), zero, v4big]),
  tso6: Buffer.concat([vnetHdr({ flags: NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 72, gsoSize: 1000, csumStart: 40, csumOffset: 16 }), zero, v6big]),
  uso4: Buffer.concat([vnetHdr({ flags: NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: 28, gsoSize: 1200, csumStart: 20, csumOffset: 6 }), zero, u4big]),
  csum: Buffer.concat([vnetHdr({ flags: NEEDS_CSUM, gsoType: GSO_NONE, csumStart: 20, csumOffset: 16 }), zero, tcpSeg(4, 1, 300)]),
})

// gro: records [length][packet]; 0x8000 in the length flushes first.
const rec = (p: Buffer, flush = false): Buffer => Buffer.concat([u16(p.length | (flush ? 0x8000 : 0)), p])
write('gro', {
  'tcp4-run': Buffer.concat([1, 1001, 2001, 3001].map((seq, i) => rec(tcpSeg(4, seq, 1000, i === 3 ? ACK | PSH : ACK)))),
  'tcp6-run-short-last': Buffer.concat([1, 1001, 2001].map((seq, i) => rec(tcpSeg(6, seq, i === 2 ? 10 : 1000)))),
  'mixed-flush': Buffer.concat([rec(tcpSeg(4, 1, 500)), rec(udpPkt(4, 30)), rec(tcpSeg(4, 501, 500), true), rec(tcpSeg(4, 1001, 500))]),
  // UDP runs: merged when the target runs with UDP merging on (a TUN with USO).
  'udp4-run-short-last': Buffer.concat([64, 64, 64, 20].map((len) => rec(udpPkt(4, len)))),
  'udp6-run': Buffer.concat([64, 64, 64].map((len) => rec(udpPkt(6, len)))),
})
// wg: [mode][counter skip][bytes]; mode 1: bytes are a packet node n2 seals (valid, spoofed,
// relayed), mode 0: a datagram as it arrives (handshake sizes, a transport header).
const wgSealed = (p: Buffer, skip = 0): Buffer => Buffer.concat([Buffer.from([1, skip]), p])
const wgRaw = (type: number, length: number): Buffer => { const b = Buffer.alloc(length + 2); b[2] = type; b[6] = 7; return b }
write('wg', {
  tcp4: wgSealed(tcpSeg(4, 1, 300)),
  tcp6: wgSealed(tcpSeg(6, 1, 300)),
  'udp4-reordered': wgSealed(udpPkt(4, 64), 3),
  spoofed: wgSealed(tcpSeg(4, 1, 100, ACK, '10.244.3.10')),
  relayed: wgSealed(tcpSeg(4, 1, 100, ACK, '10.244.2.10', '10.244.3.10')),
  keepalive: Buffer.from([1, 0]),
  initiation: wgRaw(1, 148),
  response: wgRaw(2, 92),
  'cookie-reply': wgRaw(3, 64),
  transport: wgRaw(4, 64),
})
console.log(`seeds written to ${dir}`)
