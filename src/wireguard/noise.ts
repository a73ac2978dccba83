// The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake, step by step as the whitepaper's 5.4.2
// (initiation), 5.4.3 (response) and 5.4.5 (transport keys) write it. Pure functions over the
// handshake state: which peer, which index, timestamps and cookies are handshaker.ts's business.
// Macs are left zero here; cookie.ts fills and checks them.
import { aeadOpen, aeadSeal } from './aead.js'
import { hash, kdf } from './blake2s.js'
import { dh, generatePrivateKey, KEY_LENGTH, publicKeyOf } from './keys.js'
import { INITIATION_LENGTH, Initiation, MESSAGE_INITIATION, MESSAGE_RESPONSE, newMessage, Response, RESPONSE_LENGTH } from './messages.js'
import { TIMESTAMP_LENGTH } from './tai64n.js'

const CONSTRUCTION = Buffer.from('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s')
const IDENTIFIER = Buffer.from('WireGuard v1 zx2c4 Jason@zx2c4.com')
const EMPTY = Buffer.alloc(0)
const TAG = 16

/** A private key and its public key, raw 32 bytes each. */
export interface StaticKeys { privateKey: Buffer, publicKey: Buffer }

export function staticKeys (privateKey: Buffer): StaticKeys {
  return { privateKey, publicKey: publicKeyOf(privateKey) }
}

/** The chaining key C and hash H between messages, and what the next step needs of the ephemerals. */
export interface HandshakeState {
  chainingKey: Buffer
  hash: Buffer
  localEphemeral: Buffer // private
  remoteEphemeral?: Buffer // public, the responder's side after the initiation
  remoteStatic: Buffer // public
}

/** Both directions' keys once the handshake completes (whitepaper 5.4.5). */
export interface TransportKeys { send: Buffer, receive: Buffer }

// C0 and H0 with the responder's static key mixed in: the same for every handshake to one responder.
const INITIAL_CHAIN = hash(CONSTRUCTION)
const INITIAL_HASH = hash(INITIAL_CHAIN, IDENTIFIER)

function initialState (responderPublic: Buffer): { chainingKey: Buffer, hash: Buffer } {
  return { chainingKey: INITIAL_CHAIN, hash: hash(INITIAL_HASH, responderPublic) }
}

/**
 * Builds an initiation (macs zero) from local to the responder's public key: the sender index and
 * the TAI64N timestamp are the caller's. undefined when a DH yields zero (a low-order key).
 */
export function createInitiation (local: StaticKeys, responderPublic: Buffer, senderIndex: number, timestamp: Buffer,
  ephemeralPrivate: Buffer = generatePrivateKey()): { message: Buffer, state: HandshakeState } | undefined {
  let { chainingKey: c, hash: h } = initialState(responderPublic)
  const msg = newMessage(MESSAGE_INITIATION, INITIATION_LENGTH)
  msg.writeUInt32LE(senderIndex >>> 0, Initiation.sender)
  const ephemeralPublic = publicKeyOf(ephemeralPrivate)
  ephemeralPublic.copy(msg, Initiation.ephemeral)
  ;[c] = kdf(1, c, ephemeralPublic)
  h = hash(h, ephemeralPublic)
  const es = dh(ephemeralPrivate, responderPublic)
  if (!es) return undefined
  let k: Buffer
  ;[c, k] = kdf(2, c, es)
  const encryptedStatic = aeadSeal(k, 0n, local.publicKey, h)
  encryptedStatic.copy(msg, Initiation.static)
  h = hash(h, encryptedStatic)
  const ss = dh(local.privateKey, responderPublic)
  if (!ss) return undefined
  ;[c, k] = kdf(2, c, ss)
  const encryptedTimestamp = aeadSeal(k, 0n, timestamp, h)
  encryptedTimestamp.copy(msg, Initiation.timestamp)
  h = hash(h, encryptedTimestamp)
  return { message: msg, state: { chainingKey: c, hash: h, localEphemeral: ephemeralPrivate, remoteStatic: responderPublic } }
}

/**
 * The responder's reading of an initiation (length, type and mac1 already checked): the
 * initiator's static key and timestamp, or 'decrypt' when either does not open (it was not
 * sealed for this key). Whether that static key is a peer, and whether the timestamp is new, the
 * caller decides.
 */
