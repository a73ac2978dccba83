// What flatnet puts on a real wire. With the underlay's offloads off (as on a NIC
// without tunnel offload) the kernel cannot take UDP GSO trains: flatnet must fall
// back (EIO -> one datagram per segment) and every captured frame must be valid
// VXLAN, no larger than the underlay MTU, with valid inner IP and TCP checksums.
// Bursts of small equal-size packets go out as UDP GSO trains too (one buffer per
// datagram); the kernel cuts them back into valid datagrams of the same sizes.
// On receive, where the TUN takes USO, a run of them becomes one GSO_UDP_L4 write
// that the kernel cuts back before the pod's socket: every datagram arrives intact.
import t from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import { tcpThroughput, udpSmallPackets } from '../../bench/iperf.js'
import { ipChecksumOk, transportChecksumOk } from '../lib/packets.js'
import { readPcap } from '../lib/pcap.js'
import { labTools, withCluster } from '../lib/lab.js'
import { stopProcess } from '../../src/lab/netns.js'

labTools('iperf3', 'tcpdump', 'ethtool')

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

t.test('small UDP datagrams merged into one TUN write arrive intact and in order', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const total = 4000
  // Datagram i: its number, then 60 bytes that depend on it. Sent in bursts of 100 so
  // that runs reach the receiving daemon together; a slow JavaScript receiver may
  // still drop some at its socket, which is UDP, not flatnet.
  const body = 'const f = (i) => { const b = Buffer.alloc(64); b.writeUInt32BE(i); for (let k = 4; k < 64; k++) b[k] = (i * 7 + k) & 255; return b };'
  const receiver = `${body} const s = require('dgram').createSocket({ type: 'udp4', recvBufferSize: 4 << 20 }); let got = 0, bad = 0, order = 0, last = -1, idle;
    const done = () => { console.log(JSON.stringify({ got, bad, order })); process.exit(0) };
    s.on('message', (m) => { const i = m.length === 64 ? m.readUInt32BE(0) : -1; if (i < 0 || !m.equals(f(i))) bad++; else { got++; if (i < last) order++; last = i }
      clearTimeout(idle); idle = setTimeout(done, 1000) });
    s.bind(7000, () => console.log('bound')); setTimeout(done, 20000)`
  const sender = `${body} const s = require('dgram').createSocket('udp4'); let i = 0;
    const burst = () => { for (let k = 0; k < 100 && i < ${total}; k++) s.send(f(i++), 7000, '${n2.pods[0].ip}');
      if (i < ${total}) setTimeout(burst, 10); else setTimeout(() => s.close(), 500) }; burst()`
  const before = await workerStats(cluster.dir, n2.name)
  const received = n2.pods[0].ns.execAsync(process.execPath, ['-e', receiver], 30_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  await n1.pods[0].ns.execAsync(process.execPath, ['-e', sender], 30_000)
  const r = JSON.parse((await received).trim().split('\n').pop() as string) as { got: number, bad: number, order: number }
  const after = await workerStats(cluster.dir, n2.name)
  t.equal(r.bad, 0, 'no datagram altered')
  t.equal(r.order, 0, 'none out of order')
  t.ok(r.got > total * 0.9, `${r.got} of ${total} datagrams received`)
  const merged = after.rx.coalesced - before.rx.coalesced
  if (after.info.tunUso) t.ok(merged > r.got / 2, `${merged} of them merged into an earlier one's TUN write`)
  else t.equal(merged, 0, 'this kernel\'s TUN has no USO: every datagram is its own write')
})

interface Worker { packets: number, coalesced: number }
async function workerStats (dir: string, node: string): Promise<{ tx: Worker, rx: Worker, info: { tunUso: boolean } }> {
  const reply = await queryControl(join(dir, `${node}.sock`), 'stats') as { stats: { tx: Worker, rx: Worker }, info: { tunUso: boolean } }
  return { ...reply.stats, info: reply.info }
}

async function txStats (dir: string, node: string): Promise<Worker> {
  return (await workerStats(dir, node)).tx
}
