// X25519 keys as WireGuard (and `wg genkey` / `wg pubkey`) represent them: 32 raw bytes, written
// as standard base64 (44 characters). node:crypto takes X25519 keys as KeyObjects only, so raw
// bytes are wrapped in the fixed DER prefix of PKCS#8 / SPKI for OID 1.3.101.110 (RFC 8410).
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, timingSafeEqual } from 'node:crypto'

export const KEY_LENGTH = 32

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

function privateKeyObject (raw: Buffer): ReturnType<typeof createPrivateKey> {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' })
}

function publicKeyObject (raw: Buffer): ReturnType<typeof createPublicKey> {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
}

/** A new private key, clamped as `wg genkey` writes it (RFC 7748 5; X25519 clamps anyway). */
export function generatePrivateKey (): Buffer {
  const k = randomBytes(KEY_LENGTH)
  k[0] &= 248
  k[31] = (k[31] & 127) | 64
  return k
}

/** The public key of a raw private key (`wg pubkey`). */
export function publicKeyOf (privateKey: Buffer): Buffer {
  const der = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' })
  return Buffer.from(der.subarray(der.length - KEY_LENGTH))
}

/**
 * DH(private, public): the X25519 shared secret, or undefined when it is all zeros (a low-order
 * public key: whitepaper 5.4 requires rejecting it) or the peer's bytes are refused.
 */
export function dh (privateKey: Buffer, publicKey: Buffer): Buffer | undefined {
  let shared: Buffer
  try {
    shared = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(publicKey) })
  } catch {
    return undefined
  }
  return shared.every((b) => b === 0) ? undefined : shared
}

/** A key from its base64 form, or undefined unless it is exactly 32 bytes of canonical base64. */
export function parseKey (text: string): Buffer | undefined {
  const trimmed = text.trim()
  if (!/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return undefined
  const key = Buffer.from(trimmed, 'base64')
  return key.length === KEY_LENGTH && key.toString('base64') === trimmed ? key : undefined
}

export function formatKey (key: Buffer): string {
  return key.toString('base64')
}

/** Constant-time equality of two keys or MACs (false when the lengths differ). */
export function equalBytes (a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
