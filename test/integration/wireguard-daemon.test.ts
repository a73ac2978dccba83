// The flatnet daemon with encryption "wireguard" against a node of flannel's wireguard backend
// (Debian's wireguard-go, src/lab/wireguard-go.ts), over a veth underlay: pods on either node
// reach each other, sealed on the packet threads and opened there; ICMP both ways with either side
// first, a sha256-checked TCP transfer both ways, the MTU exact with DF set, nothing in clear on
// the wire, hostile datagrams dropped by reason, a restart that handshakes anew, an IPv6 underlay,
// and the two finding each other through their Node annotations, as the DaemonSet and flannel do.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import { until } from '../../src/lab/until.js'
import { stopProcess } from '../../src/lab/netns.js'
import { bulkTransfer, startSink } from '../../src/lab/traffic.js'
import { wireguardGoPeers } from '../../src/lab/wireguard-go.js'
import { formatKey } from '../../src/wireguard/keys.js'
import { FLANNEL } from '../../src/control/kube-node.js'
import { pingFrom, steadyPing } from '../lib/echo.js'
import { flannelAnnotations, withFlannelNode } from '../lib/kube.js'
import { labTools, withCluster } from '../lib/lab.js'
import { readPcap } from '../lib/pcap.js'
import { ipv4Udp, vxlanFrame } from '../lib/frames.js'

labTools('ping', 'tcpdump')

const SEND_UDP = new URL('../fixtures/send-udp.mjs', import.meta.url).pathname
const MARKER = '666c61746e65742d77672d6d61726b' // "flatnet-wg-mark", ping's -p pattern (at most 16 bytes)

interface Stats { stats: { drops: Record<string, number> }, wireguard: { sessions: number, drops: Record<string, number> } }

/**
 * A flatnet node (n1, extra: its config's additions) and a wireguard-go one (n2), once their first
 * handshake is done. The daemon starts first (the lab starts nodes in order): its node-to-node
 * probes ask for a session before wireguard-go is up, and that initiation is retried after
 * Rekey-Timeout (5 s, whitepaper 6.4). Waited for, not timed.
 */
async function withWireguardGo (t: Test, o: { extra?: Record<string, unknown>, ipv6Underlay?: boolean } = {}) {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', extra: o.extra }, { kind: 'wireguard-go' }], wireguard: true, ipv6Underlay: o.ipv6Underlay })
  if (!cluster) return undefined
  const [n1, n2] = cluster.nodes
  const sock = join(cluster.dir, 'n1.sock')
  const stats = async (): Promise<Stats> => await queryControl(sock, 'stats') as unknown as Stats
  const device = cluster.wgDevice(n2)
  const peer = (): { latestHandshake: number, rx: number } | undefined => wireguardGoPeers(n2, device).get(formatKey(cluster.wgPublicKey(n1) as Buffer))
  const handshakeAt = (): number => peer()?.latestHandshake ?? 0
  t.ok(await until(async () => handshakeAt() > 0, 20_000) >= 0, 'wireguard-go and the daemon completed a handshake')
  return { cluster, n1, n2, stats, peer, handshakeAt }
}

