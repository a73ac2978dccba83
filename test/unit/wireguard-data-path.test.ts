// The glue between the peer table, the handshakes and the data path (src/wireguard/data-path.ts),
// with the addon's WireGuard calls played by two fakes wired back to back: what one sends from
// the WireGuard port, the other's next poll hands over. A packet wanting a session starts a
// handshake; both ends install the session with each other's keys; the initiator confirms it with
// a keepalive; a key withdrawn retires the sessions.
import t, { type Test } from 'tap'
import type { PeerEntry } from '../../src/peer-table.js'
import { parseAddress } from '../../src/net/cidr.js'
import { WG_DATA_SENT, WG_WANTS_SESSION, type NativeWgSession, type WgPoll } from '../../src/native.js'
import { WireGuardDataPath } from '../../src/wireguard/data-path.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

class FakePort {
  installed: Array<[string, NativeWgSession]> = []
  retired: number[] = []
  keepalives: string[] = []
  sent: Array<{ to: string, data: Buffer }> = []
  inbox: WgPoll['handshakes'] = []
  activity: WgPoll['activity'] = []
  peer?: FakePort
  constructor (readonly address: string) {}
  wgInstall = (peer: string, s: NativeWgSession): boolean => { this.installed.push([peer, s]); return true }
  wgRetire = (i: number): void => { this.retired.push(i) }
  wgKeepalive = (peer: string): boolean => { this.keepalives.push(peer); return true }
  wgSend = (address: Buffer, port: number, data: Buffer): boolean => {
    this.sent.push({ to: `${[...address].join('.')}:${port}`, data })
    this.peer?.inbox.push({ data, address: (parseAddress(this.address) as { bytes: Buffer }).bytes, port: 51820 })
    return true
  }

  handed: Array<[string, NativeWgSession]> = []
  // What the baton applies: every handed session unless told otherwise.
  applies = (s: NativeWgSession): boolean => true
  wgHand = (peer: string, s: NativeWgSession): boolean => { this.handed.push([peer, s]); return true }
  wgHanded = (): number[] => this.handed.filter(([, s]) => this.applies(s)).map(([, s]) => s.localIndex)

  wgPoll = (): WgPoll => {
    const out = { handshakes: this.inbox, activity: this.activity }
    this.inbox = []
    this.activity = []
    return out
  }
}

class FakeTable {
  private listener?: (changed: PeerEntry[], removed: string[], rekeyed: PeerEntry[]) => void
  constructor (public peers: PeerEntry[]) {}
  list = (): PeerEntry[] => this.peers
  onChange = (fn: (changed: PeerEntry[], removed: string[], rekeyed: PeerEntry[]) => void): void => { this.listener = fn }
  encryptionOf = (p: PeerEntry): 'wireguard' | 'plain' => p.wgKey ? 'wireguard' : 'plain'
  change (changed: PeerEntry[], removed: string[] = []): void { this.listener?.(changed, removed, []) }
}

const entry = (name: string, address: string, key?: Buffer): PeerEntry => {
  const e: PeerEntry = { nodeName: name, podCIDRs: [], address: parseAddress(address) as PeerEntry['address'], port: 8472, vni: 1, vtepMAC: Buffer.alloc(6), version: 1, source: 'static', since: 0, restored: false }
  if (key) e.wgKey = key
  return e
}

/** a and b, each a data path on a fake port, started, each the other's peer. */
function twoDataPaths (t: Test) {
  const [ka, kb] = [generatePrivateKey(), generatePrivateKey()]
  const pa = new FakePort('192.0.2.1')
  const pb = new FakePort('192.0.2.2')
  pa.peer = pb
  pb.peer = pa
  const ta = new FakeTable([entry('b', '192.0.2.2', publicKeyOf(kb))])
  const a = new WireGuardDataPath({ dataplane: pa, table: ta, privateKey: ka, port: 51820 })
  const b = new WireGuardDataPath({ dataplane: pb, table: new FakeTable([entry('a', '192.0.2.1', publicKeyOf(ka))]), privateKey: kb, port: 51820 })
  a.start()
  b.start()
  t.teardown(() => { a.stop(); b.stop() })
  return { ka, pa, pb, ta, a, b }
}

/** The same, after a's packet for b made their session. */
function handshaken (t: Test): ReturnType<typeof twoDataPaths> {
  const paths = twoDataPaths(t)
  paths.pa.activity.push(['b', WG_WANTS_SESSION | WG_DATA_SENT, 0])
  paths.a.poll()
  paths.b.poll()
  paths.a.poll()
  return paths
}

