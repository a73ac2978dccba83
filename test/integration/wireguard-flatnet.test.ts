// flatnet nodes with encryption "wireguard" among themselves, on a bridge underlay: both worker
// layouts (n1 as the daemon picks, per-cpu here; n2 the pipeline) seal and open for each other;
// a node that publishes no key (n3) gets plain VXLAN from the others (a cluster mid-rollout), but
// none from n4, whose wireguard.strict drops what would go out unencrypted, counted.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import { bulkTransfer, startSink } from '../../src/lab/traffic.js'
import { pingFrom, steadyPing } from '../lib/echo.js'
import { metricsGet, sample } from '../lib/health.js'
import { labTools, withCluster } from '../lib/lab.js'
import { Handshaker } from '../../src/wireguard/handshaker.js'
import { generatePrivateKey } from '../../src/wireguard/keys.js'

labTools('ping')

const FLOOD = new URL('../fixtures/flood-udp.mjs', import.meta.url).pathname

interface Stats { stats: { drops: Record<string, number> }, info: { workers: string }, wireguard?: { sessions: number, drops: Record<string, number> } }

t.test('both layouts, a keyless node and a strict one', async (t) => {
  const cluster = await withCluster(t, {
    wireguard: true,
    nodes: [
      { kind: 'flatnet' },
      { kind: 'flatnet', extra: { workers: 'pipeline' } },
      { kind: 'flatnet', wireguard: false },
      { kind: 'flatnet', extra: { wireguard: { strict: true } } },
    ],
  })
  if (!cluster) return
  const [n1, n2, n3, n4] = cluster.nodes
  const stats = async (i: number): Promise<Stats> => await queryControl(join(cluster.dir, `n${i}.sock`), 'stats') as unknown as Stats
  t.equal((await stats(2)).info.workers, 'pipeline', 'n2 runs the pipeline')

  // Static peers know each other before their daemons run, and each daemon's node-to-node
  // probes ask for sessions as it starts: an initiation sent before its peer was up is retried
  // only after Rekey-Timeout (5 s + jitter, whitepaper 6.4), and a ping meanwhile waits for the
  // session (staged). So the first ping between two nodes is given 10 s for its answer: what
  // is asserted is that it arrives, not how soon.
  for (const [from, to] of [[n1, n2], [n2, n1], [n1, n4], [n4, n2]]) {
    t.ok(await pingFrom(from.pods[0].ns, to.pods[0].ip, 3, 10), `${from.name} -> ${to.name}: ping, encrypted`)
  }
  startSink(n1.pods[0].ns)
  startSink(n2.pods[0].ns)
  for (const [from, to] of [[n1, n2], [n2, n1]]) {
    const r = await bulkTransfer(from.pods[0].ns, to.pods[0].ip, 64)
    t.ok(r.intact, `${from.name} (${(await stats(from.index)).info.workers}) -> ${to.name}: 64 MiB over TCP, sha256 intact`)
  }
  for (const [from, to] of [[n1, n3], [n3, n2]]) {
    t.ok(await pingFrom(from.pods[0].ns, to.pods[0].ip, 2), `${from.name} -> ${to.name}: ping, plain VXLAN (n3 has no key)`)
  }
  const before = (await stats(4)).stats.drops.wg_blocked
  t.notOk(await pingFrom(n4.pods[0].ns, n3.pods[0].ip, 2), 'n4 (strict) -> n3: nothing gets through')
  t.ok((await stats(4)).stats.drops.wg_blocked - before >= 2, 'n4 counted its pings as wg_blocked')
  for (const i of [1, 2, 4]) t.ok(((await stats(i)).wireguard?.sessions ?? 0) >= 1, `n${i} made WireGuard sessions`)
  t.equal((await stats(3)).wireguard, undefined, 'n3 runs no WireGuard')
  const metrics = (await metricsGet(n1)).body
  t.ok((sample(metrics, 'flatnet_wireguard_handshakes_total') ?? 0) >= 2, 'n1\'s metrics: handshakes completed')
  t.equal(sample(metrics, 'flatnet_wireguard_peers_established'), 2, 'n1\'s metrics: sessions with n2 and n4')
  t.same(['wireguard', 'plain', 'blocked'].map((state) => sample(metrics, 'flatnet_peers_encryption', { state })), [2, 1, 0], 'n1\'s peers by state')
  t.equal(sample((await metricsGet(n3)).body, 'flatnet_wireguard_handshakes_total'), undefined, 'n3 (encryption none): no WireGuard series')

  // A handover (a DaemonSet update) on n1: the successor takes the WireGuard sockets with the
  // rest, and the sessions: keys from the old daemon's control plane, counters and replay
  // windows as its stopped threads left them. No handshake, and no ping lost either way.
  const handshakes2 = (await stats(2)).wireguard?.sessions
  const replays2 = (await stats(2)).stats.drops.wg_replay
  const pings = [steadyPing(n2.pods[0], n1.pods[0].ip, 4), steadyPing(n1.pods[0], n2.pods[0].ip, 4)]
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const { code } = await cluster.handOver(n1)
  t.equal(code, 0, 'the old daemon handed over and exited 0')
  const [[sentIn, gotIn], [sentOut, gotOut]] = await Promise.all(pings)
  t.comment(`pings across the handover: n2 -> n1 ${gotIn}/${sentIn}, n1 -> n2 ${gotOut}/${sentOut}`)
  t.same([gotIn, gotOut], [sentIn, sentOut], 'every ping answered, both ways')
  t.equal((await stats(1)).wireguard?.sessions, 0, 'the successor made no handshake: it goes on with the sessions handed to it')
  t.equal((await stats(2)).wireguard?.sessions, handshakes2, 'nor did n2')
  t.equal((await stats(2)).stats.drops.wg_replay, replays2, 'and n2 saw no counter twice: the successor went on from the old daemon\'s')
  const drops = (await stats(1)).stats.drops
  t.same(['wg_unknown_index', 'wg_replay', 'wg_decrypt', 'wg_no_session'].map((r) => drops[r]), [0, 0, 0, 0], 'the successor dropped nothing for want of a session, a replay or a bad tag')
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 2) && await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 2), 'and both ways work after it')
})

