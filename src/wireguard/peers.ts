// The control side of WireGuard between nodes: one Handshaker (this node's key, the peers'
// indexes and handshakes), a PeerTimers per peer, and the limits that keep a flood of handshake
// messages from taking the daemon's CPU. It is told what the data path saw (packets waiting for a
// session, data sent and received, from the per-peer timestamps the packet threads keep) and
// tells the data path, through a WireGuardPort, which sessions to use and what to send. Only
// handshake messages and cookie replies reach it; transport data is sealed and opened natively.
import { type Endpoint, Handshaker, type Peer } from './handshaker.js'
import { formatKey } from './keys.js'
import { MESSAGE_TRANSPORT, messageType, type DropReason } from './messages.js'
import { PeerTimers, REKEY_AFTER_MS, type CurrentSession } from './timers.js'
import { Session } from './transport.js'

/** What the data path does for the control side. */
export interface WireGuardPort {
  /** Sends a handshake message or a cookie reply from the WireGuard port. */
  send: (to: Endpoint, datagram: Buffer) => void
  /** peer's traffic uses session from now on; the one before stays for what is in flight. */
  install: (peer: string, session: Session) => void
  /** The session with this local index is used no more. */
  retire: (localIndex: number) => void
  /** An empty transport message to peer through its newest session (a keepalive; it also confirms a new session). */
  keepalive: (peer: string) => void
  /** The packets waiting for a session to peer are dropped. */
  flush: (peer: string) => void
}

export interface WireGuardPeer {
  publicKey: Buffer
  presharedKey?: Buffer
  endpoint: Endpoint
}

/**
 * A source may send this many handshake messages a second, in bursts of RATE_BURST: a node has
 * no reason to send more than a few (wireguard-go's limiter allows the same).
 */
export const RATE_PER_SECOND = 20
export const RATE_BURST = 5
/**
 * Past this many handshake messages in a second the node is under load (the whitepaper's 5.3):
 * for the next second, initiations and responses need a valid mac2, or get a cookie reply. The
 * steady state of a 5,000-node cluster is ~42 a second (every session renewed every 120 s).
 */
export const UNDER_LOAD_PER_SECOND = 250
/** Sources the limiter remembers at once; past it, the oldest are forgotten. */
const MAX_SOURCES = 16_384

export type WireGuardDrop = DropReason | 'rate' | 'not-handshake'

/**
 * A peer's sessions as a handover passes them to the successor (JSON on the control socket,
 * keys in base64): the newest last, and the greatest initiation timestamp taken from the peer
 * (hex), so an initiation replayed to the successor is still refused.
 */
export interface HandedPeer {
  name: string
  lastTimestamp?: string
  sessions: Array<{ localIndex: number, remoteIndex: number, send: string, receive: string, initiator: boolean, createdAt: number }>
}

interface Entry {
  name: string
  peer: Peer
  timers: PeerTimers
  endpoint: Endpoint
  installed: Session[] // what the data path holds, oldest first: the newest and the one before
}

export class WireGuardPeers {
  readonly drops = new Map<WireGuardDrop, number>()
  /** Handshakes completed, either side. */
  sessions = 0
  private readonly handshaker: Handshaker
  private readonly byName = new Map<string, Entry>()
  private readonly byPeer = new Map<Peer, Entry>()
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private second = { start: 0, count: 0 }
  private underLoadUntil = 0

  /**
   * now: the wall clock in ms, as the handshake's TAI64N timestamps need (a peer refuses an
   * initiation not newer than the last it took, across our restarts too). random: [0, 1).
   */
  constructor (privateKey: Buffer, private readonly port: WireGuardPort, private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random, private readonly rekeyAfterMs = REKEY_AFTER_MS) {
    this.handshaker = new Handshaker(privateKey, now)
  }

  get publicKey (): Buffer { return this.handshaker.local.publicKey }

