// Micro-benchmarks of the pure packet functions (native/vxlan, admit, checksum, gso, gro) through
// exports.testing. Each call repeats the native work so the N-API crossing (~100 ns)
// does not swamp a 64-byte checksum; figures are per packet of the given size. Then WireGuard's
// seal and open (native/wg_session) beside `openssl speed` on the same sizes.
// Run: node dist/bench/micro.js  (after `tsc`; FLATNET_TESTING_ADDON picks another build)
import Benchmark from 'benchmark'
import { execFileSync } from 'node:child_process'
import { testing } from '../test/lib/testing-addon.js'

const t = testing
const SIZES = [64, 512, 1400, 65000]

// A node with a 3-peer table, receiving from and sending to peer n2 (documentation addresses).
const MAC = Buffer.from([2, 0, 0, 0, 0, 1])
const PEER_MAC = Buffer.from([2, 0, 0, 0, 0, 2])
const TABLE = {
  local: [{ address: Buffer.from([10, 244, 1, 0]), length: 24 }],
  peers: [2, 3, 4].map((i) => ({
    name: `n${i}`,
    address: Buffer.from([192, 0, 2, i]),
    port: 8472,
    mac: Buffer.from([2, 0, 0, 0, 0, i]),
    cidrs: [{ address: Buffer.from([10, 244, i, 0]), length: 24 }],
  })),
}
/** An IPv4 UDP packet of `size` bytes from src to dst (checksums irrelevant to these loops). */
function udpPacket (size: number, src: number[], dst: number[]): Buffer {
  const p = bytes(Math.min(size, 65535))
  p.fill(0, 0, 28)
  p[0] = 0x45
  p.writeUInt16BE(p.length, 2)
  p[8] = 64
  p[9] = 17
  Buffer.from([...src, ...dst]).copy(p, 12)
  return p
}
const MSS = 1448

// Deterministic bytes; the content does not change the speed of any of these loops.
function bytes (n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 0xff
  return b
}

// Zeroes the first `headers` bytes of pkt and writes an IPv4 header (DF, TTL 64, the
// whole buffer as its length) and the ports of a flow 192.0.2.1:40000 -> 198.51.100.7.
function flowHeaders (pkt: Buffer, headers: number, proto: number, dstPort: number): Buffer {
  pkt.fill(0, 0, headers)
  pkt[0] = 0x45
  pkt.writeUInt16BE(pkt.length, 2)
  pkt.writeUInt16BE(0x4000, 6)
  pkt[8] = 64
  pkt[9] = proto
  Buffer.from([192, 0, 2, 1, 198, 51, 100, 7]).copy(pkt, 12)
  pkt.writeUInt16BE(40000, 20)
  pkt.writeUInt16BE(dstPort, 22)
  return pkt
}

// An IPv4 TCP super-packet of `size` bytes as the TUN hands it over (TSO, MSS 1448).
// Checksums are left zero: gsoSplit recomputes both.
function tsoPacket (size: number): { hdr: Buffer, pkt: Buffer } {
  const pkt = flowHeaders(bytes(size), 40, 6, 80)
  pkt.writeUInt32BE(1000, 24)
  pkt.writeUInt32BE(5000, 28)
  pkt[32] = 5 << 4
  pkt[33] = 0x10 // ACK
  pkt.writeUInt16BE(502, 34)
  const hdr = Buffer.alloc(10)
  hdr[1] = 1 // VIRTIO_NET_HDR_GSO_TCPV4
  hdr.writeUInt16LE(MSS, 4)
  return { hdr, pkt }
}

// 64 datagrams of one UDP flow, each `size` bytes with a valid checksum: what a pod's
// small-packet stream looks like at the receiving daemon. Cut by gsoSplit from one
// USO super-packet (checksum left zero: gsoSplit computes each).
function udpRun (size: number): Buffer[] {
  const payload = size - 28
  const pkt = flowHeaders(bytes(28 + 64 * payload), 28, 17, 5201)
  const hdr = Buffer.alloc(10)
  hdr[1] = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
  hdr.writeUInt16LE(payload, 4)
  return t.gsoSplit(hdr, pkt)
}

interface Row { op: string, size: number, ns: number, gbps: number, rme: number }
const rows: Row[] = []

function measure (op: string, size: number, repeat: number, fn: () => void): void {
  const b = new Benchmark(`${op} ${size}`, fn, { maxTime: 0.5 }).run()
  const ns = b.stats.mean * 1e9 / repeat
  rows.push({ op, size, ns, gbps: size / ns, rme: b.stats.rme })
}