t.test('both sides initiate at once', async (t) => {
  // No node-to-node probes: nothing asks for a session until the two pings below, sent
  // together. When both daemons' 20 ms polls see their ping before the other's initiation
  // arrives (not every run), both initiate: each answers the other's initiation
  // and takes the response to its own, and both sessions stand (whitepaper 5.4.6). Otherwise
  // one initiation finds the other side's staged ping and answers it. Either way, both answered.
  const cluster = await withCluster(t, {
    wireguard: true,
    nodes: [{ kind: 'flatnet', extra: { peerProbes: false } }, { kind: 'flatnet', extra: { peerProbes: false } }],
  })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const stats = async (i: number): Promise<Stats> => await queryControl(join(cluster.dir, `n${i}.sock`), 'stats') as unknown as Stats
  t.equal((await stats(1)).wireguard?.sessions, 0, 'no session before the pings')
  const [a, b] = await Promise.all([pingFrom(n1.pods[0].ns, n2.pods[0].ip, 1, 10), pingFrom(n2.pods[0].ns, n1.pods[0].ip, 1, 10)])
  t.ok(a && b, 'a single ping each way, sent together: both answered')
  const sessions = [(await stats(1)).wireguard?.sessions ?? 0, (await stats(2)).wireguard?.sessions ?? 0]
  t.comment(`sessions made: n1 ${sessions[0]}, n2 ${sessions[1]} (2 each when both initiations crossed)`)
  t.ok(sessions[0] >= 1 && sessions[1] >= 1, 'both made sessions')
  const [c, d] = await Promise.all([steadyPing(n1.pods[0], n2.pods[0].ip, 2), steadyPing(n2.pods[0], n1.pods[0].ip, 2)])
  t.comment(`then at 20/s: n1 -> n2 ${c[1]}/${c[0]}, n2 -> n1 ${d[1]}/${d[0]}`)
  t.ok(c[1] > 0 && d[1] > 0 && await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 2) && await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 2), 'and traffic goes on both ways')
})

t.test('a handshake flood from one address does not keep a peer\'s handshake out', async (t) => {
  // Two nodes on a bridge underlay, which the flooding host joins; no probes, so n2's handshake
  // with n1 starts only with the ping below, in the middle of the flood.
  const cluster = await withCluster(t, {
    wireguard: true,
    underlay: 'bridge',
    nodes: [{ kind: 'flatnet', extra: { peerProbes: false } }, { kind: 'flatnet', extra: { peerProbes: false } }],
  })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const stats = async (i: number): Promise<Stats> => await queryControl(join(cluster.dir, `n${i}.sock`), 'stats') as unknown as Stats
  const floodAddress = '192.168.77.200'
  const flooder = cluster.attachToUnderlay('fl', floodAddress)
  // Initiations with a valid mac1 (n1's public key is in every peer record: anyone may have it)
  // from a key n1 does not know: each passes the packet threads' checks to the control plane.
  const h = new Handshaker(generatePrivateKey())
  const target = h.addPeer({ publicKey: cluster.wgPublicKey(n1) as Buffer })
  const file = join(cluster.dir, 'flood.hex')
  writeFileSync(file, Array.from({ length: 16 }, () => (h.initiate(target) as Buffer).toString('hex')).join('\n'))
  const flood = flooder.execAsync(process.execPath, [FLOOD, floodAddress, n1.underlayIP, '51820', '15', file], 60_000)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  // n1 is under load (whitepaper 5.3): n2's first initiation gets a cookie reply, its retry
  // after Rekey-Timeout (5 s) carries mac2 and is taken. The flood may hold 16 places of the
  // packet threads' queue, no more: n2's messages find room (without that bound the flood
  // refills the queue as soon as each poll empties it, and they are dropped as wg_backlog).
  t.ok(await pingFrom(n2.pods[0].ns, n1.pods[0].ip, 1, 12), 'during the flood, n2 pod -> n1 pod: answered (n2 handshaked through it)')
  const sent = Number((await flood).trim())
  const s = await stats(1)
  t.comment(`flood: ${sent} initiations in 15 s; n1 dropped ${s.stats.drops.wg_backlog} in the packet threads (wg_backlog), ${JSON.stringify(s.wireguard?.drops)} in the control plane`)
  t.ok(sent > 10_000, 'the flood was a flood')
  t.ok((s.wireguard?.drops.rate ?? 0) > 0, 'the control plane rate-limited the flooding address')
  t.ok(s.stats.drops.wg_backlog > sent / 2, 'most of the flood went no further than the packet threads (wg_backlog)')
  t.ok(await pingFrom(n1.pods[0].ns, n2.pods[0].ip, 2), 'and n1 pod -> n2 pod after it')
})
