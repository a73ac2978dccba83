// The native transport session (native/wg_session.h), which the packet threads will seal and
// open with, against the TypeScript side that interoperates with wireguard-go: the same keys and
// counter give the same bytes, each opens what the other sealed, and every hostile message is
// refused for its reason. The native replay window answers as the TypeScript one on long random
// sequences of counters (late, repeated, far ahead, far behind).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { testing } from '../lib/testing-addon.js'
import type { NativePeer } from '../../src/native.js'
import { parseAddress } from '../../src/net/cidr.js'
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

t.test('sessions taking turns on one thread: each seals and opens with its own key (the thread\'s cipher context switches)', async (t) => {
  // A packet thread's cipher context keeps the last session's key; one session after another,
  // and a new session in place of a freed one, must each get their own.
  const pairs = [0, 1, 2].map((i) => {
    const [a, b] = [randomBytes(32), randomBytes(32)]
    return { native: new testing.WgSession(10 + i, 20 + i, a, b, true), peer: new Session(20 + i, 10 + i, { send: b, receive: a }, false, 0, () => 0), back: new Session(20 + i, 10 + i, { send: b, receive: a }, true, 0, () => 0) }
  })
  let good = 0
  for (let round = 0; round < 30; round++) {
    const { native, peer, back } = pairs[(round * 7) % 3]
    const p = packet(100 + round)
    const opened = peer.open(native.seal(p, 1420) as Buffer)
    if ('packet' in opened && opened.packet.subarray(0, p.length).equals(p)) good++
    const reply = native.open(back.seal(p, 1420) as Buffer)
    if ('packet' in reply && reply.packet?.subarray(0, p.length).equals(p)) good++
  }
  t.equal(good, 60, 'every message sealed and opened under its own session\'s key, in any order')
  // A freed session's successor (the allocator may give it the same address) has its own key.
  for (let i = 0; i < 20; i++) {
    const [a, b] = [randomBytes(32), randomBytes(32)]
    const opened = new Session(2, 1, { send: b, receive: a }, false, 0, () => 0).open(new testing.WgSession(1, 2, a, b, true).seal(packet(64), 1420) as Buffer)
    if (!('packet' in opened)) t.fail(`session ${i}: sealed with another session's key`)
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

t.test('admission: each datagram to its verdict, as the receive path will see them', async (t) => {
  // This node holds 10.1.0.0/24; node b (the session's) 10.2.0.0/24 and fd00:2::/64; node c 10.3.0.0/24.
  const prefix = (cidr: string): { address: Buffer, length: number } => {
    const [a, l] = cidr.split('/')
    return { address: (parseAddress(a) as { bytes: Buffer }).bytes, length: Number(l) }
  }
  const table = new testing.Table()
  const peer = (name: string, underlay: string, cidrs: string[]): NativePeer =>
    ({ name, address: (parseAddress(underlay) as { bytes: Buffer }).bytes, port: 51820, mac: Buffer.alloc(6), cidrs: cidrs.map(prefix) })
  table.setTable({
    local: [prefix('10.1.0.0/24'), prefix('fd00:1::/64')],
    peers: [peer('b', '192.168.1.2', ['10.2.0.0/24', 'fd00:2::/64']), peer('c', '192.168.1.3', ['10.3.0.0/24'])],
  })
  const native = new testing.WgSession(5, 6, keys.a, keys.b, false) // ours, from b's handshake
  const b = new Session(6, 5, { send: keys.b, receive: keys.a }, true, 0, () => 0)
  const ip4 = (src: string, dst: string, len = 60): Buffer => {
    const p = Buffer.alloc(len)
    p[0] = 0x45
    p.writeUInt16BE(len, 2)
    p[8] = 64
    p[9] = 17
    ;(parseAddress(src) as { bytes: Buffer }).bytes.copy(p, 12)
    ;(parseAddress(dst) as { bytes: Buffer }).bytes.copy(p, 16)
    return p
  }
  const ip6 = (src: string, dst: string): Buffer => {
    const p = Buffer.alloc(48)
    p[0] = 0x60
    p.writeUInt16BE(8, 4)
    p[6] = 17
    ;(parseAddress(src) as { bytes: Buffer }).bytes.copy(p, 8)
    ;(parseAddress(dst) as { bytes: Buffer }).bytes.copy(p, 24)
    return p
  }
  const admit = (m: Buffer, nowMs = 0): { verdict: string, packet?: Buffer } => native.admit(table, m, 'b', nowMs)
  const fromB = ip4('10.2.0.5', '10.1.0.7', 61)
  const first = admit(b.seal(fromB, 1420) as Buffer)
  t.equal(first.verdict, 'packet', 'b\'s pod to ours')
  t.ok(first.packet?.equals(fromB), 'the packet, its padding cut at its own length')
  t.equal(admit(b.seal(ip6('fd00:2::5', 'fd00:1::7'), 1420) as Buffer).verdict, 'packet', 'IPv6 too')
  t.equal(admit(b.keepalive() as Buffer).verdict, 'keepalive')
  t.equal(admit(b.seal(ip4('10.3.0.5', '10.1.0.7'), 1420) as Buffer).verdict, 'spoofed_source', 'node c\'s address through b\'s session')
  t.equal(admit(b.seal(ip4('10.9.0.5', '10.1.0.7'), 1420) as Buffer).verdict, 'spoofed_source', 'an address of no node')
  t.equal(admit(b.seal(ip4('10.2.0.5', '10.3.0.7'), 1420) as Buffer).verdict, 'foreign_destination', 'relayed to node c through us')
  t.equal(admit(b.seal(Buffer.from('not an IP packet at all....'), 1420) as Buffer).verdict, 'bad_inner_ip')
  const again = b.seal(fromB, 1420) as Buffer
  t.equal(admit(again).verdict, 'packet')
  t.equal(admit(again).verdict, 'replay', 'the same message twice')
  const tampered = b.seal(fromB, 1420) as Buffer
  tampered[30] ^= 0x80
  t.equal(admit(tampered).verdict, 'decrypt')
  const other = b.seal(fromB, 1420) as Buffer
  other.writeUInt32LE(99, 4)
  t.equal(admit(other).verdict, 'unknown_index')
  t.equal(admit(b.seal(fromB, 1420) as Buffer, REJECT_AFTER_MS).verdict, 'expired')
  for (const [type, length, verdict] of [[1, 148, 'handshake'], [2, 92, 'handshake'], [3, 64, 'handshake'], [1, 147, 'bad_message'],
    [2, 93, 'bad_message'], [3, 65, 'bad_message'], [4, 31, 'bad_message'], [5, 148, 'bad_message'], [0, 100, 'bad_message']] as const) {
    const m = Buffer.alloc(length)
    m[0] = type
    t.equal(admit(m).verdict, verdict, `type ${type}, ${length} B: ${verdict}`)
  }
  const reserved = Buffer.alloc(148)
  reserved[0] = 1
  reserved[2] = 1
  t.equal(admit(reserved).verdict, 'bad_message', 'reserved bytes set')
  t.equal(admit(Buffer.alloc(3)).verdict, 'bad_message', 'three bytes')
})
