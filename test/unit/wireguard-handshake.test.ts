// The Noise_IKpsk2 handshake between two TypeScript peers (whitepaper 5.4), every reason a
// datagram is dropped, and the cookie path under load (5.4.7). Interop with wireguard-go is
// test/integration/wireguard-interop.test.ts.
import t, { type Test } from 'tap'
import { CookieGenerator } from '../../src/wireguard/cookie.js'
import { Handshaker, type Endpoint, type Outcome } from '../../src/wireguard/handshaker.js'
import { generatePrivateKey } from '../../src/wireguard/keys.js'
import { COOKIE_REPLY_LENGTH, INITIATION_LENGTH, Initiation, RESPONSE_LENGTH, Response, Transport } from '../../src/wireguard/messages.js'
import type { Session } from '../../src/wireguard/transport.js'

const A_AT: Endpoint = { address: '10.0.0.1', port: 51820 }
const B_AT: Endpoint = { address: '10.0.0.2', port: 51820 }

function pair (options: { pskA?: Buffer, pskB?: Buffer } = {}): { a: Handshaker, b: Handshaker, clock: { now: number } } {
  const clock = { now: 1_700_000_000_000 }
  const a = new Handshaker(generatePrivateKey(), () => clock.now)
  const b = new Handshaker(generatePrivateKey(), () => clock.now)
  a.addPeer({ publicKey: b.local.publicKey, presharedKey: options.pskA })
  b.addPeer({ publicKey: a.local.publicKey, presharedKey: options.pskB })
  return { a, b, clock }
}

function peerOf (h: Handshaker, other: Handshaker): NonNullable<ReturnType<Handshaker['peer']>> {
  const p = h.peer(other.local.publicKey)
  if (!p) throw new Error('no such peer')
  return p
}

function expectKind<K extends Outcome['kind']> (t: Test, o: Outcome, kind: K): Extract<Outcome, { kind: K }> {
  t.equal(o.kind, kind, `outcome ${kind}${o.kind === 'drop' ? ` (dropped: ${o.reason})` : ''}`)
  if (o.kind !== kind) throw new Error(`expected ${kind}, got ${JSON.stringify(o)}`)
  return o as Extract<Outcome, { kind: K }>
}

function reason (o: Outcome): string {
  return o.kind === 'drop' ? o.reason : `not dropped (${o.kind})`
}

/** A full handshake a -> b: both sessions. */
function handshake (t: Test, a: Handshaker, b: Handshaker): { sa: Session, sb: Session } {
  const init = a.initiate(peerOf(a, b))
  t.equal(init?.length, INITIATION_LENGTH, 'initiation is 148 bytes')
  const r = expectKind(t, b.receive(init as Buffer, A_AT), 'response')
  t.equal(r.message.length, RESPONSE_LENGTH, 'response is 92 bytes')
  const s = expectKind(t, a.receive(r.message, B_AT), 'session')
  return { sa: s.session, sb: r.session }
}

for (const psk of [undefined, Buffer.alloc(32, 0x5a)]) {
  t.test(`two peers derive matching transport keys (${psk ? 'with' : 'without'} a pre-shared key)`, async (t) => {
    const { a, b } = pair({ pskA: psk, pskB: psk })
    const { sa, sb } = handshake(t, a, b)
    t.same(sa.keys.send, sb.keys.receive, 'initiator send = responder receive')
    t.same(sa.keys.receive, sb.keys.send, 'initiator receive = responder send')
    t.not(sa.keys.send.toString('hex'), sa.keys.receive.toString('hex'), 'one key per direction')
    t.equal(sa.remoteIndex, sb.localIndex, 'indexes cross')
    t.equal(sb.remoteIndex, sa.localIndex)
    t.equal(sb.seal(Buffer.from('early')), undefined, 'the responder may not send before the initiator\'s first message')
    const packet = Buffer.from('an inner packet of 23 B')
    const msg = sa.seal(packet) as Buffer
    t.equal(msg.length, 16 + 32 + 16, 'header, packet padded to 32, tag')
    t.equal(msg.readBigUInt64LE(Transport.counter), 0n, 'first counter 0')
    const d = expectKind(t, b.receive(msg, A_AT), 'data')
    t.same(d.packet.subarray(0, packet.length), packet, 'opened')
    t.ok(d.packet.subarray(packet.length).every((x) => x === 0), 'zero padding')
    const back = sb.seal(Buffer.from('confirmed')) as Buffer
    t.ok(back, 'confirmed by that message, the responder sends')
    t.same(expectKind(t, a.receive(back, B_AT), 'data').packet.subarray(0, 9), Buffer.from('confirmed'))
    const keepalive = sa.keepalive() as Buffer
    t.equal(keepalive.length, 32, 'a keepalive is a header and a tag')
    t.equal(expectKind(t, b.receive(keepalive, A_AT), 'data').packet.length, 0)
    t.equal((sa.seal(Buffer.alloc(1400), 1420) as Buffer).length, 16 + 1408 + 16, 'padded to 16')
    t.equal((sa.seal(Buffer.alloc(1415), 1420) as Buffer).length, 16 + 1420 + 16, 'but never past the MTU')
  })
}

