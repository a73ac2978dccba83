// Reads classic libpcap files (tcpdump -w): enough to check what went on the wire.
import { readFileSync } from 'node:fs'

/** The captured frames (link type Ethernet), each as captured (snaplen permitting). */
export function readPcap (file: string): Buffer[] {
  const b = readFileSync(file)
  if (b.length < 24) return []
  const magic = b.readUInt32LE(0)
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${file}: not a pcap file`)
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
  if (u32(20) !== 1) throw new Error(`${file}: link type ${u32(20)}, expected Ethernet (1)`)
  const frames: Buffer[] = []
  for (let o = 24; o + 16 <= b.length;) {
    const caplen = u32(o + 8)
    frames.push(b.subarray(o + 16, o + 16 + caplen))
    o += 16 + caplen
  }
  return frames
}