  /** Adds or changes a peer. A changed key or pre-shared key starts over (a new handshake when traffic wants one). */
  set (name: string, p: WireGuardPeer): void {
    const old = this.byName.get(name)
    if (old && old.peer.publicKey.equals(p.publicKey) && old.peer.presharedKey.equals(p.presharedKey ?? Buffer.alloc(32))) {
      old.endpoint = p.endpoint
      return
    }
    if (old) this.remove(name)
    const peer = this.handshaker.addPeer({ publicKey: p.publicKey, presharedKey: p.presharedKey })
    const entry = { name, peer, timers: new PeerTimers(this.random, this.rekeyAfterMs), endpoint: p.endpoint, installed: [] }
    this.byName.set(name, entry)
    this.byPeer.set(peer, entry)
  }

  remove (name: string): void {
    const e = this.byName.get(name)
    if (!e) return
    this.retireAll(e)
    this.handshaker.removePeer(e.peer.publicKey)
    this.byName.delete(name)
    this.byPeer.delete(e.peer)
  }

  /** Peers with a session that has not expired. */
  established (): number {
    let n = 0
    for (const e of this.byName.values()) if (e.peer.session && !e.peer.session.expired) n++
    return n
  }

  /** The newest session's public state, for `flatnet peers`. */
  state (name: string): { publicKey: string, established: boolean, endpoint: Endpoint } | undefined {
    const e = this.byName.get(name)
    return e && { publicKey: formatKey(e.peer.publicKey), established: e.peer.session !== undefined, endpoint: e.endpoint }
  }

  /** A packet to name found no session (or a dead one): start a handshake unless one is under way. */
  wantsSession (name: string): void {
    const e = this.byName.get(name)
    if (e) this.act(e, e.timers.dataSent(this.now(), this.current(e)))
  }

  /** What the data path saw for name since the last report: data sent or received, any authenticated message either way. */
  activity (name: string, a: { dataSent?: boolean, dataReceived?: boolean, anySent?: boolean, anyReceived?: boolean, sent?: bigint }): void {
    const e = this.byName.get(name)
    if (!e) return
    const t = this.now()
    if (a.anyReceived) e.timers.anyReceived()
    if (a.anySent) e.timers.anySent()
    const s = this.current(e, a.sent)
    if (a.dataSent) this.act(e, e.timers.dataSent(t, s))
    if (a.dataReceived && s) this.act(e, e.timers.dataReceived(t, s))
  }

  /** Every peer's sessions and timestamp, for a handover's successor (keys included). */
  handover (): HandedPeer[] {
    const out: HandedPeer[] = []
    for (const e of this.byName.values()) {
      if (e.installed.length === 0 && e.peer.lastTimestamp === undefined) continue
      out.push({
        name: e.name,
        ...(e.peer.lastTimestamp ? { lastTimestamp: e.peer.lastTimestamp.toString('hex') } : {}),
        sessions: e.installed.map((s) => ({
          localIndex: s.localIndex,
          remoteIndex: s.remoteIndex,
          send: s.keys.send.toString('base64'),
          receive: s.keys.receive.toString('base64'),
          initiator: s.initiator,
          createdAt: s.createdAt,
        })),
      })
    }
    return out
  }

  /**
   * A handover's successor: takes on the predecessor's sessions that the data path installed
   * (applied: their local indexes, WireGuardPort.install not called again) and each peer's
   * timestamp. Returns how many; any applied but not taken (its peer gone) is retired.
   */
  adopt (handed: HandedPeer[], applied: Set<number>): number {
    let n = 0
    for (const h of handed) {
      const e = this.byName.get(h.name)
      if (e === undefined) continue
      if (h.lastTimestamp !== undefined) e.peer.lastTimestamp = Buffer.from(h.lastTimestamp, 'hex')
      for (const s of h.sessions) {
        if (!applied.delete(s.localIndex)) continue
        const session = new Session(s.localIndex, s.remoteIndex, { send: Buffer.from(s.send, 'base64'), receive: Buffer.from(s.receive, 'base64') }, s.initiator, s.createdAt, this.now)
        if (!this.handshaker.adopt(e.peer, session)) {
          this.port.retire(s.localIndex)
          continue
        }
        e.installed.push(session)
        if (e.installed.length > 2) this.port.retire((e.installed.shift() as Session).localIndex)
        e.timers.sessionDerived(s.createdAt)
        n++
      }
    }
    for (const index of applied) this.port.retire(index)
    return n
  }