t.test('drop reasons', async (t) => {
  const { a, b, clock } = pair()
  const peerB = peerOf(a, b)
  const init = a.initiate(peerB) as Buffer

  t.equal(reason(b.receive(Buffer.alloc(3), A_AT)), 'type', 'shorter than a type')
  t.equal(reason(b.receive(Buffer.from([5, 0, 0, 0, ...Buffer.alloc(144)]), A_AT)), 'type', 'type 5')
  const reserved = Buffer.from(init)
  reserved[1] = 1
  t.equal(reason(b.receive(reserved, A_AT)), 'type', 'reserved bytes not zero')
  t.equal(reason(b.receive(init.subarray(0, 147), A_AT)), 'length', 'initiation of 147 bytes')
  t.equal(reason(b.receive(Buffer.concat([init, Buffer.alloc(1)]), A_AT)), 'length', 'initiation of 149 bytes')
  t.equal(reason(b.receive(Buffer.from([2, 0, 0, 0, ...Buffer.alloc(RESPONSE_LENGTH - 5)]), A_AT)), 'length', 'response of 91 bytes')
  t.equal(reason(b.receive(Buffer.from([4, 0, 0, 0, ...Buffer.alloc(27)]), A_AT)), 'length', 'transport shorter than header and tag')
  t.equal(reason(b.receive(Buffer.from([3, 0, 0, 0, ...Buffer.alloc(COOKIE_REPLY_LENGTH - 3)]), A_AT)), 'length', 'cookie reply of 65 bytes')

  const badMac = Buffer.from(init)
  badMac[Initiation.mac1] ^= 1
  t.equal(reason(b.receive(badMac, A_AT)), 'mac1', 'a flipped mac1 bit')
  const tampered = Buffer.from(init)
  tampered[Initiation.ephemeral] ^= 1
  t.equal(reason(b.receive(tampered, A_AT)), 'mac1', 'a flipped body bit breaks mac1 first')
  const c = new Handshaker(generatePrivateKey(), () => clock.now)
  t.equal(reason(c.receive(init, A_AT)), 'mac1', 'an initiation for another key')

  // Valid macs over a broken body: mac1 is only a filter, the AEAD decides.
  const forged = Buffer.from(init)
  forged[Initiation.static + 3] ^= 1
  new CookieGenerator(b.local.publicKey).addMacs(forged)
  t.equal(reason(b.receive(forged, A_AT)), 'decrypt', 'static key ciphertext altered, macs recomputed')

  const stranger = new Handshaker(generatePrivateKey(), () => clock.now)
  const fromStranger = stranger.initiate(stranger.addPeer({ publicKey: b.local.publicKey })) as Buffer
  t.equal(reason(b.receive(fromStranger, A_AT)), 'peer', 'a well-formed initiation from a key that is no peer')

  expectKind(t, b.receive(init, A_AT), 'response')
  t.equal(reason(b.receive(init, A_AT)), 'timestamp', 'the same initiation again (replay)')
  clock.now -= 60_000
  const older = a.initiate(peerB) as Buffer
  clock.now += 61_000 // a second later: within one ~16 ms slot the timestamp would be equal, so stale
  t.equal(reason(b.receive(older, A_AT)), 'timestamp', 'a newer initiation with an older timestamp (clock went back)')
  const newer = a.initiate(peerB) as Buffer
  const r = expectKind(t, b.receive(newer, A_AT), 'response')

  const wrongIndex = Buffer.from(r.message)
  wrongIndex.writeUInt32LE((wrongIndex.readUInt32LE(Response.receiver) + 1) >>> 0, Response.receiver)
  new CookieGenerator(a.local.publicKey).addMacs(wrongIndex)
  t.equal(reason(a.receive(wrongIndex, B_AT)), 'index', 'a response to no initiation of ours')
  const s = expectKind(t, a.receive(r.message, B_AT), 'session').session
  t.equal(reason(a.receive(r.message, B_AT)), 'index', 'the same response again: its initiation is answered')

  const m0 = s.seal(Buffer.from('zero')) as Buffer
  const m1 = s.seal(Buffer.from('one')) as Buffer
  expectKind(t, b.receive(m1, A_AT), 'data')
  expectKind(t, b.receive(m0, A_AT), 'data')
  t.equal(reason(b.receive(m0, A_AT)), 'replay', 'a transport message twice')
  const unknown = Buffer.from(m1)
  unknown.writeUInt32LE((unknown.readUInt32LE(Transport.receiver) ^ 0xffff) >>> 0, Transport.receiver)
  t.equal(reason(b.receive(unknown, A_AT)), 'index', 'a transport message for no session')
  const m2 = s.seal(Buffer.from('two')) as Buffer
  const flipped = Buffer.from(m2)
  flipped[flipped.length - 1] ^= 1
  t.equal(reason(b.receive(flipped, A_AT)), 'decrypt', 'a flipped tag bit')
  expectKind(t, b.receive(m2, A_AT), 'data')
  const cookieForNobody = Buffer.from([3, 0, 0, 0, ...Buffer.alloc(COOKIE_REPLY_LENGTH - 4)])
  t.equal(reason(a.receive(cookieForNobody, B_AT)), 'index', 'a cookie reply to no initiation')

  clock.now += 180_000
  t.equal(reason(b.receive(s.seal(Buffer.from('late')) ?? m2, A_AT)), 'expired', 'a session past 180 s')
  t.equal(s.seal(Buffer.from('late')), undefined, 'nor does it send')
})

