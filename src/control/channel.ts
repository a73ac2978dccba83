// The embedded control channel: daemons talk to each other over TCP, no external
// store. A node dials its seeds (`--join`), announces its VTEP, learns every member
// from them, then dials every member directly (full mesh).
//
// Liveness is a heartbeat counter per member (gossip-style, as Cassandra and
// memberlist do): each node bumps its own counter every heartbeat and sends its
// digest { node, incarnation, counter } of all live members to every connection.
// A member whose counter has not grown for deadAfterMs is withdrawn. Counters only
// grow while their owner runs, so nodes cannot keep each other's dead alive.
// A graceful stop sends `leave`, which is relayed once: withdrawn at once.
//
// Messages (schema 2, see channel-wire.ts for framing and authentication):
//   hello  { node, nonce, listen, dir }  first frame each way; dir: "dial" or "accept"
//   digest { members: [{ node, inc, hb, rec?, listen? }] }  rec only the first time on a connection
//   leave  { node, inc }
import { randomBytes } from 'node:crypto'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { FrameError, MAX_FRAME, readFrames, writeFrame } from '../frame.js'
import type { Logger } from '../log.js'
import { Backoff } from './backoff.js'
import { type ChannelConfig, type Endpoint, endpoint } from './config.js'
import { ChannelError, NonceCache, open, type Rejection, seal } from './channel-wire.js'
import type { PeerSink, PeerSource } from './source.js'
import { fromWire, toWire, type VtepRecord } from './vtep.js'

const HELLO_TIMEOUT_MS = 2000 // an unauthenticated connection gets this long
const MAX_CONNECTIONS = 1024 // beyond this, new inbound connections are refused
// Before its hello checks out a connection is anyone's: it may hold one small frame, and
// one address may hold only a few such at once (a pod can reach the port).
const MAX_HELLO_FRAME = 1024
const MAX_UNVERIFIED_PER_ADDRESS = 8
const LOG_EVERY_MS = 10_000 // rejections: one line per address per this, the rest counted

interface Member {
  record: VtepRecord
  listen: Endpoint
  inc: number
  hb: number
  seenAt: number // local clock when hb last grew
}

interface Tombstone { inc: number, hb: number, left: boolean, at: number }

interface Conn {
  socket: Socket
  outbound?: string // endpoint key it was dialed at
  ownNonce: Buffer
  peerNonce?: Buffer
  node?: string // set once the peer's hello is verified
  sendSeq: number
  recvSeq: number
  sent: Map<string, number> // node -> record version already sent on this connection
  helloTimer?: NodeJS.Timeout
}

type Counter = Rejection | 'frames_in' | 'frames_out' | 'conns_in' | 'conns_out' | 'refused' | 'joined' | 'left' | 'dead' | 'bad_record'

export class ChannelSource implements PeerSource {
  readonly name = 'channel'
  private sink?: PeerSink
  private server?: Server
  private readonly conns = new Set<Conn>()
  private readonly dialing = new Set<string>()
  private readonly members = new Map<string, Member>()
  private readonly tombstones = new Map<string, Tombstone>()
  private readonly nonces = new NonceCache()
  private readonly counts = new Map<Counter, number>()
  private readonly unverified = new Map<string, number>() // remote address -> connections without a hello yet
  private readonly logged = new Map<string, { at: number, quiet: number }>() // remote address -> last rejection logged
  private readonly inc = Date.now() // incarnation: a restarted node is newer than its tombstone
  private hb = 0
  private tick?: NodeJS.Timeout
  private resyncTimer?: NodeJS.Timeout
  private gossipSoon = false
  private readonly seedBackoff: Backoff
  private nextSeedDial = 0
  private stopping = false
  private readonly selfRecord: VtepRecord

  constructor (private readonly config: ChannelConfig, self: VtepRecord, private readonly log: Logger) {
    this.seedBackoff = new Backoff(config.heartbeatMs, 8000)
    this.selfRecord = { ...self, version: this.inc, source: 'channel' }
  }

