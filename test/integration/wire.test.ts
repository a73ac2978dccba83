// What flatnet puts on a real wire. With the underlay's offloads off (as on a NIC
// without tunnel offload) the kernel cannot take UDP GSO trains: flatnet must fall
// back (EIO -> one datagram per segment) and every captured frame must be valid
// VXLAN, no larger than the underlay MTU, with valid inner IP and TCP checksums.
// Bursts of small equal-size packets go out as UDP GSO trains too (one buffer per
// datagram); the kernel cuts them back into valid datagrams of the same sizes.
import t from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import { tcpThroughput, udpSmallPackets } from '../../bench/iperf.js'
import { ipChecksumOk, transportChecksumOk } from '../lib/packets.js'
import { readPcap } from '../lib/pcap.js'
import { withCluster } from '../lib/lab.js'
import { stopProcess } from '../../src/lab/netns.js'

t.test('frames on a wire without offloads: valid VXLAN, valid inner checksums, within the MTU', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  n1.ns.exec('ethtool', '-K', 'eth0', 'tx', 'off', 'gso', 'off', 'tso', 'off')
  // What n1 sends to the underlay, the first 3,000 frames from now on.
  const capture = async (name: string): Promise<{ file: string, stop: () => Promise<void> }> => {
    const file = join(cluster.dir, name)
    const dump = n1.ns.spawn('tcpdump', ['-i', 'eth0', '-n', '-s', '0', '-c', '3000', '-w', file,
      'udp', 'and', 'dst', 'port', '8472', 'and', 'src', 'host', n1.underlayIP])
    await new Promise((resolve) => setTimeout(resolve, 1000))
    return { file, stop: async () => { await new Promise((resolve) => setTimeout(resolve, 500)); await stopProcess(dump) } }
  }
  const tcpDump = await capture('tcp.pcap')
  const run = await tcpThroughput(n1.pods[0], n2.pods[0], 2, 1)
  t.ok(run.bytes > 1e6, `TCP flowed: ${run.gbps.toFixed(2)} Gbit/s`)
  await tcpDump.stop()
  // Then small UDP datagrams as fast as iperf3 sends them: the transmit loop joins
  // each run of them to one peer into a GSO train.
  const udpDump = await capture('udp.pcap')
  const before = await txStats(cluster.dir, n1.name)
  const received = Math.round((await udpSmallPackets(n1.pods[0], n2.pods[0], 1)).pps) // in 1 s
  const after = await txStats(cluster.dir, n1.name)
  t.ok(received > 1000, `${received} small UDP datagrams received`)
  const packets = after.packets - before.packets
  const joined = after.coalesced - before.coalesced
  t.ok(packets > 1000, `${packets} packets sent`)
  // Unless this kernel refused UDP GSO here (then every datagram is its own send).
  if (!cluster.log(n1).includes('UDP GSO refused')) t.ok(joined > packets / 4, `${joined} of them joined a GSO train`)
  await udpDump.stop()

  const frames = [...readPcap(tcpDump.file), ...readPcap(udpDump.file)]
  t.ok(frames.length > 200, `captured ${frames.length} frames`)
  let bad = 0; let tcp = 0; let udpSeen = 0; let biggest = 0
  for (const f of frames) {
    const ipLen = f.readUInt16BE(16) // outer IPv4 total length
    biggest = Math.max(biggest, ipLen)
    const vx = f.subarray(14 + 20 + 8)
    const inner = vx.subarray(22)
    const ok = f.readUInt16BE(12) === 0x0800 && vx[0] === 0x08 && vx.readUIntBE(4, 3) === 1 &&
      vx.subarray(8, 14).toString('hex') === n2.vtepMAC.replaceAll(':', '') &&
      vx.subarray(14, 20).toString('hex') === n1.vtepMAC.replaceAll(':', '') &&
      ipChecksumOk(inner) && (![6, 17].includes(inner[9]) || transportChecksumOk(inner.subarray(0, inner.readUInt16BE(2))))
    if (inner[9] === 6) tcp++
    if (inner[9] === 17 && inner.readUInt16BE(2) === 20 + 8 + 64) udpSeen++
    if (!ok && bad++ === 0) t.comment(`first bad frame: ${f.subarray(0, 120).toString('hex')}`)
  }
  t.equal(bad, 0, 'every frame: VXLAN I flag, VNI 1, VTEP MACs, valid inner IPv4 and TCP/UDP checksums')
  t.ok(tcp > 100, `${tcp} TCP segments checked`)
  t.ok(udpSeen > 100, `${udpSeen} small UDP datagrams checked, each its own frame`)
  t.ok(biggest <= 1500, `largest outer packet ${biggest} bytes <= underlay MTU 1500`)
  // Kernels before 5.x refuse GSO trains the device cannot checksum (EIO): flatnet then
  // falls back to one datagram per segment and says so once. Newer ones segment and
  // checksum in software. Either way the wire above was right; the fallback is logged at most once.
  t.ok(cluster.log(n1).split('UDP GSO refused').length - 1 <= 1, 'a GSO fallback, if any, is logged once')
})

async function txStats (dir: string, node: string): Promise<{ packets: number, coalesced: number }> {
  const reply = await queryControl(join(dir, `${node}.sock`), 'stats') as { stats: { tx: { packets: number, coalesced: number } } }
  return reply.stats.tx
}
