// mac1, mac2 and cookie replies (whitepaper 5.3 and 5.4.4, 5.4.7). mac1 = MAC(HASH("mac1----" ||
// receiver's public key), message up to mac1) proves the sender knows whom it addresses, so a
// responder checks it before any X25519. Under load, a responder also wants mac2 = MAC(cookie,
// message up to mac2), where cookie = MAC(Rm, source IP || port) with a secret Rm changed every
// 2 minutes: only a sender that can receive at its source address learns it, from a cookie reply
// sealed with XChaCha20-Poly1305 under HASH("cookie--" || responder's public key), with the
// answered message's mac1 as additional data.
import { randomBytes } from 'node:crypto'
import { parseAddress } from '../net/cidr.js'
import { hash, mac } from './blake2s.js'
import { equalBytes } from './keys.js'
import { COOKIE_REPLY_LENGTH, CookieReply, MESSAGE_COOKIE_REPLY, newMessage } from './messages.js'
import { xaeadOpen, xaeadSeal } from './xchacha.js'

const LABEL_MAC1 = Buffer.from('mac1----')
const LABEL_COOKIE = Buffer.from('cookie--')
export const MAC_LENGTH = 16
/** Whitepaper 6.1: Cookie-Refresh-Time, how long a secret (responder) or a cookie (initiator) is good for. */
export const COOKIE_REFRESH_MS = 120_000

/** Where a datagram came from (or goes to): the cookie binds the source address and port. */
export interface Endpoint { address: string, port: number }

export function mac1Key (publicKey: Buffer): Buffer {
  return hash(LABEL_MAC1, publicKey)
}

export function cookieKey (publicKey: Buffer): Buffer {
  return hash(LABEL_COOKIE, publicKey)
}

/** The message's mac1 field offset: mac1 and mac2 are its last 32 bytes (initiation and response alike). */
function mac1Offset (message: Buffer): number {
  return message.length - 2 * MAC_LENGTH
}

/** Am of the whitepaper: the source IP's bytes (4 or 16) then the port, big-endian. */
export function endpointBytes (e: Endpoint): Buffer {
  const address = parseAddress(e.address.split('%')[0])
  if (!address) throw new RangeError(`not an IP address: ${e.address}`)
  const port = Buffer.alloc(2)
  port.writeUInt16BE(e.port)
  return Buffer.concat([address.bytes, port])
}

/**
 * The responder's side, one per local key: verifies mac1 (always) and mac2 (under load), and
 * makes cookie replies.
 */
export class CookieChecker {
  private readonly mac1K: Buffer
  private readonly cookieK: Buffer
  private secret = randomBytes(32)
  private secretSince: number

  constructor (localPublicKey: Buffer, private readonly now: () => number = Date.now) {
    this.mac1K = mac1Key(localPublicKey)
    this.cookieK = cookieKey(localPublicKey)
    this.secretSince = now()
  }

  checkMac1 (message: Buffer): boolean {
    const at = mac1Offset(message)
    return equalBytes(mac(this.mac1K, message.subarray(0, at)), message.subarray(at, at + MAC_LENGTH))
  }

  /** Whether mac2 is the cookie this source would get now (a secret older than 2 minutes has been replaced). */
  checkMac2 (message: Buffer, source: Endpoint): boolean {
    const at = mac1Offset(message) + MAC_LENGTH
    return equalBytes(mac(this.cookieFor(source), message.subarray(0, at)), message.subarray(at, at + MAC_LENGTH))
  }

  /** The cookie reply to a message (whose sender index it echoes as its receiver), sent back to source. */
  createReply (message: Buffer, senderIndex: number, source: Endpoint): Buffer {
    const reply = newMessage(MESSAGE_COOKIE_REPLY, COOKIE_REPLY_LENGTH)
    reply.writeUInt32LE(senderIndex, CookieReply.receiver)
    const nonce = randomBytes(24)
    nonce.copy(reply, CookieReply.nonce)
    const at = mac1Offset(message)
    xaeadSeal(this.cookieK, nonce, this.cookieFor(source), message.subarray(at, at + MAC_LENGTH)).copy(reply, CookieReply.cookie)
    return reply
  }

  private cookieFor (source: Endpoint): Buffer {
    if (this.now() - this.secretSince >= COOKIE_REFRESH_MS) {
      this.secret = randomBytes(32)
      this.secretSince = this.now()
    }
    return mac(this.secret, endpointBytes(source))
  }
}

/**
 * The sender's side, one per peer: writes mac1 (keyed by the peer's public key) and, while it
 * holds a cookie from that peer younger than 2 minutes, mac2; takes the peer's cookie replies.
 */
export class CookieGenerator {
  private readonly mac1K: Buffer
  private readonly cookieK: Buffer
  private cookie: Buffer | undefined
  private cookieAt = 0
  private lastMac1: Buffer | undefined // the AD a cookie reply to our last message must carry

  constructor (peerPublicKey: Buffer, private readonly now: () => number = Date.now) {
    this.mac1K = mac1Key(peerPublicKey)
    this.cookieK = cookieKey(peerPublicKey)
  }

  /** Fills the last 32 bytes of message: mac1, then mac2 (zeros without a fresh cookie). */
  addMacs (message: Buffer): void {
    const at = mac1Offset(message)
    const m1 = mac(this.mac1K, message.subarray(0, at))
    m1.copy(message, at)
    this.lastMac1 = m1
    const fresh = this.cookie !== undefined && this.now() - this.cookieAt < COOKIE_REFRESH_MS
    const m2 = fresh ? mac(this.cookie as Buffer, message.subarray(0, at + MAC_LENGTH)) : Buffer.alloc(MAC_LENGTH)
    m2.copy(message, at + MAC_LENGTH)
  }

  /** Takes a cookie reply (its length and type already checked): false if it does not open. */
  consumeReply (reply: Buffer): boolean {
    if (this.lastMac1 === undefined) return false
    const cookie = xaeadOpen(this.cookieK, reply.subarray(CookieReply.nonce, CookieReply.cookie),
      reply.subarray(CookieReply.cookie, COOKIE_REPLY_LENGTH), this.lastMac1)
    if (cookie === undefined) return false
    this.cookie = cookie
    this.cookieAt = this.now()
    return true
  }

  get hasCookie (): boolean {
    return this.cookie !== undefined && this.now() - this.cookieAt < COOKIE_REFRESH_MS
  }
}