  /** Runs what is due; the daemon calls it every few hundred milliseconds. */
  tick (): void {
    const t = this.now()
    for (const e of this.byName.values()) {
      const next = e.timers.next()
      if (next !== undefined && next <= t) this.act(e, e.timers.due(t))
    }
  }

  /** A datagram for the WireGuard port that is not transport data: a handshake message or a cookie reply. */
  receive (datagram: Buffer, source: Endpoint): void {
    const type = messageType(datagram)
    if (type === MESSAGE_TRANSPORT) return this.drop('not-handshake')
    if (!this.admit(source)) return this.drop('rate')
    this.handshaker.underLoad = this.now() < this.underLoadUntil
    const out = this.handshaker.receive(datagram, source)
    switch (out.kind) {
      case 'drop': return this.drop(out.reason)
      case 'cookie': return this.port.send(source, out.message)
      case 'cookie-stored': return
      case 'data': return this.drop('not-handshake') // the handshaker opened one: never here
      case 'response':
      case 'session': {
        const e = this.byPeer.get(out.peer)
        if (!e) return
        e.endpoint = source // roaming (whitepaper 2.1): answer where it came from
        this.installed(e, out.session)
        if (out.kind === 'response') {
          this.port.send(source, out.message)
          e.timers.anySent()
        } else {
          // The initiator confirms the session to the responder with its first message (5.4.5).
          this.port.keepalive(e.name)
          e.timers.anySent()
        }
      }
    }
  }

  private installed (e: Entry, session: Session): void {
    // The handshaker keeps the newest and the one before (5.4.6: packets in flight); the data
    // path forgets the one before that too.
    e.installed.push(session)
    if (e.installed.length > 2) this.port.retire((e.installed.shift() as Session).localIndex)
    this.sessions++
    e.timers.anyReceived()
    e.timers.sessionDerived(this.now())
    this.port.install(e.name, session)
  }

  private act (e: Entry, actions: ReturnType<PeerTimers['due']>): void {
    for (const a of actions) {
      if (a === 'initiate') {
        const m = this.handshaker.initiate(e.peer)
        if (!m) continue
        this.port.send(e.endpoint, m)
        e.timers.initiationSent(this.now())
      } else if (a === 'keepalive') {
        this.port.keepalive(e.name)
        e.timers.anySent()
      } else if (a === 'give-up') {
        this.port.flush(e.name)
      } else {
        this.retireAll(e)
        this.handshaker.forget(e.peer)
      }
    }
  }

  private retireAll (e: Entry): void {
    for (const s of e.installed) this.port.retire(s.localIndex)
    e.installed = []
  }

  private current (e: Entry, sent?: bigint): CurrentSession | undefined {
    const s = e.peer.session
    if (!s || s.expired) return undefined
    return { createdAt: s.createdAt, initiator: s.initiator, sent: sent ?? 0n }
  }

  // A token bucket per source address (not port: a flood changes ports freely), and the node's
  // rate of handshake messages, which decides whether it is under load.
  private admit (source: Endpoint): boolean {
    const t = this.now()
    if (t - this.second.start >= 1000) this.second = { start: t, count: 0 }
    if (++this.second.count > UNDER_LOAD_PER_SECOND) this.underLoadUntil = t + 1000
    let b = this.buckets.get(source.address)
    if (!b) {
      if (this.buckets.size >= MAX_SOURCES) this.buckets.delete(this.buckets.keys().next().value as string)
      b = { tokens: RATE_BURST, at: t }
      this.buckets.set(source.address, b)
    }
    b.tokens = Math.min(RATE_BURST, b.tokens + (t - b.at) * RATE_PER_SECOND / 1000)
    b.at = t
    if (b.tokens < 1) return false
    b.tokens--
    return true
  }

  private drop (reason: WireGuardDrop): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1)
  }
}
