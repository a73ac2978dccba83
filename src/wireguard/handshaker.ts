// One local WireGuard identity and its peers: the dispatch of received datagrams (each dropped with
// a reason, or turned into what to send or a session), the index table, per-peer timestamps and
// cookies. The daemon's control side: it makes the handshakes and hands the sessions' keys on.
// Checks run cheapest first (whitepaper 5.3 and 5.4.4): length and type, then mac1, then — under
// load — mac2 (a cookie reply instead of any X25519), then the index or the handshake itself.
import { CookieChecker, CookieGenerator, type Endpoint } from './cookie.js'
import { formatKey } from './keys.js'
import {
  Initiation, lengthOk, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE, messageType,
  CookieReply, Response, Transport, type DropReason,
} from './messages.js'
import {
  consumeInitiation, consumeResponse, createInitiation, createResponse, staticKeys,
  type HandshakeState, type StaticKeys,
} from './noise.js'
import { tai64n, timestampAfter } from './tai64n.js'
import { IndexTable } from './index-table.js'
import { Session } from './transport.js'

export type { Endpoint } from './cookie.js'

const NO_PSK = Buffer.alloc(32)

export interface PeerOptions {
  publicKey: Buffer // raw 32 bytes
  presharedKey?: Buffer // raw 32 bytes; none is 32 zero bytes (whitepaper 5.2)
}

export class Peer {
  readonly presharedKey: Buffer
  readonly cookies: CookieGenerator
  /** The greatest initiation timestamp taken from this peer: an older or equal one is a replay. */
  lastTimestamp: Buffer | undefined
  /** Our initiation awaiting its response. */
  pending: { localIndex: number, state: HandshakeState } | undefined
  /** The newest session, and the one before it (packets in flight when a new one starts, 5.4.6). */
  session: Session | undefined
  previous: Session | undefined
  /** Where its last authenticated message came from (roaming, whitepaper 2.1). */
  endpoint: Endpoint | undefined

  constructor (readonly publicKey: Buffer, presharedKey: Buffer | undefined, now: () => number) {
    this.presharedKey = presharedKey ?? NO_PSK
    this.cookies = new CookieGenerator(publicKey, now)
  }
}

/** What a received datagram comes to. */
export type Outcome =
  | { kind: 'drop', reason: DropReason }
  /** Under load, a handshake message without a valid mac2: send message (a cookie reply) back to the source. */
  | { kind: 'cookie', message: Buffer }
  /** An initiation taken: send message (the response) to the source; the session can receive now, send once confirmed. */
  | { kind: 'response', peer: Peer, message: Buffer, session: Session }
  /** Our initiation answered: the session can send (a keepalive at least, which confirms it to the responder). */
  | { kind: 'session', peer: Peer, session: Session }
  /** A cookie reply to our initiation taken: the next initiation to this peer carries mac2. */
  | { kind: 'cookie-stored', peer: Peer }
  /** A transport message opened: packet is padded (the inner IP header tells its length); empty is a keepalive. */
  | { kind: 'data', peer: Peer, session: Session, packet: Buffer }

type IndexEntry = { peer: Peer, session?: Session }

export class Handshaker {
  readonly local: StaticKeys
  /** Set by whoever watches the handshake rate: initiations and responses then need mac2 (cookie path). */
  underLoad = false
  private readonly checker: CookieChecker
  private readonly peers = new Map<string, Peer>()
  private readonly indexes = new IndexTable<IndexEntry>()

  constructor (privateKey: Buffer, private readonly now: () => number = Date.now) {
    this.local = staticKeys(privateKey)
    this.checker = new CookieChecker(this.local.publicKey, now)
  }

  addPeer (options: PeerOptions): Peer {
    const peer = new Peer(options.publicKey, options.presharedKey, this.now)
    this.removePeer(options.publicKey)
    this.peers.set(formatKey(options.publicKey), peer)
    return peer
  }

  removePeer (publicKey: Buffer): void {
    const key = formatKey(publicKey)
    const peer = this.peers.get(key)
    if (!peer) return
    this.forget(peer)
    this.peers.delete(key)
  }

  /** Forgets peer's sessions and pending initiation (their indexes too): it starts over with a new handshake. */
  forget (peer: Peer): void {
    // A peer holds at most these three indexes (install drops the one before previous): no scan
    // of every peer's, which a node leaving a 5,000-node cluster would cost each of the others.
    for (const i of [peer.pending?.localIndex, peer.session?.localIndex, peer.previous?.localIndex]) {
      if (i !== undefined) this.indexes.delete(i)
    }
    peer.pending = peer.session = peer.previous = undefined
  }

  peer (publicKey: Buffer): Peer | undefined {
    return this.peers.get(formatKey(publicKey))
  }

