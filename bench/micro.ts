// Micro-benchmarks of the pure packet functions (native/checksum, gso, gro) through
// exports.testing. Each call repeats the native work so the N-API crossing (~100 ns)
// does not swamp a 64-byte checksum; figures are per packet of the given size.
// Run: node dist/bench/micro.js  (after `tsc`; FLATNET_ADDON picks another build)
import Benchmark from 'benchmark'
import { addon } from '../src/native.js'

const t = addon.testing
const SIZES = [64, 512, 1400, 65000]
const MSS = 1448

// Deterministic bytes; the content does not change the speed of any of these loops.
function bytes (n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 0xff
  return b
}

// An IPv4 TCP super-packet of `size` bytes as the TUN hands it over (TSO, MSS 1448).
// Checksums are left zero: gsoSplit recomputes both.
function tsoPacket (size: number): { hdr: Buffer, pkt: Buffer } {
  const pkt = bytes(size)
  pkt.fill(0, 0, 40)
  pkt[0] = 0x45
  pkt.writeUInt16BE(size, 2)
  pkt.writeUInt16BE(0x4000, 6)
  pkt[8] = 64
  pkt[9] = 6
  Buffer.from([192, 0, 2, 1, 198, 51, 100, 7]).copy(pkt, 12)
  pkt.writeUInt16BE(40000, 20)
  pkt.writeUInt16BE(80, 22)
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

  const { hdr, pkt } = tsoPacket(Math.max(size, 40))
  const segments: Buffer[] = t.gsoSplit(hdr, pkt)
  const splitRepeat = Math.max(1, Math.floor(repeat / 4))
  measure(`gsoSplit (${segments.length} seg)`, size, splitRepeat, () => t.benchGsoSplit(hdr, pkt, splitRepeat))
  // The receive side of the same flow: its segments, laid out and coalesced.
  measure(`coalesce (${segments.length} seg)`, size, splitRepeat, () => t.benchCoalesce(segments, splitRepeat))
}

const pad = (s: string | number, n: number) => String(s).padStart(n)
console.log(`${'operation'.padEnd(24)}${pad('bytes', 7)}${pad('ns/packet', 12)}${pad('GB/s', 8)}${pad('±%', 6)}`)
for (const r of rows) {
  console.log(`${r.op.padEnd(24)}${pad(r.size, 7)}${pad(r.ns.toFixed(1), 12)}${pad(r.gbps.toFixed(2), 8)}${pad(r.rme.toFixed(1), 6)}`)
}