t.test('flatnet and wireguard-go as flannel configures it: pods reach each other, encrypted', async (t) => {
  const lab = await withWireguardGo(t)
  if (!lab) return
  const { cluster, n1, n2, stats } = lab
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 3), 'n1 pod -> n2 pod: ping')
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 3), 'n2 pod -> n1 pod: ping')

  // A restarted daemon has no session, and wireguard-go is up: the pod's one ping finds no
  // session and waits (staged) while the daemon initiates and wireguard-go answers.
  await cluster.stopDaemon(n1)
  await cluster.startDaemon(n1)
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 1), 'after a restart, n1 pod -> n2 pod: a single ping answered (the packet waited for the session)')
  t.equal((await stats()).stats.drops.wg_no_session, 0, 'nothing dropped for want of a session')

  startSink(n1.pods[0].ns)
  startSink(n2.pods[0].ns)
  for (const [from, to] of [[n1, n2], [n2, n1]]) {
    const r = await bulkTransfer(from.pods[0].ns, to.pods[0].ip, 32)
    t.ok(r.intact, `${from.name} -> ${to.name}: 32 MiB over TCP, sha256 intact (${r.gbps.toFixed(2)} Gbit/s)`)
  }

  // The TUN's MTU is the underlay's (1500) less 60: a packet of exactly 1440 bytes passes with DF.
  const mtu = 1440
  const ping = async (size: number): Promise<boolean> => await n1.pods[0].ns.execAsync('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-M', 'do', '-s', String(size), '-q', n2.pods[0].ip], 15_000)
    .then(() => true, () => false)
  t.ok(await ping(mtu - 28), `ping of exactly the MTU (${mtu} bytes) with DF passes`)
  t.notOk(await ping(mtu - 28 + 1), 'one byte more does not (the pod learns the MTU)')

  // What n1 sends on the underlay during a ping with a marker: all of it to WireGuard's port,
  // none of it VXLAN, and the marker nowhere in it.
  const file = join(cluster.dir, 'wg.pcap')
  const dump = n1.ns.spawn('tcpdump', ['-i', 'eth0', '-n', '-s', '0', '-c', '200', '-w', file, 'udp', 'and', 'src', 'host', n1.underlayIP])
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await n1.pods[0].ns.execAsync('ping', ['-c', '5', '-i', '0.2', '-p', MARKER, '-q', n2.pods[0].ip], 15_000)
  await new Promise((resolve) => setTimeout(resolve, 300))
  await stopProcess(dump)
  const frames = readPcap(file)
  const dports = new Set(frames.map((f) => f.readUInt16BE(14 + 20 + 2)))
  t.ok(frames.length >= 5, `captured ${frames.length} datagrams from n1`)
  t.same([...dports], [51820], 'every datagram to WireGuard\'s port (none VXLAN)')
  t.notOk(frames.some((f) => f.toString('hex').includes(MARKER)), 'the ping\'s payload is nowhere in clear')

  // Hostile datagrams from n2's underlay address: to the WireGuard port a transport message for
  // an index no session has, and one of an unknown type; to the VXLAN port a well-formed frame
  // from n2's pod CIDR, which a node that seals n2's traffic must refuse in clear. Each dropped
  // and counted.
  const before = (await stats()).stats.drops
  const unknownIndex = Buffer.alloc(64)
  unknownIndex[0] = 4
  unknownIndex.writeUInt32LE(0xdeadbeef, 4)
  const badType = Buffer.alloc(32)
  badType[0] = 9
  for (const d of [unknownIndex, badType]) await n2.ns.execAsync(process.execPath, [SEND_UDP, n2.underlayIP, n1.underlayIP, '51820', d.toString('hex')])
  const injected = vxlanFrame({ vni: 1, dstMac: n1.vtepMAC, srcMac: n2.vtepMAC, inner: ipv4Udp(n2.pods[0].ip, n1.pods[0].ip, 9, Buffer.from('injected')) })
  await n2.ns.execAsync(process.execPath, [SEND_UDP, n2.underlayIP, n1.underlayIP, '8472', injected.toString('hex')])
  const after = (await stats()).stats.drops
  t.equal(after.unencrypted - before.unencrypted, 1, 'VXLAN in clear from a WireGuard peer\'s address: dropped as unencrypted')
  t.equal(after.wg_unknown_index - before.wg_unknown_index, 1, 'an unknown receiver index: dropped as wg_unknown_index')
  t.equal(after.wg_bad_message - before.wg_bad_message, 1, 'an unknown type: dropped as wg_bad_message')
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 2), 'and traffic goes on')

  // Another restart, wireguard-go sending first: it goes on with its old session, whose index is
  // gone; the daemon takes that as its cue to handshake (wireguard-go's own timers would give up
  // on the old session only after 15 s).
  await cluster.stopDaemon(n1)
  await cluster.startDaemon(n1)
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 3), 'after a restart: n2 pod -> n1 pod within three pings (the daemon handshakes on the unknown index)')
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 1), 'and n1 pod -> n2 pod')
  const s = await stats()
  t.ok(s.wireguard.sessions >= 1, `the new daemon made a session (${s.wireguard.sessions})`)
})

t.test('a node of flannel\'s wireguard backend through the API server: each reads the other\'s Node annotations', async (t) => {
  const lab = await withFlannelNode(t, {
    kind: 'wireguard-go',
    tag: 'wgflannel',
    flannel: (cluster, n2) => flannelAnnotations('wireguard', n2.underlayIP, { PublicKey: formatKey(cluster.wgPublicKey(n2) as Buffer), Port: 51820 }),
  })
  if (!lab) return
  const { cluster, n1, n2, annotations: a, peerRow } = lab
  // What flannel's nodes read of n1 (nodeToLease, then the wireguard backend's peer): the key
  // and endpoint the lab gave n2's wireguard-go for n1, so it is the one flannel would set.
  t.equal(a[FLANNEL.managed], 'true', 'as one of flannel\'s kube subnet manager')
  const data = JSON.parse(a[FLANNEL.data])
  t.equal(`${a[FLANNEL.ip]}:${data.Port}`, `${n1.underlayIP}:51820`, 'endpoint: public-ip and Port')
  t.equal(data.PublicKey, formatKey(cluster.wgPublicKey(n1) as Buffer), 'PublicKey: n1\'s')
  t.ok(await until(async () => (await peerRow()) !== undefined, 30_000) >= 0, 'n1 took n2 as a peer from its Node')
  t.match(await peerRow(), { source: 'kubernetes', encryption: 'wireguard', vtepMAC: undefined }, 'WireGuard only, no VTEP')
  // The first answer may wait for a handshake retry (5 s): waited for, not timed.
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 1, 10), 'n1 pod -> n2 pod: ping')
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 3), 'n2 pod -> n1 pod: ping')
})

