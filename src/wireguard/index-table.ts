// This node's local indexes (the whitepaper's sender indexes, 5.4.2): one per pending initiation
// and per session, random as the whitepaper asks, except that the low 16 bits name a slot. The
// packet threads find the session of a received message by one load from that slot
// (native/wg_table.h), with no hash table shared between threads; the high 16 bits are random,
// so an index is not guessed from the count of sessions.
import { randomBytes } from 'node:crypto'

/** Indexes live at once; past it no handshake starts (5,000 peers use three each at most). */
export const SLOTS = 1 << 16

export class IndexTable<T> {
  private readonly entries = new Map<number, T>()
  private readonly free: number[] = [] // slots below next, unused
  private next = 0 // slots below it have been handed out (or claimed) once
  private readonly used = new Uint8Array(SLOTS) // claim() may take a slot at or past next

  /** A new index for entry, or undefined when every slot is taken. */
  add (entry: T): number | undefined {
    let slot = this.free.pop()
    while (slot === undefined && this.next < SLOTS) {
      const s = this.next++
      if (this.used[s] === 0) slot = s
    }
    if (slot === undefined) return undefined
    this.used[slot] = 1
    const index = ((randomBytes(2).readUInt16LE(0) << 16) | slot) >>> 0
    this.entries.set(index, entry)
    return index
  }

  /** Takes this very index (a handover's successor keeps its predecessor's): false if its slot is taken. */
  claim (index: number, entry: T): boolean {
    const slot = index & (SLOTS - 1)
    if (this.used[slot] !== 0) return false
    this.used[slot] = 1
    const i = slot < this.next ? this.free.indexOf(slot) : -1
    if (i >= 0) this.free.splice(i, 1)
    this.entries.set(index >>> 0, entry)
    return true
  }

  get (index: number): T | undefined {
    return this.entries.get(index)
  }

  /** Replaces the entry of an index already taken. */
  set (index: number, entry: T): void {
    if (this.entries.has(index)) this.entries.set(index, entry)
  }

  delete (index: number): void {
    if (!this.entries.delete(index)) return
    const slot = index & (SLOTS - 1)
    this.used[slot] = 0
    if (slot < this.next) this.free.push(slot) // past next, add() reaches it in turn
  }

  get size (): number {
    return this.entries.size
  }

  [Symbol.iterator] (): IterableIterator<[number, T]> {
    return this.entries[Symbol.iterator]()
  }
}