t.test('a packet wanting a session handshakes through two data paths; a key withdrawn retires', async (t) => {
  const { pa, pb, ta, a, b } = twoDataPaths(t)

  pa.activity.push(['b', WG_WANTS_SESSION | WG_DATA_SENT, 0])
  a.poll() // a initiates to b
  t.equal(pa.sent.length, 1, 'a sent one message')
  t.equal(pa.sent[0].to, '192.0.2.2:51820', 'to b\'s address at the WireGuard port')
  t.equal(pa.sent[0].data.length, 148, 'an initiation')
  b.poll() // b answers and installs its responder session
  a.poll() // a takes the response, installs and confirms
  t.equal(pb.installed.length, 1, 'b installed a session')
  t.equal(pa.installed.length, 1, 'a installed a session')
  const [[peerA, sa], [peerB, sb]] = [pa.installed[0], pb.installed[0]]
  t.same([peerA, peerB], ['b', 'a'], 'each for the other')
  t.same([sa.initiator, sb.initiator], [true, false])
  t.same(sa.send, sb.receive, 'a sends with the key b receives with')
  t.same(sa.receive, sb.send, 'and the other way')
  t.equal(sa.remoteIndex, sb.localIndex, 'a addresses b\'s index')
  t.equal(sb.remoteIndex, sa.localIndex, 'and b a\'s')
  t.same(pa.keepalives, ['b'], 'the initiator confirms the session with a keepalive')
  t.same([a.stats().sessions, b.stats().sessions], [1, 1])
  t.same([a.stats().established, b.stats().established], [1, 1])

  ta.change([entry('b', '192.0.2.2')]) // b withdrew its key
  t.same(pa.retired, [sa.localIndex], 'its session is retired')
  t.equal(a.stats().established, 0)
})

t.test('a handover passes the sessions: the successor goes on with them, no handshake', async (t) => {
  const { ka, pa, pb, ta, a } = handshaken(t)
  const [, session] = pa.installed[0]

  // As on the control socket: JSON.
  const handed = JSON.parse(JSON.stringify(a.handover()))
  t.equal(handed.length, 1, 'one peer handed')
  const p2 = new FakePort('192.0.2.1')
  p2.peer = pb
  pb.peer = p2
  const a2 = new WireGuardDataPath({ dataplane: p2, table: ta, privateKey: ka, port: 51820 })
  t.teardown(() => a2.stop())
  const kept = a2.hand(handed)
  t.same(p2.handed.map(([peer, s]) => [peer, s.localIndex, s.remoteIndex, s.initiator]), [['b', session.localIndex, session.remoteIndex, true]], 'the session handed to the data path, under its own indexes')
  t.same([p2.handed[0][1].send, p2.handed[0][1].receive], [session.send, session.receive], 'with its keys')
  a2.start()
  t.equal(a2.adoptHanded(kept), 1, 'taken on once the baton installed it')
  t.same([a2.stats().established, p2.installed.length, p2.retired.length], [1, 0, 0], 'established, not installed again, nothing retired')
  p2.activity.push(['b', WG_DATA_SENT, 5])
  a2.poll()
  t.equal(p2.sent.length, 0, 'data goes on without a handshake')

  t.equal(a2.hand([{ name: 'b', sessions: [{ localIndex: -1 }] }, 'junk']).length, 0, 'a malformed handed entry is skipped')
})

t.test('a handed session the baton did not install is forgotten: the next packet handshakes', async (t) => {
  const { ka, ta, a } = handshaken(t)
  const p2 = new FakePort('192.0.2.1')
  p2.applies = () => false // the predecessor died before its threads' state came
  const a2 = new WireGuardDataPath({ dataplane: p2, table: ta, privateKey: ka, port: 51820 })
  t.teardown(() => a2.stop())
  const kept = a2.hand(JSON.parse(JSON.stringify(a.handover())))
  a2.start()
  t.equal(a2.adoptHanded(kept), 0, 'nothing taken on')
  t.equal(a2.stats().established, 0)
  p2.activity.push(['b', WG_WANTS_SESSION | WG_DATA_SENT, 0])
  a2.poll()
  t.equal(p2.sent[0]?.data.length, 148, 'the next packet to b starts a handshake')
})
