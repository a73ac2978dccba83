// TAI64N timestamps for initiations (whitepaper 5.1 and 5.4.2): 8 bytes big-endian seconds with the
// TAI64 label (2^62, plus TAI's 10 s offset at 1970) and 4 bytes big-endian nanoseconds. A responder
// keeps the greatest it has seen from each peer and drops any initiation not newer (replay).
export const TIMESTAMP_LENGTH = 12

const TAI64_BASE = 0x400000000000000an
// Nanoseconds rounded down to 2^24 ns (~16.8 ms), as wireguard-go does, so that a timestamp does
// not tell an observer of the decrypted value the sender's clock to the nanosecond.
const WHITENER = 0xffffff

/** The TAI64N label of a time in milliseconds since the epoch (Date.now()'s unit). */
export function tai64n (nowMs: number): Buffer {
  const out = Buffer.alloc(TIMESTAMP_LENGTH)
  const seconds = Math.floor(nowMs / 1000)
  const nanos = Math.floor((nowMs - seconds * 1000) * 1e6)
  out.writeBigUInt64BE(TAI64_BASE + BigInt(seconds), 0)
  out.writeUInt32BE((nanos & ~WHITENER) >>> 0, 8)
  return out
}

/** True when a is strictly later than b: both are big-endian, so byte order is time order. */
export function timestampAfter (a: Buffer, b: Buffer | undefined): boolean {
  return b === undefined || Buffer.compare(a, b) > 0
}
