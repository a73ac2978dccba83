// The control channel's frames and records, fuzzed (finding 5 of the security review: one
// digest entry with `rec: null`, sealed with the cluster key, crashed the daemon). A key
// holder is the attacker here, so every frame is sealed and in sequence and reaches the
// record checks: digests, leaves and hellos built from random values of every msgpack type,
// and valid ones with single fields mutated. Whatever arrives, the source must only count,
// close or learn a well-formed record: never throw, never learn a malformed one. Seeded: a
// failing seed replays.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { ChannelSource } from '../../src/control/channel.js'
import { seal } from '../../src/control/channel-wire.js'
import type { PeerChanges, PeerSink } from '../../src/control/source.js'
import { fromWire, type SourceName, toWire, type VtepRecord } from '../../src/control/vtep.js'
import { prng } from '../lib/prng.js'

const KEY = Buffer.from('fuzz-cluster-key-0123456789')
const ROUNDS = 3000

function self (): VtepRecord {
  const r = fromWire({ node: 'fz0', cidrs: ['10.244.0.0/24'], addr: '127.0.0.40', port: 8472, vni: 1, mac: '02:00:00:00:00:40', ver: 0 }, 'channel')
  if (typeof r === 'string') throw new Error(r)
  return r
}

class Sink implements PeerSink {
  readonly learned: VtepRecord[] = []
  update (_s: SourceName, c: PeerChanges): void { this.learned.push(...(c.set ?? [])) }
  resync (_s: SourceName, records: VtepRecord[]): void { this.learned.push(...records) }
}

t.test(`${ROUNDS} sealed frames of random and mutated messages: counted or learned, never thrown`, async (t) => {
  const rand = prng(0x5eed)
  const int = (n: number): number => Math.floor(rand() * n)
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]
  // Any msgpack value, a few levels deep: what unpack can hand the record checks.
  const value = (depth = 0): unknown => {
    const kinds = depth > 2 ? 7 : 9
    switch (int(kinds)) {
      case 0: return null
      case 1: return undefined
      case 2: return rand() < 0.5
      case 3: return pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), Number.NaN, 8472, 65536])
      case 4: return pick(['', 'fz1', 'x'.repeat(300), '10.244.1.0/24', '::', '02:00:00:00:00:01', '\u0000', 'fz1\n'])
      case 5: return randomBytes(int(40))
      case 6: return pick([Number.MAX_SAFE_INTEGER, 1, 0])
      case 7: return Array.from({ length: int(4) }, () => value(depth + 1))
      default: return Object.fromEntries(Array.from({ length: int(5) }, () => [pick(['node', 'inc', 'hb', 'rec', 'listen', 'ver', 'cidrs', 'addr', 'port', 'vni', 'mac', 'x']), value(depth + 1)]))
    }
  }
  const goodRec = (i: number): Record<string, unknown> => ({ node: `fz${i}`, cidrs: [`10.244.${i}.0/24`], addr: `127.0.0.${50 + i}`, port: 8472, vni: 1, mac: `02:00:00:00:01:${(i % 100).toString().padStart(2, '0')}`, ver: 1 })
  const mutate = (o: Record<string, unknown>): Record<string, unknown> => ({ ...o, [pick(Object.keys(o).concat('extra'))]: value() })
  const entry = (): unknown => {
    const i = 1 + int(200)
    const good = { node: `fz${i}`, inc: 1 + int(5), hb: int(100), rec: goodRec(i), listen: `127.0.0.${50 + i}:8473` }
    switch (int(4)) {
      case 0: return value()
      case 1: return mutate(good)
      case 2: return { ...good, rec: mutate(goodRec(i)) }
      default: return good
    }
  }
  const message = (): Record<string, unknown> => {
    switch (int(5)) {
      case 0: return { t: 'digest', members: Array.from({ length: int(6) }, entry) }
      case 1: return { t: 'digest', members: value() }
      case 2: return { t: 'leave', node: value(), inc: value() }
      case 3: return { t: pick(['hello', 'digest', 'leave', 'x', '']), ...(value() as object ?? {}) }
      default: return mutate({ t: 'digest', members: [entry()] })
    }
  }

  const sink = new Sink()
  const source = new ChannelSource({ listen: { host: '127.0.0.40', port: 1 }, join: [], key: KEY, heartbeatMs: 1000, deadAfterMs: 3000 }, self(), pino({ level: 'silent' }))
  // The source's receive path without its listener: a connection whose hello checked out.
  const internals = source as unknown as { sink: PeerSink, receive: (c: unknown, frame: unknown) => void, reject: (c: unknown, err: Error) => void }
  internals.sink = sink
  let thrownOther = 0
  let rejected = 0
  for (let round = 0; round < ROUNDS; round++) {
    const ownNonce = randomBytes(16)
    const socket = { destroyed: false, destroy () { this.destroyed = true }, remoteAddress: '127.0.0.99', write () { return true } }
    const c = { socket, ownNonce, peerNonce: randomBytes(16), node: 'fz-peer', sendSeq: 0, recvSeq: 0, sent: new Map() }
    for (let k = 0; k < 1 + int(3) && !socket.destroyed; k++) {
      const m = message()
      const frame = seal(KEY, ownNonce, { ...m, seq: c.recvSeq + 1 })
      try {
        internals.receive(c, frame)
      } catch (err) {
        if ((err as { reason?: unknown }).reason === undefined) {
          thrownOther++
          t.fail(`round ${round}: ${(err as Error).stack ?? String(err)} for ${JSON.stringify(m, (_, v) => v instanceof Uint8Array ? `<${v.length} bytes>` : v)}`)
        } else {
          rejected++
          socket.destroy()
        }
      }
    }
  }
  t.equal(thrownOther, 0, 'no frame made the receive path throw anything but a rejection')
  // What was learned is a record the checks pass, for the node its digest entry named.
  const bad = sink.learned.filter((r) => typeof fromWire(toWire(r), 'channel') === 'string' || !/^fz\d+$/.test(r.nodeName))
  t.same(bad.map((r) => r.nodeName), [], `${sink.learned.length} records learned, each well-formed`)
  t.ok(rejected > ROUNDS / 4, `${rejected} frames rejected as malformed (connection closed, nothing acted on)`)
  await source.stop()
})
