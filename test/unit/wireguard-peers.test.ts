// The WireGuard control side between two nodes, wired through a simulated underlay and data path
// (TypeScript sessions standing in for the native ones) on a simulated clock: a waiting packet
// starts one handshake, both sides install and confirm their sessions, data flows both ways;
// renewal after 120 s keeps two sessions in the data path and retires the oldest; a changed key
// starts over; a handshake flood is rate-limited per source, and past the node's limit peers must
// prove their address with a cookie first.
import t from 'tap'
import type { Endpoint } from '../../src/wireguard/cookie.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'
import { MESSAGE_COOKIE_REPLY } from '../../src/wireguard/messages.js'
import { RATE_BURST, UNDER_LOAD_PER_SECOND, type WireGuardPort, WireGuardPeers } from '../../src/wireguard/peers.js'
import { REKEY_AFTER_MS } from '../../src/wireguard/timers.js'
import type { Session } from '../../src/wireguard/transport.js'

class Clock {
  t = Date.UTC(2027, 0, 1) // the wall clock: initiations carry TAI64N timestamps
  now = (): number => this.t
}

/** One node: its manager, the sessions its data path holds by local index, what it sent. */
class Node {
  readonly manager: WireGuardPeers
  readonly sessions = new Map<number, { peer: string, session: Session }>()
  readonly newest = new Map<string, Session>()
  readonly retired: number[] = []
  readonly flushed: string[] = []
  readonly wire: Array<{ to: Endpoint, datagram: Buffer }> = []
  readonly key = generatePrivateKey()

  constructor (readonly endpoint: Endpoint, clock: Clock) {
    const port: WireGuardPort = {
      send: (to, datagram) => this.wire.push({ to, datagram }),
      install: (peer, session) => { this.sessions.set(session.localIndex, { peer, session }); this.newest.set(peer, session) },
      retire: (index) => { this.retired.push(index); this.sessions.delete(index) },
      keepalive: (peer) => { const m = this.newest.get(peer)?.keepalive(); if (m) this.wire.push({ to: { address: 'data', port: 0 }, datagram: m }) },
      flush: (peer) => this.flushed.push(peer),
    }
    this.manager = new WireGuardPeers(this.key, port, clock.now, () => 0)
  }

  /** As the native receive path: transport messages opened by index, the rest to the manager. */
  deliver (datagram: Buffer, from: Endpoint): string | undefined {
    if (datagram[0] === 4) {
      const s = this.sessions.get(datagram.readUInt32LE(4))
      const opened = s?.session.open(datagram)
      if (!s || !opened || 'reason' in opened) return 'dropped'
      this.manager.activity(s.peer, { anyReceived: true, dataReceived: opened.packet.length > 0 })
      return opened.packet.length ? 'data' : 'keepalive'
    }
    this.manager.receive(datagram, from)
    return undefined
  }
}

/** Delivers everything on both wires until they are empty; what the transport messages were. */
function exchange (a: Node, b: Node): string[] {
  const seen: string[] = []
  for (let round = 0; round < 10 && (a.wire.length || b.wire.length); round++) {
    for (const [from, to] of [[a, b], [b, a]]) {
      for (const m of from.wire.splice(0)) {
        const r = to.deliver(m.datagram, from.endpoint)
        if (r) seen.push(`${from === a ? 'a' : 'b'}:${r}`)
      }
    }
  }
  return seen
}

function pair (): { clock: Clock, a: Node, b: Node } {
  const clock = new Clock()
  const a = new Node({ address: '192.168.1.1', port: 51820 }, clock)
  const b = new Node({ address: '192.168.1.2', port: 51820 }, clock)
  a.manager.set('b', { publicKey: publicKeyOf(b.key), endpoint: b.endpoint })
  b.manager.set('a', { publicKey: publicKeyOf(a.key), endpoint: a.endpoint })
  return { clock, a, b }
}

t.test('a waiting packet: one handshake, both sessions installed and confirmed, data both ways', async (t) => {
  const { a, b } = pair()
  a.manager.wantsSession('b')
  a.manager.wantsSession('b')
  t.equal(a.wire.length, 1, 'two waiting packets, one initiation')
  t.same(exchange(a, b), ['a:keepalive'], 'initiation, response, then the initiator\'s keepalive confirms the session')
  const sa = a.newest.get('b') as Session
  const sb = b.newest.get('a') as Session
  t.ok(sa?.initiator && !sb?.initiator, 'a initiated, b responded')
  t.equal(sa.remoteIndex, sb.localIndex)
  t.ok(sb.confirmed, 'the responder may send: it heard from the initiator')
  const packet = Buffer.alloc(84, 0x45)
  t.equal(b.deliver(sa.seal(packet) as Buffer, a.endpoint), 'data', 'a -> b')
  t.equal(a.deliver(sb.seal(packet) as Buffer, b.endpoint), 'data', 'b -> a')
  t.equal(a.manager.sessions + b.manager.sessions, 2)
})