  async start (sink: PeerSink): Promise<void> {
    this.sink = sink
    this.server = createServer((socket) => {
      const from = socket.remoteAddress ?? ''
      if (this.conns.size >= MAX_CONNECTIONS || (this.unverified.get(from) ?? 0) >= MAX_UNVERIFIED_PER_ADDRESS) {
        this.count('refused')
        socket.destroy()
        return
      }
      this.count('conns_in')
      this.attach(socket)
    })
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject)
      this.server?.listen(this.config.listen.port, this.config.listen.host, () => resolve())
    })
    this.server.on('error', (err) => this.log.error({ err: err.message }, 'channel listener failed'))
    this.tick = setInterval(() => this.heartbeat(), this.config.heartbeatMs)
    this.dialSeeds()
    // Entries restored from the state file that no member vouches for by then are dead.
    this.resyncTimer = setTimeout(() => {
      this.sink?.resync('channel', [...this.members.values()].map((m) => m.record))
    }, this.config.deadAfterMs)
    this.log.info({ listen: key(this.config.listen), join: this.config.join.map(key) }, 'control channel up')
  }

  async stop ({ withdraw = true } = {}): Promise<void> {
    this.stopping = true
    clearInterval(this.tick)
    clearTimeout(this.resyncTimer)
    this.server?.close()
    // Graceful: tell everyone now, so nobody waits for our heartbeat to go stale.
    const flushed = [...this.conns].filter((c) => c.node && withdraw).map(async (c) => {
      this.send(c, { t: 'leave', node: this.selfRecord.nodeName, inc: this.inc })
      await new Promise<void>((resolve) => c.socket.end(resolve))
    })
    await Promise.race([Promise.all(flushed), new Promise((resolve) => setTimeout(resolve, 300))])
    for (const c of this.conns) c.socket.destroy()
  }

  stats (): Record<string, number> {
    return { ...Object.fromEntries(this.counts), members: this.members.size, connections: this.conns.size }
  }

  private count (c: Counter): void {
    this.counts.set(c, (this.counts.get(c) ?? 0) + 1)
  }

  // --- connections -------------------------------------------------------------

  private dialSeeds (): void {
    for (const seed of this.config.join) {
      if (key(seed) === key(this.config.listen)) continue
      if (![...this.conns].some((c) => c.outbound === key(seed))) this.dial(seed)
    }
  }

  private dial (ep: Endpoint): void {
    const k = key(ep)
    if (this.stopping || this.dialing.has(k)) return
    this.dialing.add(k)
    const socket = createConnection({ host: ep.host, port: ep.port })
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy())
    socket.once('connect', () => {
      socket.setTimeout(0)
      this.count('conns_out')
      this.attach(socket, k)
    })
    socket.once('close', () => this.dialing.delete(k))
    socket.on('error', () => {}) // retried on a later heartbeat
  }

  private attach (socket: Socket, outbound?: string): void {
    socket.setNoDelay(true)
    // Heartbeats keep a live connection busy; one silent this long is dead or hostile.
    socket.setTimeout(Math.max(2 * this.config.deadAfterMs, HELLO_TIMEOUT_MS), () => socket.destroy())
    const c: Conn = { socket, outbound, ownNonce: randomBytes(16), sendSeq: 0, recvSeq: 0, sent: new Map() }
    this.conns.add(c)
    const from = socket.remoteAddress ?? ''
    this.unverified.set(from, (this.unverified.get(from) ?? 0) + 1)
    c.helloTimer = setTimeout(() => this.reject(c, new ChannelError('handshake', 'no hello in time')), HELLO_TIMEOUT_MS)
    socket.on('error', () => {})
    socket.once('close', () => {
      clearTimeout(c.helloTimer)
      this.conns.delete(c)
      if (!c.peerNonce) this.verified(from)
    })
    readFrames(socket, (frame) => {
      try {
        this.receive(c, frame)
      } catch (err) {
        // Whatever a frame makes the code throw ends its connection, never the daemon.
        this.reject(c, err instanceof ChannelError ? err : new ChannelError('malformed', (err as Error).message))
      }
    }, (err: FrameError) => {
      this.reject(c, new ChannelError(/exceeds/.test(err.message) ? 'oversized' : 'malformed', err.message))
    }, () => c.peerNonce ? MAX_FRAME : MAX_HELLO_FRAME)
    // Our hello: it carries the nonce the peer must bind its frames to, and which end we are,
    // under the MAC: a hello passed on to another node (both ends of a splice accept) is refused.
    writeFrame(socket, seal(this.config.key, undefined, {
      t: 'hello', node: this.selfRecord.nodeName, nonce: c.ownNonce, listen: key(this.config.listen), dir: outbound ? 'dial' : 'accept',
    }))
    this.count('frames_out')
  }

  private verified (from: string): void {
    const n = (this.unverified.get(from) ?? 1) - 1
    if (n > 0) this.unverified.set(from, n)
    else this.unverified.delete(from)
  }

  /** Drops the connection; nothing in the offending frame was acted on. Logged once per address per LOG_EVERY_MS. */
  private reject (c: Conn, err: ChannelError): void {
    if (c.socket.destroyed) return
    this.count(err.reason)
    c.socket.destroy()
    const from = c.socket.remoteAddress ?? ''
    const now = Date.now()
    const last = this.logged.get(from)
    if (last !== undefined && now - last.at < LOG_EVERY_MS) {
      last.quiet++
      return
    }
    if (this.logged.size >= 1024) for (const [a, l] of this.logged) if (now - l.at >= LOG_EVERY_MS) this.logged.delete(a)
    if (this.logged.size >= 1024) return // a flood from more addresses than that: counted only
    this.logged.set(from, { at: now, quiet: 0 })
    this.log.warn({ peer: c.node ?? from, reason: err.reason, err: err.message, ...(last?.quiet ? { moreSinceLastLine: last.quiet } : {}) },
      'channel frame rejected; connection closed')
  }

  private send (c: Conn, message: Record<string, unknown>): void {
    if (!c.peerNonce || c.socket.destroyed) return
    writeFrame(c.socket, seal(this.config.key, c.peerNonce, { ...message, seq: ++c.sendSeq }))
    this.count('frames_out')
  }

  // --- messages ----------------------------------------------------------------

  private receive (c: Conn, frame: unknown): void {
    if (!c.peerNonce) {
      const m = open(this.config.key, undefined, frame)
      if (m.t !== 'hello' || !(m.nonce instanceof Uint8Array) || m.nonce.length !== 16 || typeof m.node !== 'string') {
        throw new ChannelError('handshake', 'first frame must be a hello')
      }
      const want = c.outbound ? 'accept' : 'dial'
      if (m.dir !== want) throw new ChannelError('handshake', `hello from the ${String(m.dir)} end on a connection where the peer is the ${want} end (a spliced connection?)`)
      if (!this.nonces.fresh(Buffer.from(m.nonce))) throw new ChannelError('replay', 'hello nonce seen before')
      if (m.node === this.selfRecord.nodeName) { c.socket.destroy(); return } // dialed ourselves
      this.count('frames_in')
      clearTimeout(c.helloTimer)
      c.peerNonce = Buffer.from(m.nonce)
      c.node = m.node
      this.verified(c.socket.remoteAddress ?? '')
      this.sendDigest(c)
      return
    }
    const m = open(this.config.key, c.ownNonce, frame)
    if (m.seq !== c.recvSeq + 1) throw new ChannelError('replay', `sequence ${String(m.seq)}, expected ${c.recvSeq + 1}`)
    c.recvSeq++
    this.count('frames_in')
    if (m.t === 'digest') return this.onDigest(m.members)
    if (m.t === 'leave') return this.onLeave(m.node, m.inc)
    throw new ChannelError('malformed', `unknown message type ${JSON.stringify(m.t)}`)
  }

  private onDigest (members: unknown): void {
    if (!Array.isArray(members)) throw new ChannelError('malformed', 'digest.members is not a list')
    const set: VtepRecord[] = []
    const now = Date.now()
    for (const e of members as Array<Record<string, unknown>>) {
      if (typeof e !== 'object' || e === null || typeof e.node !== 'string' || !Number.isSafeInteger(e.inc) || !Number.isSafeInteger(e.hb)) {
        throw new ChannelError('malformed', 'digest entry is not { node, inc, hb }')
      }
      const node = e.node
      const inc = e.inc as number
      const hb = e.hb as number
      if (node === this.selfRecord.nodeName) continue
      const tomb = this.tombstones.get(node)
      if (tomb && (inc < tomb.inc || (inc === tomb.inc && (tomb.left || hb <= tomb.hb)))) continue // old news
      if (e.rec !== undefined && (typeof e.rec !== 'object' || e.rec === null || Array.isArray(e.rec))) {
        throw new ChannelError('malformed', `digest entry ${JSON.stringify(node)}: rec is not a record`)
      }
      const m = this.members.get(node)
      if (e.rec !== undefined && (!m || inc > m.inc || (e.rec as { ver?: unknown }).ver !== m.record.version)) {
        const rec = fromWire(e.rec, 'channel')
        let listen: Endpoint | undefined
        try {
          listen = endpoint(e.listen, 'listen')
        } catch {}
        if (typeof rec === 'string' || rec.nodeName !== node || !listen) {
          this.count('bad_record')
          this.log.warn({ node, why: typeof rec === 'string' ? rec : 'name or listen address mismatch' }, 'channel record refused')
          continue
        }
        if (!m) this.count('joined')
        if (!m) this.log.info({ peer: node, inc }, 'member joined')
        this.members.set(node, { record: rec, listen, inc, hb, seenAt: now })
        this.tombstones.delete(node)
        set.push(rec)
        continue
      }
      if (m && (inc > m.inc || (inc === m.inc && hb > m.hb))) {
        m.inc = inc
        m.hb = hb
        m.seenAt = now
      }
    }
    if (set.length) {
      this.sink?.update('channel', { set })
      this.gossipNow() // news travels at once, not at the next heartbeat
      for (const r of set) this.ensureConnected(r.nodeName)
    }
  }

  private onLeave (node: unknown, inc: unknown): void {
    if (typeof node !== 'string' || !Number.isSafeInteger(inc)) throw new ChannelError('malformed', 'leave is not { node, inc }')
    const m = this.members.get(node)
    if (!m || m.inc !== inc) return // already gone, or a newer incarnation is running
    this.withdraw(node, true)
    this.count('left')
    this.log.info({ peer: node }, 'member left')
    // Relay once (we only get here while it was a member), so nodes it had no connection to learn it too.
    for (const c of this.conns) this.send(c, { t: 'leave', node, inc })
  }

  private withdraw (node: string, left: boolean): void {
    const m = this.members.get(node)
    if (!m) return
    this.members.delete(node)
    this.tombstones.set(node, { inc: m.inc, hb: m.hb, left, at: Date.now() })
    this.sink?.update('channel', { remove: [node] })
  }

  // --- heartbeat and gossip ----------------------------------------------------

  private heartbeat (): void {
    this.hb++
    const now = Date.now()
    for (const [node, m] of this.members) {
      if (now - m.seenAt > this.config.deadAfterMs) {
        this.withdraw(node, false)
        this.count('dead')
        this.log.warn({ peer: node, silentMs: now - m.seenAt }, 'member dead: no heartbeat')
      }
    }
    for (const [node, t] of this.tombstones) if (now - t.at > 10 * this.config.deadAfterMs) this.tombstones.delete(node)
    for (const c of this.conns) if (c.node) this.sendDigest(c)
    for (const node of this.members.keys()) this.ensureConnected(node)
    if (this.hasLiveSeed()) {
      this.seedBackoff.reset()
      this.nextSeedDial = 0
    } else if (now >= this.nextSeedDial) {
      // Seeds gone: keep forwarding on what we know, and redial them ever less often.
      this.nextSeedDial = now + this.seedBackoff.next()
      this.dialSeeds()
    }
  }

  up (): boolean {
    return this.hasLiveSeed()
  }

  // A live connection dialed at a seed's address, not just any dialed member: the
  // full-mesh dials are outbound too, and counting them kept nodes from ever redialing
  // seeds that died and came back (the seeds then never relearned them).
  private hasLiveSeed (): boolean {
    const seeds = this.config.join.filter((s) => key(s) !== key(this.config.listen)).map(key)
    return seeds.length === 0 || [...this.conns].some((c) => c.node && c.outbound && seeds.includes(c.outbound))
  }

  private ensureConnected (node: string): void {
    const m = this.members.get(node)
    if (!m || [...this.conns].some((c) => c.node === node)) return
    this.dial(m.listen)
  }

  private gossipNow (): void {
    if (this.gossipSoon) return
    this.gossipSoon = true
    setImmediate(() => {
      this.gossipSoon = false
      for (const c of this.conns) if (c.node) this.sendDigest(c)
    })
  }

  private sendDigest (c: Conn): void {
    const entry = (r: VtepRecord, listen: Endpoint, inc: number, hb: number): Record<string, unknown> => {
      const e: Record<string, unknown> = { node: r.nodeName, inc, hb }
      if (c.sent.get(r.nodeName) !== r.version) { // the full record once per connection and version
        e.rec = toWire(r)
        e.listen = key(listen)
        c.sent.set(r.nodeName, r.version)
      }
      return e
    }
    const members = [entry(this.selfRecord, this.config.listen, this.inc, this.hb)]
    for (const m of this.members.values()) if (m.record.nodeName !== c.node) members.push(entry(m.record, m.listen, m.inc, m.hb))
    this.send(c, { t: 'digest', members })
  }
}

function key (ep: Endpoint): string {
  return ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`
}
