// The control channel in one process on loopback: membership, leave, death by
// silence, and hostile input (wrong key, garbage, oversized, replayed hello).
import t, { type Test } from 'tap'
import { until } from '../../src/lab/until.js'
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { ChannelSource } from '../../src/control/channel.js'
import { NonceCache, open, seal } from '../../src/control/channel-wire.js'
import type { ChannelConfig } from '../../src/control/config.js'
import type { PeerChanges, PeerSink } from '../../src/control/source.js'
import { fromWire, type SourceName, type VtepRecord } from '../../src/control/vtep.js'
import { writeFrame } from '../../src/frame.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

const KEY = Buffer.from('test-cluster-key-0123456789')
const PORT = 21000 + Math.floor(Math.random() * 20000)
const log = pino({ level: 'silent' })

class MapSink implements PeerSink {
  readonly peers = new Map<string, VtepRecord>()
  update (_s: SourceName, c: PeerChanges): void {
    for (const r of c.set ?? []) this.peers.set(r.nodeName, r)
    for (const n of c.remove ?? []) this.peers.delete(n)
  }

  resync (_s: SourceName, records: VtepRecord[]): void {
    this.peers.clear()
    for (const r of records) this.peers.set(r.nodeName, r)
  }
}

function self (i: number): VtepRecord {
  const r = fromWire({ node: `n${i}`, cidrs: [`10.244.${i}.0/24`], addr: `127.0.0.${10 + i}`, port: 8472, vni: 1, mac: `02:00:00:00:00:0${i}`, ver: 0 }, 'channel')
  if (typeof r === 'string') throw new Error(r)
  return r
}

function config (i: number, join: number[], extra: Partial<ChannelConfig> = {}): ChannelConfig {
  return {
    listen: { host: `127.0.0.${10 + i}`, port: PORT },
    join: join.map((j) => ({ host: `127.0.0.${10 + j}`, port: PORT })),
    key: KEY,
    heartbeatMs: 100,
    deadAfterMs: 600,
    ...extra,
  }
}

async function node (t: Test, i: number, join: number[], extra: Partial<ChannelConfig> = {}): Promise<{ source: ChannelSource, sink: MapSink }> {
  const source = new ChannelSource(config(i, join, extra), self(i), log)
  const sink = new MapSink()
  await source.start(sink)
  t.teardown(() => source.stop())
  return { source, sink }
}

t.test('wire: a frame sealed for one nonce does not open under another; hello nonces are single-use', async (t) => {
  const a = randomBytes(16); const b = randomBytes(16)
  const frame = seal(KEY, a, { t: 'digest', members: [] })
  t.equal(open(KEY, a, frame).t, 'digest')
  t.throws(() => open(KEY, b, frame), { message: /bad MAC/, reason: 'auth' })
  t.throws(() => open(Buffer.from('another-key-0123456789'), a, frame), { message: /bad MAC/, reason: 'auth' })
  const cache = new NonceCache()
  t.ok(cache.fresh(a)); t.notOk(cache.fresh(a))
})

t.test('three nodes: learn all through seeds, leave at once, dead after silence', async (t) => {
  const n1 = await node(t, 1, [])
  const n2 = await node(t, 2, [1])
  const n3 = await node(t, 3, [2]) // knows only n2; learns n1 through it
  const all = (): boolean => n1.sink.peers.size === 2 && n2.sink.peers.size === 2 && n3.sink.peers.size === 2
  const ms = await until(all, 2000, 5)
  t.ok(ms >= 0 && ms < 1000, `all three know each other in ${ms} ms`)
  t.same(n1.sink.peers.get('n3')?.address, self(3).address)

  await n3.source.stop()
  const leave = await until(() => !n1.sink.peers.has('n3') && !n2.sink.peers.has('n3'), 1000, 5)
  t.ok(leave >= 0 && leave < 200, `graceful stop withdrawn in ${leave} ms`)

  // n2 goes silent without a word (as after kill -9, but its sockets stay open).
  const s2 = n2.source as unknown as { tick: NodeJS.Timeout, gossipNow: () => void, sendDigest: () => void }
  clearInterval(s2.tick)
  s2.gossipNow = () => {}; s2.sendDigest = () => {}
  const dead = await until(() => !n1.sink.peers.has('n2'), 3000, 5)
  t.ok(dead >= 0 && dead < 1000, `silent node withdrawn in ${dead} ms (deadAfter 600)`)
  t.equal(n1.source.stats().dead, 1)
})

t.test('hostile input: wrong key, garbage, oversized, replayed hello — counted, closed, nothing learned', async (t) => {
  const n1 = await node(t, 4, [])
  const bad = await node(t, 5, [4], { key: Buffer.from('the-wrong-key-0123456789') })
  await until(() => (n1.source.stats().auth ?? 0) > 0, 2000, 5)
  t.ok(n1.source.stats().auth >= 1, 'wrong key: counted as auth')
  t.equal(n1.sink.peers.size, 0, 'nothing learned from the wrong key')
  t.equal(bad.sink.peers.size, 0, 'and the other way neither')
  await bad.source.stop()

  const raw = async (bytes: Buffer | ((s: Socket) => void)): Promise<void> => {
    const s = connect({ host: '127.0.0.14', port: PORT })
    await new Promise((resolve) => s.once('connect', resolve))
    if (typeof bytes === 'function') bytes(s); else s.write(bytes)
    await new Promise((resolve) => { s.once('close', resolve); s.on('error', () => {}); setTimeout(() => { s.destroy(); resolve(undefined) }, 3000) })
  }
  await raw(randomBytes(64)) // garbage: a huge length, or bytes that do not decode
  const big = Buffer.alloc(4); big.writeUInt32BE(64 << 20)
  await raw(big)
  await raw((s) => writeFrame(s, { hello: 'not sealed' }))
  const hello = seal(KEY, undefined, { t: 'hello', node: 'evil', nonce: randomBytes(16), listen: '127.0.0.99:1', dir: 'dial' })
  await raw((s) => { writeFrame(s, hello) }) // accepted, then times out saying nothing further
  await raw((s) => { writeFrame(s, hello) }) // the same hello again: a replay
  const st = n1.source.stats()
  t.ok(st.oversized >= 1, `oversized counted (${st.oversized})`)
  t.ok(st.malformed + st.oversized >= 3, `malformed/oversized counted (${st.malformed}/${st.oversized})`)
  t.ok(st.replay >= 1, `replayed hello counted (${st.replay})`)
  t.equal(n1.sink.peers.size, 0, 'nothing learned')
})

