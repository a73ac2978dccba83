// The native transport session (native/wg_session.h), which the packet threads will seal and
// open with, against the TypeScript side that interoperates with wireguard-go: the same keys and
// counter give the same bytes, each opens what the other sealed, and every hostile message is
// refused for its reason. The native replay window answers as the TypeScript one on long random
// sequences of counters (late, repeated, far ahead, far behind).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { testing } from '../lib/testing-addon.js'
import { ReplayWindow, WINDOW } from '../../src/wireguard/replay.js'
import { REJECT_AFTER_MS, Session } from '../../src/wireguard/transport.js'

/** A deterministic generator (xorshift32), so a failure replays. */
function rng (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32 }
}

t.test('replay window: native and TypeScript agree on random sequences', async (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed)
    const native = new testing.ReplayWindow()
    const ts = new ReplayWindow()
    let greatest = 0n
    let disagreements = 0
    for (let i = 0; i < 5000; i++) {
      const pick = r()
      // Mostly near the greatest (in order, late within the window, just outside it), sometimes far ahead.
      const counter = pick < 0.05
        ? greatest + BigInt(Math.floor(r() * 100_000))
        : pick < 0.1
          ? BigInt(Math.floor(r() * Number(greatest + 1n)))
          : greatest + 16n - BigInt(Math.floor(r() * (WINDOW + 64)))
      const c = counter < 0n ? 0n : counter
      if (native.check(c) !== ts.check(c)) disagreements++
      const a = native.accept(c)
      if (a !== ts.accept(c)) disagreements++
      if (a && c > greatest) greatest = c
    }
    t.equal(disagreements, 0, `seed ${seed}: 5,000 counters, no disagreement (greatest ${greatest})`)
  }
  const w = new testing.ReplayWindow()
  t.notOk(w.accept((1n << 64n) - (1n << 13n) - 1n), 'Reject-After-Messages: never accepted')
  t.ok(w.accept((1n << 64n) - (1n << 13n) - 2n), 'the counter before it is')
})

const keys = { a: randomBytes(32), b: randomBytes(32) }
const packet = (n: number): Buffer => { const b = randomBytes(n); b[0] = 0x45; return b }

t.test('native seals what TypeScript opens, byte for byte the same message', async (t) => {
  const native = new testing.WgSession(1, 2, keys.a, keys.b, true)
  const ts = new Session(1, 2, { send: keys.a, receive: keys.b }, true, 0, () => 0)
  const peer = new Session(2, 1, { send: keys.b, receive: keys.a }, false, 0, () => 0)
  for (const [len, mtu] of [[0, 1420], [1, 1420], [84, 1420], [1419, 1420], [1420, 1420], [1500, 1420], [65535, 65535]]) {
    const p = packet(len)
    const m = native.seal(p, mtu)
    t.ok(m?.equals(ts.seal(p, mtu) as Buffer), `${len} B at MTU ${mtu}: the TypeScript side's very message (${m?.length} B)`)
    const opened = peer.open(m as Buffer)
    t.ok('packet' in opened && opened.packet.subarray(0, len).equals(p) && opened.packet.length === (m as Buffer).length - 32,
      `${len} B: opened by the peer, padded to ${(m as Buffer).length - 32}`)
  }
})

t.test('native opens what TypeScript seals; hostile messages refused by reason', async (t) => {
  const ts = new Session(7, 9, { send: keys.b, receive: keys.a }, true, 0, () => 0)
  const native = new testing.WgSession(9, 7, keys.a, keys.b, false)
  t.equal(native.seal(packet(64), 1420), undefined, 'a responder sends nothing before the initiator\'s first message')
  const m = ts.seal(packet(100), 1420) as Buffer
  const first = native.open(m)
  t.equal(first.packet?.length, 112, 'opened: 100 B padded to 112')
  t.equal(native.open(m).reason, 'replay', 'the same message again')
  t.ok(native.seal(packet(64), 1420), 'confirmed: the responder may send now')
  const next = ts.seal(packet(100), 1420) as Buffer
  const bad = (f: (b: Buffer) => void): Buffer => { const b = Buffer.from(next); f(b); return b }
  t.equal(native.open(bad((b) => { b[b.length - 1] ^= 1 })).reason, 'decrypt', 'a flipped tag bit')
  t.equal(native.open(bad((b) => { b[20] ^= 1 })).reason, 'decrypt', 'a flipped ciphertext bit')
  t.equal(native.open(bad((b) => { b.writeBigUInt64LE(b.readBigUInt64LE(8) + 1n, 8) })).reason, 'decrypt', 'another counter (the nonce)')
  t.equal(native.open(bad((b) => { b.writeUInt32LE(8, 4) })).reason, 'index', 'another receiver index')
  t.equal(native.open(bad((b) => { b[0] = 1 })).reason, 'type', 'another message type')
  t.equal(native.open(next.subarray(0, 31)).reason, 'length', 'shorter than header and tag')
  t.ok(native.open(next).packet, 'the forgeries did not move the window: the real message still opens')
  const old = new Session(7, 9, { send: keys.b, receive: keys.a }, true, 0, () => 0) // counters from 0 again
  t.equal(native.open(old.seal(packet(10), 1420) as Buffer).reason, 'replay', 'counter 0 replayed by a second sender with the same keys')
  t.equal(native.open(ts.seal(packet(10), 1420) as Buffer, REJECT_AFTER_MS).reason, 'expired', 'Reject-After-Time: 180 s after the handshake')
  t.equal(native.seal(packet(10), 1420, REJECT_AFTER_MS), undefined, 'and nothing is sealed with it')
  t.ok(native.seal(packet(10), 1420, REJECT_AFTER_MS - 1), 'a millisecond before, still')
})