  /** A new initiation to peer (macs filled), replacing any pending one; undefined for a low-order peer key. */
  initiate (peer: Peer): Buffer | undefined {
    if (peer.pending) this.indexes.delete(peer.pending.localIndex)
    peer.pending = undefined
    const localIndex = this.indexes.add({ peer })
    if (localIndex === undefined) return undefined
    const made = createInitiation(this.local, peer.publicKey, localIndex, tai64n(this.now()))
    if (!made) {
      this.indexes.delete(localIndex)
      return undefined
    }
    peer.pending = { localIndex, state: made.state }
    peer.cookies.addMacs(made.message)
    return made.message
  }

  /** Dispatches one received datagram from source. Never throws on its content. */
  receive (datagram: Buffer, source: Endpoint): Outcome {
    const type = messageType(datagram)
    if (type === 0) return drop('type')
    if (!lengthOk(type, datagram.length)) return drop('length')
    switch (type) {
      case MESSAGE_INITIATION: return this.receiveInitiation(datagram, source)
      case MESSAGE_RESPONSE: return this.receiveResponse(datagram, source)
      case MESSAGE_COOKIE_REPLY: return this.receiveCookieReply(datagram)
      default: return this.receiveTransport(datagram, source)
    }
  }

  private macsOrCookie (msg: Buffer, senderIndex: number, source: Endpoint): Outcome | undefined {
    if (!this.checker.checkMac1(msg)) return drop('mac1')
    if (this.underLoad && !this.checker.checkMac2(msg, source)) {
      return { kind: 'cookie', message: this.checker.createReply(msg, senderIndex, source) }
    }
    return undefined
  }

  private receiveInitiation (msg: Buffer, source: Endpoint): Outcome {
    const senderIndex = msg.readUInt32LE(Initiation.sender)
    const early = this.macsOrCookie(msg, senderIndex, source)
    if (early) return early
    const consumed = consumeInitiation(this.local, msg)
    if (consumed === 'decrypt') return drop('decrypt')
    const peer = this.peer(consumed.initiatorPublic)
    if (!peer) return drop('peer')
    if (!timestampAfter(consumed.timestamp, peer.lastTimestamp)) return drop('timestamp')
    const localIndex = this.indexes.add({ peer })
    if (localIndex === undefined) return drop('index')
    const made = createResponse(consumed.state, localIndex, senderIndex, peer.presharedKey)
    if (!made) {
      this.indexes.delete(localIndex)
      return drop('decrypt')
    }
    // Only an initiation that authenticated moves the timestamp on (a forged one cannot block the peer).
    peer.lastTimestamp = consumed.timestamp
    peer.cookies.addMacs(made.message)
    const session = new Session(localIndex, senderIndex, made.keys, false, this.now(), this.now)
    this.install(peer, localIndex, session)
    peer.endpoint = source
    return { kind: 'response', peer, message: made.message, session }
  }

  private receiveResponse (msg: Buffer, source: Endpoint): Outcome {
    const early = this.macsOrCookie(msg, msg.readUInt32LE(Response.sender), source)
    if (early) return early
    const localIndex = msg.readUInt32LE(Response.receiver)
    const entry = this.indexes.get(localIndex)
    const peer = entry?.peer
    if (!peer || entry.session || peer.pending?.localIndex !== localIndex) return drop('index')
    const keys = consumeResponse(this.local, peer.pending.state, msg, peer.presharedKey)
    if (keys === 'decrypt') return drop('decrypt')
    peer.pending = undefined
    const session = new Session(localIndex, msg.readUInt32LE(Response.sender), keys, true, this.now(), this.now)
    this.install(peer, localIndex, session)
    peer.endpoint = source
    return { kind: 'session', peer, session }
  }

  private receiveCookieReply (msg: Buffer): Outcome {
    // Addressed to the index of our initiation, or of our response (whose session it then is).
    const entry = this.indexes.get(msg.readUInt32LE(CookieReply.receiver))
    if (!entry) return drop('index')
    return entry.peer.cookies.consumeReply(msg) ? { kind: 'cookie-stored', peer: entry.peer } : drop('decrypt')
  }

  private receiveTransport (msg: Buffer, source: Endpoint): Outcome {
    const entry = this.indexes.get(msg.readUInt32LE(Transport.receiver))
    if (!entry?.session) return drop('index')
    const opened = entry.session.open(msg)
    if ('reason' in opened) return drop(opened.reason)
    entry.peer.endpoint = source
    return { kind: 'data', peer: entry.peer, session: entry.session, packet: opened.packet }
  }

  /** A handover's successor: a session its predecessor made with peer, under the same local index (oldest first). False if that index is taken. */
  adopt (peer: Peer, session: Session): boolean {
    if (!this.indexes.claim(session.localIndex, { peer, session })) return false
    this.install(peer, session.localIndex, session)
    return true
  }

  /** Makes session the peer's newest; the one before stays for packets in flight, older ones are forgotten. */
  private install (peer: Peer, localIndex: number, session: Session): void {
    if (peer.previous) this.indexes.delete(peer.previous.localIndex)
    peer.previous = peer.session
    peer.session = session
    this.indexes.set(localIndex, { peer, session })
  }
}

function drop (reason: DropReason): Outcome {
  return { kind: 'drop', reason }
}
