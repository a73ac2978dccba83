// WireGuard's primitives against published known answers: keyed BLAKE2s (the BLAKE2 reference's
// blake2s-kat.txt), HMAC and KDF (RFC 2104 and RFC 5869 computed independently), HChaCha20 and
// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 2.2.1 and A.3.1), X25519 (RFC 7748 6.1).
import t from 'tap'
import { createHash, hkdfSync } from 'node:crypto'
import { aeadOpen, aeadSeal } from '../../src/wireguard/aead.js'
import { hash, hmac, kdf, keyedBlake2s, mac } from '../../src/wireguard/blake2s.js'
import { dh, formatKey, generatePrivateKey, parseKey, publicKeyOf } from '../../src/wireguard/keys.js'
import { tai64n, timestampAfter } from '../../src/wireguard/tai64n.js'
import { hchacha20, xaeadOpen, xaeadSeal } from '../../src/wireguard/xchacha.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const sequence = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff))

t.test('HASH is BLAKE2s-256 (RFC 7693 appendix B: "abc")', async (t) => {
  t.equal(hash(Buffer.from('abc')).toString('hex'), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982')
  t.equal(hash(Buffer.from('a'), Buffer.from('bc')).toString('hex'), hash(Buffer.from('abc')).toString('hex'), 'parts are concatenated')
})

t.test('keyed BLAKE2s through OpenSSL BLAKE2SMAC: blake2s-kat.txt keyed vectors', async (t) => {
  const key = sequence(0, 32)
  const kat: Array<[number, string]> = [
    [0, '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49'],
    [1, '40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1'],
    [2, '6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803'],
    [3, '1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b'],
    [63, 'c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd'], // one byte short of a block
    [64, '8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4'], // exactly one block
  ]
  for (const [n, want] of kat) t.equal(keyedBlake2s(key, sequence(0, n), 32).toString('hex'), want, `input of ${n} bytes`)
  // The 16-byte MAC is not a cut 32-byte one: the output length is in BLAKE2's parameter block.
  const m = mac(key, sequence(0, 3))
  t.equal(m.length, 16)
  t.not(m.toString('hex'), kat[3][1].slice(0, 32), 'MAC is BLAKE2s-128, not a truncated BLAKE2s-256')
  t.same(mac(key, sequence(0, 1), sequence(1, 2)), m, 'parts are concatenated')
  // BLAKE2s-128 answers from an independent implementation (CPython's hashlib.blake2s with
  // key= and digest_size=16), since the reference's KAT file has 32-byte outputs only.
  t.equal(m.toString('hex'), '1e2a79436a7796a3e9826bfedf07659f', 'MAC of 3 bytes, 32-byte key')
  t.equal(mac(key).toString('hex'), '9536f9b267655743dee97b8a670f9f53', 'MAC of nothing, 32-byte key')
  t.equal(keyedBlake2s(sequence(0, 16), sequence(0, 64), 16).toString('hex'), 'dd55c51c98f8ab96ed272882941f0b6a', 'BLAKE2s-128 of a block, 16-byte key')
  t.throws(() => keyedBlake2s(Buffer.alloc(33), Buffer.alloc(0), 16), /1 to 32/, 'a key past 32 bytes is refused')
  t.throws(() => keyedBlake2s(key, Buffer.alloc(0), 0), /1 to 32/, 'an output of 0 bytes is refused')
})

t.test('HMAC is RFC 2104 over BLAKE2s-256 with a 64-byte block', async (t) => {
  const reference = (key: Buffer, data: Buffer): Buffer => {
    const k = Buffer.alloc(64)
    ;(key.length > 64 ? createHash('blake2s256').update(key).digest() : key).copy(k)
    const ipad = Buffer.from(k.map((b) => b ^ 0x36))
    const opad = Buffer.from(k.map((b) => b ^ 0x5c))
    const inner = createHash('blake2s256').update(ipad).update(data).digest()
    return createHash('blake2s256').update(opad).update(inner).digest()
  }
  for (const [key, data] of [[sequence(0, 32), Buffer.from('WireGuard')], [Buffer.alloc(0), Buffer.alloc(0)], [sequence(7, 80), sequence(3, 200)]]) {
    t.same(hmac(key, data), reference(key, data), `key ${key.length} B, data ${data.length} B`)
  }
})

t.test('KDF_n is HKDF (RFC 5869) with the chaining key as salt and no info', async (t) => {
  const key = sequence(0x20, 32)
  const input = sequence(0x90, 32)
  const [a, b, c] = kdf(3, key, input)
  t.same(Buffer.concat([a, b, c]), Buffer.from(hkdfSync('blake2s256', input, key, Buffer.alloc(0), 96)), 'KDF3 = HKDF of 96 bytes')
  t.same(kdf(1, key, input), [a], 'KDF1 is KDF3\'s first output')
  t.same(kdf(2, key, Buffer.alloc(0)), [0, 1].map((i) => Buffer.from(hkdfSync('blake2s256', Buffer.alloc(0), key, Buffer.alloc(0), 64)).subarray(32 * i, 32 * i + 32)), 'KDF2 of the empty input (the transport keys)')
})

t.test('HChaCha20: draft-irtf-cfrg-xchacha-03 2.2.1', async (t) => {
  t.equal(hchacha20(sequence(0, 32), hex('000000090000004a0000000031415927')).toString('hex'),
    '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc')
  t.throws(() => hchacha20(Buffer.alloc(32), Buffer.alloc(12)), /16 bytes/)
})

t.test('XChaCha20-Poly1305: draft-irtf-cfrg-xchacha-03 A.3.1', async (t) => {
  const key = sequence(0x80, 32)
  const nonce = sequence(0x40, 24)
  const ad = hex('50515253c0c1c2c3c4c5c6c7')
  const plaintext = Buffer.from('Ladies and Gentlemen of the class of \'99: If I could offer you only one tip for the future, sunscreen would be it.')
  const want = hex(`bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
    731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
    2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
    21f9664c97637da9768812f615c68b13b52e c0875924c1c7987947deafd8780acf49`)
  const sealed = xaeadSeal(key, nonce, plaintext, ad)
  t.same(sealed, want, 'ciphertext and tag')
  t.same(xaeadOpen(key, nonce, sealed, ad), plaintext, 'opens')
  const flipped = Buffer.from(sealed)
  flipped[5] ^= 1
  t.equal(xaeadOpen(key, nonce, flipped, ad), undefined, 'a flipped ciphertext bit does not open')
  t.equal(xaeadOpen(key, nonce, sealed, Buffer.from('other')), undefined, 'other additional data does not open')
  t.equal(xaeadOpen(key, nonce, Buffer.alloc(15), ad), undefined, 'shorter than a tag')
})

t.test('AEAD nonce: 32 zero bits then the counter, little-endian (RFC 8439 2.8.2 with its nonce\'s own layout)', async (t) => {
  // RFC 8439 2.8.2's nonce is 07000000 40414243 44454647: not of WireGuard's form, so only round
  // trips and counter separation are checked here; the transport keys' interop test covers the layout.
  const key = sequence(0x80, 32)
  const sealed = aeadSeal(key, 5n, Buffer.from('packet'), Buffer.alloc(0))
  t.same(aeadOpen(key, 5n, sealed, Buffer.alloc(0)), Buffer.from('packet'))
  t.equal(aeadOpen(key, 6n, sealed, Buffer.alloc(0)), undefined, 'another counter does not open')
})

t.test('X25519 with raw keys: RFC 7748 6.1, and base64 keys as wg writes them', async (t) => {
  const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
  const bob = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb')
  t.equal(publicKeyOf(alice).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
  t.equal(publicKeyOf(bob).toString('hex'), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
  t.equal(dh(alice, publicKeyOf(bob))?.toString('hex'), shared)
  t.equal(dh(bob, publicKeyOf(alice))?.toString('hex'), shared)
  t.equal(dh(alice, Buffer.alloc(32)), undefined, 'a low-order public key (zero) gives no secret')
  t.equal(dh(alice, Buffer.alloc(31)), undefined, 'a short public key is refused, not thrown')
  const k = generatePrivateKey()
  t.equal(k[0] & 7, 0, 'clamped low bits')
  t.equal(k[31] & 0xc0, 0x40, 'clamped high bits')
  t.same(parseKey(formatKey(k)), k, 'base64 round trip')
  t.equal(formatKey(k).length, 44)
  for (const bad of ['', 'abc', formatKey(k).slice(0, 43), Buffer.alloc(33).toString('base64'), formatKey(k).replace(/=$/, 'A')]) {
    t.equal(parseKey(bad), undefined, `not a key: ${JSON.stringify(bad)}`)
  }
})

t.test('TAI64N timestamps order by time', async (t) => {
  const a = tai64n(1_700_000_000_000)
  t.equal(a.length, 12)
  t.equal(a.readBigUInt64BE(0), 0x400000000000000an + 1_700_000_000n, 'seconds with the TAI64 label and offset')
  const b = tai64n(1_700_000_000_500)
  t.ok(timestampAfter(b, a), 'half a second later is after')
  t.notOk(timestampAfter(a, b), 'earlier is not after')
  t.notOk(timestampAfter(a, Buffer.from(a)), 'equal is not after')
  t.ok(timestampAfter(a, undefined), 'anything is after none')
  t.same(tai64n(1_700_000_000_001), tai64n(1_700_000_000_000), 'nanoseconds are whitened to ~16 ms')
})
