// The receive side's replay window for transport counters (whitepaper 5.4.6, which refers to the
// bitmap of RFC 6479): a counter is accepted once, and only if it is newer than the greatest seen
// or at most WINDOW - 1 behind it. Here for the TypeScript side and its tests; the native data
// path keeps its own per session.

/** How far behind the greatest counter a late packet may be and still be accepted once. */
export const WINDOW = 2048
/** Counters at or past this are never accepted (whitepaper 6.1: Reject-After-Messages = 2^64 - 2^13 - 1). */
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n

const BITS = 32
// RFC 6479: one block more than the window needs, so that sliding clears whole blocks and the
// window's oldest bits are never the block being reused.
const BLOCKS = WINDOW / BITS + 1

export class ReplayWindow {
  private readonly blocks = new Uint32Array(BLOCKS)
  private greatest = -1n // none yet

  /** Whether counter would be accepted, without recording it (check before the costlier decryption). */
  check (counter: bigint): boolean {
    if (counter < 0n || counter >= REJECT_AFTER_MESSAGES) return false
    if (counter > this.greatest) return true
    if (this.greatest - counter >= BigInt(WINDOW)) return false
    return (this.blocks[this.blockOf(counter)] & this.bitOf(counter)) === 0
  }

  /** Records counter once its message has authenticated; false (and nothing recorded) if check fails. */
  accept (counter: bigint): boolean {
    if (!this.check(counter)) return false
    if (counter > this.greatest) {
      // Slide: clear the blocks between the old greatest and the new one, at most all of them.
      const oldBlock = this.greatest >> 5n
      const distance = (counter >> 5n) - oldBlock
      const clear = distance > BigInt(BLOCKS) ? BLOCKS : Number(distance)
      for (let i = 1; i <= clear; i++) this.blocks[Number((oldBlock + BigInt(i)) % BigInt(BLOCKS))] = 0
      this.greatest = counter
    }
    this.blocks[this.blockOf(counter)] |= this.bitOf(counter)
    return true
  }

  private blockOf (counter: bigint): number {
    return Number((counter >> 5n) % BigInt(BLOCKS))
  }

  private bitOf (counter: bigint): number {
    return (1 << Number(counter & 31n)) >>> 0
  }
}