t.test('a different pre-shared key: the response does not open', async (t) => {
  const { a, b } = pair({ pskA: Buffer.alloc(32, 1), pskB: Buffer.alloc(32, 2) })
  const r = expectKind(t, b.receive(a.initiate(peerOf(a, b)) as Buffer, A_AT), 'response')
  t.equal(reason(a.receive(r.message, B_AT)), 'decrypt')
  const { a: a2, b: b2 } = pair({ pskB: Buffer.alloc(32, 2) })
  const r2 = expectKind(t, b2.receive(a2.initiate(peerOf(a2, b2)) as Buffer, A_AT), 'response')
  t.equal(reason(a2.receive(r2.message, B_AT)), 'decrypt', 'one side with a PSK, the other without')
})

t.test('under load: a cookie reply, then a retry whose mac2 is valid', async (t) => {
  const { a, b, clock } = pair()
  const peerB = peerOf(a, b)
  b.underLoad = true
  const first = a.initiate(peerB) as Buffer
  t.ok(first.subarray(Initiation.mac2).every((x) => x === 0), 'no cookie yet: mac2 is zero')
  const cookie = expectKind(t, b.receive(first, A_AT), 'cookie')
  t.equal(cookie.message.length, COOKIE_REPLY_LENGTH, 'cookie reply is 64 bytes')
  t.equal(cookie.message.readUInt32LE(4), first.readUInt32LE(Initiation.sender), 'addressed to the initiation\'s sender index')

  const tamperedReply = Buffer.from(cookie.message)
  tamperedReply[40] ^= 1
  t.equal(reason(a.receive(tamperedReply, B_AT)), 'decrypt', 'a tampered cookie reply')
  expectKind(t, a.receive(cookie.message, B_AT), 'cookie-stored')

  const retry = a.initiate(peerB) as Buffer
  t.notOk(retry.subarray(Initiation.mac2).every((x) => x === 0), 'the retry carries mac2')
  t.equal(expectKind(t, b.receive(retry, { ...A_AT, port: 40000 }), 'cookie').kind, 'cookie', 'from another source port the cookie is not valid')
  clock.now += 20
  const retry2 = a.initiate(peerB) as Buffer
  expectKind(t, b.receive(retry2, A_AT), 'response')

  // A cookie reply must answer our latest message: its AD is that message's mac1.
  const stale = a.initiate(peerB) as Buffer
  const replyToStale = expectKind(t, b.receive(stale, { ...A_AT, port: 1 }), 'cookie').message
  a.initiate(peerB)
  t.equal(reason(a.receive(replyToStale, B_AT)), 'index', 'a cookie reply to a replaced initiation: its index is gone')

  clock.now += 121_000
  const expired = a.initiate(peerB) as Buffer
  t.ok(expired.subarray(Initiation.mac2).every((x) => x === 0), 'a cookie older than 2 minutes is not used')
  expectKind(t, b.receive(expired, A_AT), 'cookie')
  b.underLoad = false
  expectKind(t, b.receive(expired, A_AT), 'response')
})

t.test('responses are checked under load too, and a new session keeps the previous one for packets in flight', async (t) => {
  const { a, b, clock } = pair()
  const first = handshake(t, a, b)
  const inFlight = first.sa.seal(Buffer.from('in flight')) as Buffer
  a.underLoad = true
  clock.now += 5_000 // Rekey-Timeout: a later initiation, a later timestamp
  const r = expectKind(t, b.receive(a.initiate(peerOf(a, b)) as Buffer, A_AT), 'response')
  const cookie = expectKind(t, a.receive(r.message, B_AT), 'cookie')
  expectKind(t, b.receive(cookie.message, A_AT), 'cookie-stored')
  a.underLoad = false
  expectKind(t, a.receive(r.message, B_AT), 'session')
  t.equal(expectKind(t, b.receive(inFlight, A_AT), 'data').session, first.sb, 'the previous session still opens')
})