t.test('wireguard-go first: its pod pings before flatnet ever sent, flatnet answers the handshake', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'wireguard-go' }], wireguard: true })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 1), 'n2 pod -> n1 pod: a single ping answered (wireguard-go initiates)')
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 2), 'n1 pod -> n2 pod on the same session')
})

t.test('over an IPv6 underlay: IPv4 pods, WireGuard on IPv6, 80 bytes of overhead', async (t) => {
  const lab = await withWireguardGo(t, { ipv6Underlay: true })
  if (!lab) return
  const { n1, n2, peer } = lab
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 3) && await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 3), 'pods ping each other both ways')
  startSink(n1.pods[0].ns)
  startSink(n2.pods[0].ns)
  for (const [from, to] of [[n1, n2], [n2, n1]]) {
    t.ok((await bulkTransfer(from.pods[0].ns, to.pods[0].ip, 16)).intact, `${from.name} -> ${to.name}: 16 MiB over TCP, sha256 intact`)
  }
  // 1500 less 40 (IPv6) + 8 (UDP) + 32 (WireGuard): 1420 passes with DF, 1421 does not.
  const ping = async (size: number): Promise<boolean> => await n1.pods[0].ns.execAsync('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-M', 'do', '-s', String(size), '-q', n2.pods[0].ip], 15_000)
    .then(() => true, () => false)
  t.ok(await ping(1420 - 28), 'ping of exactly the MTU (1420 bytes) with DF passes')
  t.notOk(await ping(1420 - 28 + 1), 'one byte more does not')
  t.ok((peer()?.rx ?? 0) > 16 << 20, 'wireguard-go received it all through its session with the daemon')
})

t.test('rekeyed every 5 s under traffic (wireguard.rekeyAfterSeconds): no packet lost', async (t) => {
  const lab = await withWireguardGo(t, { extra: { wireguard: { rekeyAfterSeconds: 5 } } })
  if (!lab) return
  const { n1, n2, stats } = lab
  // Pings both ways for 16 s: the daemon, whose initiation made the session, renews it every
  // 5 s while it sends; wireguard-go answers each. Packets in flight during a renewal are
  // opened with the session before (each side keeps it), so none is lost.
  const before = await stats()
  const [out, back] = await Promise.all([steadyPing(n1.pods[0], n2.pods[0].ip, 16), steadyPing(n2.pods[0], n1.pods[0].ip, 16)])
  const after = await stats()
  const made = after.wireguard.sessions - before.wireguard.sessions
  t.comment(`sessions made during the pings: ${made}; n1 -> n2 ${out[1]}/${out[0]}, n2 -> n1 ${back[1]}/${back[0]}`)
  t.ok(made >= 2, 'at least two renewals in 16 s')
  t.ok(out[0] > 0 && back[0] > 0, 'pings were sent')
  t.same([out[1], back[1]], [out[0], back[0]], 'every ping answered, both ways, across the renewals')
  for (const reason of ['wg_decrypt', 'wg_replay', 'wg_unknown_index', 'wg_expired', 'wg_no_session']) {
    t.equal((after.stats.drops[reason] ?? 0) - (before.stats.drops[reason] ?? 0), 0, `nothing dropped as ${reason}`)
  }
})

t.test('a handover keeps the session with wireguard-go: no handshake, no ping lost', async (t) => {
  const lab = await withWireguardGo(t)
  if (!lab) return
  const { cluster, n1, n2, handshakeAt } = lab
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 2), 'pods reach each other')
  const before = handshakeAt()
  // The successor seals with the counters the old daemon's threads stopped at: wireguard-go,
  // which drops a counter it has seen (its replay window), takes every ping.
  const pings = [steadyPing(n2.pods[0], n1.pods[0].ip, 4), steadyPing(n1.pods[0], n2.pods[0].ip, 4)]
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal((await cluster.handOver(n1)).code, 0, 'the old daemon handed over and exited 0')
  const [[sentIn, gotIn], [sentOut, gotOut]] = await Promise.all(pings)
  t.comment(`pings across the handover: n2 -> n1 ${gotIn}/${sentIn}, n1 -> n2 ${gotOut}/${sentOut}`)
  t.same([gotIn, gotOut], [sentIn, sentOut], 'every ping answered, both ways')
  t.equal(handshakeAt(), before, 'wireguard-go saw no new handshake')
})