export function consumeInitiation (local: StaticKeys, msg: Buffer):
  { initiatorPublic: Buffer, timestamp: Buffer, senderIndex: number, state: HandshakeState } | 'decrypt' {
  let { chainingKey: c, hash: h } = initialState(local.publicKey)
  const ephemeral = Buffer.from(msg.subarray(Initiation.ephemeral, Initiation.ephemeral + KEY_LENGTH))
  ;[c] = kdf(1, c, ephemeral)
  h = hash(h, ephemeral)
  const es = dh(local.privateKey, ephemeral)
  if (!es) return 'decrypt'
  let k: Buffer
  ;[c, k] = kdf(2, c, es)
  const encryptedStatic = msg.subarray(Initiation.static, Initiation.static + KEY_LENGTH + TAG)
  const initiatorPublic = aeadOpen(k, 0n, encryptedStatic, h)
  if (!initiatorPublic) return 'decrypt'
  h = hash(h, encryptedStatic)
  const ss = dh(local.privateKey, initiatorPublic)
  if (!ss) return 'decrypt'
  ;[c, k] = kdf(2, c, ss)
  const encryptedTimestamp = msg.subarray(Initiation.timestamp, Initiation.timestamp + TIMESTAMP_LENGTH + TAG)
  const timestamp = aeadOpen(k, 0n, encryptedTimestamp, h)
  if (!timestamp) return 'decrypt'
  h = hash(h, encryptedTimestamp)
  return {
    initiatorPublic,
    timestamp,
    senderIndex: msg.readUInt32LE(Initiation.sender),
    state: { chainingKey: c, hash: h, localEphemeral: Buffer.alloc(0), remoteEphemeral: ephemeral, remoteStatic: initiatorPublic },
  }
}

/**
 * Builds the response (macs zero) to a consumed initiation, with the peer's pre-shared key (32 zero
 * bytes when none), and the responder's transport keys. undefined when a DH yields zero.
 */
export function createResponse (state: HandshakeState, senderIndex: number, receiverIndex: number, psk: Buffer,
  ephemeralPrivate: Buffer = generatePrivateKey()): { message: Buffer, keys: TransportKeys } | undefined {
  if (!state.remoteEphemeral) throw new Error('createResponse: the state of a consumed initiation is needed')
  let { chainingKey: c, hash: h } = state
  const msg = newMessage(MESSAGE_RESPONSE, RESPONSE_LENGTH)
  msg.writeUInt32LE(senderIndex >>> 0, Response.sender)
  msg.writeUInt32LE(receiverIndex >>> 0, Response.receiver)
  const ephemeralPublic = publicKeyOf(ephemeralPrivate)
  ephemeralPublic.copy(msg, Response.ephemeral)
  ;[c] = kdf(1, c, ephemeralPublic)
  h = hash(h, ephemeralPublic)
  const ee = dh(ephemeralPrivate, state.remoteEphemeral)
  const se = dh(ephemeralPrivate, state.remoteStatic)
  if (!ee || !se) return undefined
  ;[c] = kdf(1, c, ee)
  ;[c] = kdf(1, c, se)
  const [c2, tau, k] = kdf(3, c, psk)
  c = c2
  h = hash(h, tau)
  const empty = aeadSeal(k, 0n, EMPTY, h)
  empty.copy(msg, Response.empty)
  h = hash(h, empty)
  const [initiatorSend, responderSend] = kdf(2, c, EMPTY)
  return { message: msg, keys: { send: responderSend, receive: initiatorSend } }
}

/**
 * The initiator's reading of a response (length, type, mac1 and its receiver index already
 * checked against state): the initiator's transport keys, or 'decrypt' when the empty payload
 * does not open (wrong responder key or a different pre-shared key).
 */
export function consumeResponse (local: StaticKeys, state: HandshakeState, msg: Buffer, psk: Buffer): TransportKeys | 'decrypt' {
  let { chainingKey: c, hash: h } = state
  const ephemeral = Buffer.from(msg.subarray(Response.ephemeral, Response.ephemeral + KEY_LENGTH))
  ;[c] = kdf(1, c, ephemeral)
  h = hash(h, ephemeral)
  const ee = dh(state.localEphemeral, ephemeral)
  const se = dh(local.privateKey, ephemeral)
  if (!ee || !se) return 'decrypt'
  ;[c] = kdf(1, c, ee)
  ;[c] = kdf(1, c, se)
  const [c2, tau, k] = kdf(3, c, psk)
  c = c2
  h = hash(h, tau)
  const empty = msg.subarray(Response.empty, Response.empty + TAG)
  if (!aeadOpen(k, 0n, empty, h)) return 'decrypt'
  const [initiatorSend, responderSend] = kdf(2, c, EMPTY)
  return { send: initiatorSend, receive: responderSend }
}