/** A client that speaks the protocol with the cluster key: reads the node's hello, answers as `dir`, then sends `frames` bound to its nonce. */
async function speak (port: number, host: string, dir: string, frames: Array<Record<string, unknown>>): Promise<{ closed: boolean, theirHello?: unknown }> {
  const s = connect({ host, port })
  let theirHello: unknown
  let nonce: Buffer | undefined
  const closed = new Promise<boolean>((resolve) => { s.once('close', () => resolve(true)); s.on('error', () => {}) })
  const { readFrames } = await import('../../src/frame.js')
  readFrames(s, (f) => {
    if (nonce) return
    theirHello = f
    nonce = Buffer.from(open(KEY, undefined, f).nonce as Uint8Array)
    writeFrame(s, seal(KEY, undefined, { t: 'hello', node: 'speaker', nonce: randomBytes(16), listen: '127.0.0.99:1', dir }))
    frames.forEach((m, i) => writeFrame(s, seal(KEY, nonce, { ...m, seq: i + 1 })))
  }, () => {})
  const result = await Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1500))])
  s.destroy()
  return { closed: result, theirHello }
}

t.test('hostile input with the key: a null record, a spliced hello, oversized before hello, many unverified connections, one log line', async (t) => {
  const lines: string[] = []
  const logged = pino({ level: 'warn' }, { write: (l: string) => { lines.push(l) } })
  const source = new ChannelSource(config(6, []), self(6), logged)
  const sink = new MapSink()
  await source.start(sink)
  t.teardown(() => source.stop())
  const host = '127.0.0.16'

  // A digest entry whose record is null (msgpack nil): it crashed the daemon once.
  const nullRec = await speak(PORT, host, 'dial', [{ t: 'digest', members: [{ node: 'x', inc: 1, hb: 1, rec: null }] }])
  t.ok(nullRec.closed, 'rec: null closes the connection')
  t.ok((source.stats().malformed ?? 0) >= 1, 'counted as malformed, and the source runs on')
  t.equal(sink.peers.size, 0, 'nothing learned')

  // A splice: the node's own hello (it accepts) handed back to it, as if from the far end
  // of another accepted connection. Both ends of a splice are accepting ends.
  const splice = await speak(PORT, host, 'accept', [{ t: 'digest', members: [] }])
  t.ok(splice.closed, 'a hello from an accepting end on an accepted connection closes it')
  t.ok((source.stats().handshake ?? 0) >= 1, 'counted as handshake')

  // Before a hello checks out, a frame may be 1 KiB: a 64 KiB length is refused at once.
  const s = connect({ host, port: PORT })
  await new Promise((resolve) => s.once('connect', resolve))
  s.on('error', () => {})
  s.resume() // the node's hello, unread, would hold back the end
  const head = Buffer.alloc(4); head.writeUInt32BE(64 << 10)
  s.write(Buffer.concat([head, Buffer.alloc(1000)]))
  t.ok(await until(() => s.destroyed || s.readableEnded, 1500, 5) >= 0, 'oversized before hello: closed')
  s.destroy()

  // One address holds at most 8 connections that have not said hello.
  const idle = await Promise.all(Array.from({ length: 12 }, async () => {
    const c = connect({ host, port: PORT })
    c.on('error', () => {})
    c.resume()
    await new Promise((resolve) => c.once('connect', resolve))
    return c
  }))
  t.ok(await until(() => idle.filter((c) => c.destroyed || c.readableEnded).length >= 4, 1500, 5) >= 0, 'the 9th to 12th are closed at once')
  t.ok((source.stats().refused ?? 0) >= 4, `refused counted (${source.stats().refused})`)
  idle.forEach((c) => c.destroy())

  // Every rejection from this address came within 10 s: one log line says so, the rest are counted.
  const rejected = lines.filter((l) => l.includes('channel frame rejected'))
  t.equal(rejected.length, 1, `one log line for ${(source.stats().malformed ?? 0) + (source.stats().handshake ?? 0) + (source.stats().oversized ?? 0)} rejections`)
})

t.test('the WireGuard key travels with the record, under the MAC; a node without one is learned without one', async (t) => {
  const key = publicKeyOf(generatePrivateKey())
  const keyed = new ChannelSource(config(8, []), { ...self(8), wgKey: key }, log)
  const sink8 = new MapSink()
  await keyed.start(sink8)
  t.teardown(() => keyed.stop())
  const n9 = await node(t, 9, [8]) // self(9) publishes no key, as an older or unencrypted node
  t.ok(await until(() => n9.sink.peers.has('n8') && sink8.peers.has('n9'), 2000, 5) >= 0, 'both learned')
  t.same(n9.sink.peers.get('n8')?.wgKey, key, 'n8\'s key reached n9')
  t.notOk('wgKey' in (sink8.peers.get('n9') ?? {}), 'n9 published none')
  t.equal(keyed.stats().bad_record ?? 0, 0)
})
