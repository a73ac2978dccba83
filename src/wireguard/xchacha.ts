// XChaCha20-Poly1305 for WireGuard's cookie replies (whitepaper 5.4.7): node:crypto has the IETF
// ChaCha20-Poly1305 (12-byte nonce) only, so the 24-byte-nonce form is built as
// draft-irtf-cfrg-xchacha-03 section 2.3 does: a subkey from HChaCha20 (section 2.2) over the
// nonce's first 16 bytes, then ChaCha20-Poly1305 with 4 zero bytes and the nonce's last 8.
import { chachaOpen, chachaSeal } from './aead.js'

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] // "expand 32-byte k"

function quarterRound (s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] = (s[a] + s[b]) >>> 0; s[d] ^= s[a]; s[d] = (s[d] << 16) | (s[d] >>> 16)
  s[c] = (s[c] + s[d]) >>> 0; s[b] ^= s[c]; s[b] = (s[b] << 12) | (s[b] >>> 20)
  s[a] = (s[a] + s[b]) >>> 0; s[d] ^= s[a]; s[d] = (s[d] << 8) | (s[d] >>> 24)
  s[c] = (s[c] + s[d]) >>> 0; s[b] ^= s[c]; s[b] = (s[b] << 7) | (s[b] >>> 25)
}

/**
 * HChaCha20(key 32 B, nonce 16 B) -> 32-byte subkey: ChaCha20's 20 rounds over constants, key and
 * nonce, without the final addition, keeping words 0-3 and 12-15 (draft-irtf-cfrg-xchacha-03 2.2).
 */
export function hchacha20 (key: Buffer, nonce: Buffer): Buffer {
  if (key.length !== 32 || nonce.length !== 16) throw new RangeError('hchacha20: key 32 bytes, nonce 16 bytes')
  const s = new Uint32Array(16)
  s.set(SIGMA, 0)
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(4 * i)
  for (let i = 0; i < 4; i++) s[12 + i] = nonce.readUInt32LE(4 * i)
  for (let i = 0; i < 10; i++) {
    quarterRound(s, 0, 4, 8, 12); quarterRound(s, 1, 5, 9, 13); quarterRound(s, 2, 6, 10, 14); quarterRound(s, 3, 7, 11, 15)
    quarterRound(s, 0, 5, 10, 15); quarterRound(s, 1, 6, 11, 12); quarterRound(s, 2, 7, 8, 13); quarterRound(s, 3, 4, 9, 14)
  }
  const out = Buffer.alloc(32)
  for (let i = 0; i < 4; i++) {
    out.writeUInt32LE(s[i], 4 * i)
    out.writeUInt32LE(s[12 + i], 16 + 4 * i)
  }
  return out
}

function subkeyAndNonce (key: Buffer, nonce: Buffer): [Buffer, Buffer] {
  if (nonce.length !== 24) throw new RangeError('xchacha20-poly1305: nonce 24 bytes')
  const iv = Buffer.alloc(12)
  nonce.copy(iv, 4, 16, 24)
  return [hchacha20(key, nonce.subarray(0, 16)), iv]
}

/** XChaCha20-Poly1305 seal: ciphertext || 16-byte tag. */
export function xaeadSeal (key: Buffer, nonce: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  const [subkey, iv] = subkeyAndNonce(key, nonce)
  return chachaSeal(subkey, iv, plaintext, ad)
}

/** XChaCha20-Poly1305 open: the plaintext, or undefined when the tag does not verify (or the input is shorter than one). */
export function xaeadOpen (key: Buffer, nonce: Buffer, sealed: Buffer, ad: Buffer): Buffer | undefined {
  const [subkey, iv] = subkeyAndNonce(key, nonce)
  return chachaOpen(subkey, iv, sealed, ad)
}
