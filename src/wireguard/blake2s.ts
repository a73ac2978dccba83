// WireGuard's hash functions (whitepaper 5.4, "Symbols and functions"): HASH is BLAKE2s-256,
// MAC is keyed BLAKE2s-128, HMAC is RFC 2104 over BLAKE2s-256, and KDF_n is HKDF (RFC 5869) built on
// that HMAC. node:crypto has unkeyed BLAKE2s only, so MAC comes from OpenSSL 3's BLAKE2SMAC
// through the addon (native/blake2s_mac.h): the same OpenSSL the node binary already carries.
import { createHash, createHmac } from 'node:crypto'
import { addon } from '../native.js'

/** HASH(parts…): BLAKE2s-256 of the concatenation. */
export function hash (...parts: Buffer[]): Buffer {
  const h = createHash('blake2s256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** MAC(key, parts…): keyed BLAKE2s with a 16-byte output (mac1, mac2, cookies: whitepaper 5.4.4, 5.4.7). */
export function mac (key: Buffer, ...parts: Buffer[]): Buffer {
  return keyedBlake2s(key, parts.length === 1 ? parts[0] : Buffer.concat(parts), 16)
}

/** Keyed BLAKE2s of any output length 1-32 (RFC 7693 2.5; the length is in the parameter block, not a cut). */
export function keyedBlake2s (key: Buffer, data: Buffer, outLen: number): Buffer {
  return addon.blake2sMac(key, data, outLen)
}

/** HMAC(key, parts…): RFC 2104 with BLAKE2s-256 (64-byte block), as node:crypto's HMAC does for 'blake2s256'. */
export function hmac (key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('blake2s256', key)
  for (const p of parts) h.update(p)
  return h.digest()
}

const ONE = Buffer.from([1])

/**
 * KDF_n(key, input): n 32-byte outputs (whitepaper 5.4: τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1),
 * τi = HMAC(τ0, τi-1 || i)) — HKDF (RFC 5869) with the chaining key as salt and no info.
 */
export function kdf (n: 1 | 2 | 3, key: Buffer, input: Buffer): Buffer[] {
  const prk = hmac(key, input)
  const out: Buffer[] = []
  let prev = hmac(prk, ONE)
  out.push(prev)
  for (let i = 2; i <= n; i++) {
    prev = hmac(prk, prev, Buffer.from([i]))
    out.push(prev)
  }
  return out
}
