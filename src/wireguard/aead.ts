// AEAD(key, counter, plaintext, ad) of the whitepaper (5.4): ChaCha20-Poly1305 as RFC 8439 with
// its 96-bit nonce made of 32 zero bits then the 64-bit counter, little-endian. The handshake
// uses counter 0 (each key once); transport data the message counter (5.4.6).
import { createCipheriv, createDecipheriv } from 'node:crypto'

function nonceOf (counter: bigint): Buffer {
  const iv = Buffer.alloc(12)
  iv.writeBigUInt64LE(counter, 4)
  return iv
}

/** Seals plaintext: ciphertext || 16-byte tag. */
export function aeadSeal (key: Buffer, counter: bigint, plaintext: Buffer, ad: Buffer): Buffer {
  return chachaSeal(key, nonceOf(counter), plaintext, ad)
}

/** Opens ciphertext || tag: the plaintext, or undefined if the tag does not verify. */
export function aeadOpen (key: Buffer, counter: bigint, sealed: Buffer, ad: Buffer): Buffer | undefined {
  return chachaOpen(key, nonceOf(counter), sealed, ad)
}

/** RFC 8439's ChaCha20-Poly1305 with any 96-bit nonce (XChaCha20's too): ciphertext || tag. */
export function chachaSeal (key: Buffer, iv: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 })
  c.setAAD(ad, { plaintextLength: plaintext.length })
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()])
}

/** The plaintext of ciphertext || tag, or undefined when the tag does not verify (or the input is shorter than one). */
export function chachaOpen (key: Buffer, iv: Buffer, sealed: Buffer, ad: Buffer): Buffer | undefined {
  if (sealed.length < 16) return undefined
  const d = createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 })
  d.setAAD(ad, { plaintextLength: sealed.length - 16 })
  d.setAuthTag(sealed.subarray(sealed.length - 16))
  const out = d.update(sealed.subarray(0, sealed.length - 16))
  try {
    d.final()
  } catch {
    return undefined
  }
  return out
}