for (const size of SIZES) {
  const buf = bytes(size)
  const repeat = Math.max(1, Math.floor((1 << 20) / size)) // about 1 MB of work per call
  measure('checksum fast', size, repeat, () => t.checksum(buf, repeat))
  measure('checksum reference', size, repeat, () => t.checksumReference(buf, repeat))
  measure('checksumCopy', size, repeat, () => t.checksumCopy(buf, repeat))

  const out = udpPacket(size, [10, 244, 1, 10], [10, 244, 2, 10])
  const perHeader = 20_000 // header work does not grow with size; enough repeats to hide the table build per call
  measure('encapsulate (route, hash, prefix)', size, perHeader, () => t.benchEncapsulate(TABLE, out, 1, MAC, perHeader))
  const prefix: Buffer = t.encapPrefix(1, MAC, PEER_MAC, 0x0800)
  const datagram = Buffer.concat([prefix, udpPacket(size, [10, 244, 2, 10], [10, 244, 1, 10])])
  measure('decapsulate (admit)', size, perHeader, () => t.benchAdmit(TABLE, Buffer.from([192, 0, 2, 2]), 1, MAC, datagram, perHeader))

  const { hdr, pkt } = tsoPacket(Math.max(size, 40))
  const segments: Buffer[] = t.gsoSplit(hdr, pkt)
  const splitRepeat = Math.max(1, Math.floor(repeat / 4))
  measure(`gsoSplit (${segments.length} seg)`, size, splitRepeat, () => t.benchGsoSplit(hdr, pkt, splitRepeat))
  // The receive side of the same flow: its segments, laid out and coalesced.
  measure(`coalesce (${segments.length} seg)`, size, splitRepeat, () => t.benchCoalesce(segments, splitRepeat))
  if (size <= 1024) { // 64 of them fit one 64 KB write
    const dgrams = udpRun(size)
    measure('coalesce UDP (64 datagrams)', size, splitRepeat, () => t.benchCoalesce(dgrams, splitRepeat))
  }
}

const pad = (s: string | number, n: number) => String(s).padStart(n)
console.log(`${'operation'.padEnd(36)}${pad('bytes', 7)}${pad('ns/packet', 12)}${pad('GB/s', 8)}${pad('±%', 6)}`)
for (const r of rows) {
  console.log(`${r.op.padEnd(36)}${pad(r.size, 7)}${pad(r.ns.toFixed(1), 12)}${pad(r.gbps.toFixed(2), 8)}${pad(r.rme.toFixed(1), 6)}`)
}

// WireGuard transport messages: the native loop seals COUNT packets, then its peer opens them,
// best of ROUNDS (the least disturbed by other work on a shared machine). `openssl speed -evp`
// streams one long message through the same AEAD, with no per-message nonce, key stream block
// for Poly1305 or tag: the bound a message-at-a-time AEAD approaches as packets grow.
const COUNT = 20_000
const ROUNDS = 7
const wgSizes = [64, 512, 1420] // 1420: a full packet at the MTU over an IPv4 underlay
console.log(`\n${'WireGuard'.padEnd(20)}${pad('bytes', 7)}${pad('seal ns', 10)}${pad('open ns', 10)}${pad('openssl ns', 12)}${pad('seal/openssl', 14)}`)
for (const size of wgSizes) {
  let best = { sealNs: Infinity, openNs: Infinity }
  for (let i = 0; i < ROUNDS; i++) {
    const r = t.wgAeadLoop(size, COUNT) as { sealNs: number, openNs: number }
    best = { sealNs: Math.min(best.sealNs, r.sealNs / COUNT), openNs: Math.min(best.openNs, r.openNs / COUNT) }
  }
  const openssl = opensslNs(size)
  console.log(`${'ChaCha20-Poly1305'.padEnd(20)}${pad(size, 7)}${pad(best.sealNs.toFixed(0), 10)}${pad(best.openNs.toFixed(0), 10)}` +
    `${pad(openssl === undefined ? '-' : openssl.toFixed(0), 12)}${pad(openssl === undefined ? '-' : `${(best.sealNs / openssl).toFixed(2)}x`, 14)}`)
}

/** ns per size bytes from `openssl speed` (its figures are thousands of bytes a second); undefined without openssl. */
function opensslNs (size: number): number | undefined {
  try {
    const out = execFileSync('openssl', ['speed', '-seconds', '2', '-evp', 'chacha20-poly1305', '-bytes', String(size)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const k = Number(out.trim().split('\n').at(-1)?.trim().split(/\s+/).at(-1)?.replace(/k$/, ''))
    return Number.isFinite(k) && k > 0 ? size / (k * 1000) * 1e9 : undefined
  } catch {
    return undefined
  }
}
