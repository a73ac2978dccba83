// A watch response split into its lines (one JSON event each), bounded: a line that grows
// past maxLineBytes fails before more of it is kept, so a broken or hostile server cannot
// make one line fill memory. A line's bytes are joined before they are decoded, so a UTF-8
// character split between chunks survives.

const LF = 0x0a
const CR = 0x0d

export class LineReader {
  private parts: Buffer[] = [] // the unfinished line: slices of chunks, not copies
  private size = 0
  private failed?: Error

  /**
   * onLine is called from write() and end(), synchronously, with each non-empty line (a
   * trailing \r dropped). Do not reuse a chunk's memory after writing it. After a throw
   * (the reader's or onLine's), every later call throws the same error.
   */
  constructor (private readonly onLine: (line: string) => void, private readonly maxLineBytes: number) {}

  write (chunk: Buffer): void {
    if (this.failed) throw this.failed
    try {
      let start = 0
      for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, start)) {
        this.line(chunk, start, nl)
        start = nl + 1
      }
      if (start < chunk.length) this.keep(chunk, start)
    } catch (err) {
      this.fail(err as Error)
    }
  }

  /** Delivers a last line that had no newline. */
  end (): void {
    if (this.failed) throw this.failed
    try {
      if (this.size > 0) this.line(Buffer.alloc(0), 0, 0)
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private fail (err: Error): never {
    this.failed = err
    this.parts = []
    throw err
  }

  // A line is the kept parts and chunk[start, end).
  private line (chunk: Buffer, start: number, end: number): void {
    let size = this.size + end - start
    const last = end > start ? chunk[end - 1] : this.parts.at(-1)?.at(-1)
    if (last === CR) size--
    if (size > this.maxLineBytes) throw this.tooLong()
    let text = ''
    if (this.parts.length === 0) {
      text = chunk.toString('utf8', start, start + size)
    } else {
      this.parts.push(chunk.subarray(start, end))
      text = Buffer.concat(this.parts, this.size + end - start).toString('utf8', 0, size)
      this.parts = []
      this.size = 0
    }
    if (size > 0) this.onLine(text)
  }

  private keep (chunk: Buffer, start: number): void {
    const size = this.size + chunk.length - start
    // One byte over is still a line within the bound if it is the \r of a \r\n.
    if (size > this.maxLineBytes && !(size === this.maxLineBytes + 1 && chunk[chunk.length - 1] === CR)) throw this.tooLong()
    this.parts.push(start === 0 ? chunk : chunk.subarray(start))
    this.size = size
  }

  private tooLong (): Error {
    return new Error(`a watch line is longer than the limit of ${this.maxLineBytes} bytes (maxLineBytes)`)
  }
}