t.test('renewal after 120 s: two sessions in the data path, the oldest retired', async (t) => {
  const { clock, a, b } = pair()
  a.manager.wantsSession('b')
  exchange(a, b)
  const first = a.newest.get('b') as Session
  for (let k = 1; k <= 2; k++) {
    clock.t += REKEY_AFTER_MS
    a.manager.activity('b', { dataSent: true, anySent: true })
    t.equal(a.wire.length, 1, `${k * 120} s: data sent with an old session starts a new handshake`)
    exchange(a, b)
  }
  t.equal(a.sessions.size, 2, 'a holds the newest and the one before')
  t.ok(a.retired.includes(first.localIndex) && !a.sessions.has(first.localIndex), 'the first session retired')
  t.equal(b.sessions.size, 2, 'b too')
})

t.test('a changed key starts over; a removed peer leaves nothing behind', async (t) => {
  const { clock, a, b } = pair()
  a.manager.wantsSession('b')
  exchange(a, b)
  const s = a.newest.get('b') as Session
  a.manager.set('b', { publicKey: publicKeyOf(generatePrivateKey()), endpoint: b.endpoint })
  t.ok(a.retired.includes(s.localIndex), 'the old key\'s session retired')
  a.manager.set('b', { publicKey: publicKeyOf(b.key), endpoint: b.endpoint })
  clock.t += 1000 // b takes only initiations newer than the last (TAI64N)
  a.manager.wantsSession('b')
  t.same(exchange(a, b), ['a:keepalive'], 'the right key again: a new handshake')
  a.manager.remove('b')
  t.equal(a.sessions.size, 0, 'removed: every session retired')
})

t.test('hostile: a flood from one source is rate-limited; past the node\'s rate, cookies first', async (t) => {
  const { clock, a, b } = pair()
  b.manager.wantsSession('a')
  const initiation = b.wire[0].datagram
  // 100 copies at once from one address: RATE_BURST get through to the handshake (the replays
  // among them then fail on their timestamp), the rest never reach it.
  for (let i = 0; i < 100; i++) a.manager.receive(initiation, { address: '10.9.9.9', port: 1000 + i })
  t.equal(a.manager.drops.get('rate'), 100 - RATE_BURST, `${100 - RATE_BURST} dropped by the limiter`)
  t.equal(a.manager.drops.get('timestamp'), RATE_BURST - 1, 'the copies that passed: replays')
  // Many sources at once: past UNDER_LOAD_PER_SECOND the node answers with cookie replies.
  clock.t += 2000
  a.wire.length = 0
  for (let i = 0; i < UNDER_LOAD_PER_SECOND + 10; i++) a.manager.receive(initiation, { address: `10.8.${i >> 8}.${i & 255}`, port: 1 })
  const cookies = a.wire.filter((m) => m.datagram[0] === MESSAGE_COOKIE_REPLY).length
  t.ok(cookies >= 9, `under load: ${cookies} cookie replies, no handshake work for those`)
})

t.test('a legitimate peer while a flood goes on: a cookie reply first, then its retransmission with mac2 is answered', async (t) => {
  const { clock, a, b } = pair()
  const stranger = new Node({ address: '10.7.0.1', port: 1 }, clock)
  stranger.manager.set('a', { publicKey: publicKeyOf(a.key), endpoint: a.endpoint })
  stranger.manager.wantsSession('a')
  const junk = stranger.wire[0].datagram // mac1 right, from a key a does not know
  const flood = (): void => {
    for (let i = 0; i < UNDER_LOAD_PER_SECOND + 1; i++) a.manager.receive(junk, { address: `10.7.${i >> 8}.${i & 255}`, port: 1 })
    a.wire.length = 0
  }
  flood()
  b.manager.wantsSession('a')
  t.equal(b.wire.length, 1)
  t.same(exchange(a, b), [], 'under load: the initiation answered with a cookie reply only')
  t.equal(b.newest.get('a'), undefined, 'no session yet')
  clock.t += 6000
  flood()
  b.manager.tick() // the retransmission, now with mac2
  t.equal(b.wire.length, 1, 'retransmitted')
  t.same(exchange(a, b), ['b:keepalive'], 'with the cookie: answered, and b confirms the session')
  t.ok(a.newest.get('b'), 'a has the session')
  t.ok((a.manager.drops.get('peer') ?? 0) > 0, 'the flood\'s initiations that were worked on: unknown key')
})
