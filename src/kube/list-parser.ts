// A Kubernetes List response ({"kind":"PodList",…,"metadata":{…},"items":[{…},{…}]}) parsed
// as it arrives: each element of items is handed over once its last byte is in, so a list
// of 150,000 pods (~900 MB of JSON) is never held whole, only the item being read.
// Speed: it runs on the daemon's event loop over hundreds of MB, so the bytes go through one
// tight loop that tracks only strings and bracket depth (JSON.parse then checks each item),
// and an unfinished item is kept as slices of the chunks, copied once when it completes.

export class ListParseError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ListParseError'
  }
}

/** The List's metadata: where to watch from, and where to continue a paginated list. */
export interface ListMeta {
  resourceVersion?: string
  continue?: string
  remainingItemCount?: number
}

export interface ListParserOptions {
  /** An item whose JSON is longer than this fails the list (default 8 MiB). */
  maxItemBytes?: number
}

// The API server refuses requests over 3 MiB and etcd objects over 1.5 MiB: 8 MiB allows a
// server configured for more without letting a broken one fill memory with one item.
const DEFAULT_MAX_ITEM_BYTES = 8 << 20
// ListMeta is a resourceVersion, a continue token and a count: a few hundred bytes.
const MAX_META_BYTES = 64 << 10
const MAX_KEY_BYTES = 4 << 10

const TAB = 0x09
const LF = 0x0a
const CR = 0x0d
const SPACE = 0x20
const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const LBRACKET = 0x5b
const BACKSLASH = 0x5c
const RBRACKET = 0x5d
const LOWER_N = 0x6e
const LBRACE = 0x7b
const RBRACE = 0x7d

// Where in the document the parser is.
const BEFORE_DOC = 0 // the top-level {
const FIRST_KEY = 1 // a key or }
const NEXT_KEY = 2 // a key, after a comma
const AFTER_KEY = 3 // :
const BEFORE_VALUE = 4
const AFTER_VALUE = 5 // , or }
const FIRST_ITEM = 6 // an item or ], after items' [
const NEXT_ITEM = 7 // an item, after a comma
const AFTER_ITEM = 8 // , or ]
const COLLECTING = 9 // inside a value being collected
const DONE = 10

const EXPECTING = ['the list (a JSON object)', "a key or '}'", 'a key', "':'", 'a value', "',' or '}'", "an item or ']'", 'an item', "',' or ']'", '', 'nothing']

// What the value being collected is.
const KEY = 0
const METADATA = 1
const ITEMS_NULL = 2 // items, when it is not an array: must be null
const ITEM = 3
const OTHER = 4 // any other top-level key's value: parsed only to check it (kind, apiVersion)

export class ListParser {
  private readonly maxItemBytes: number
  private state = BEFORE_DOC
  private offset = 0 // bytes before the current chunk
  private key = '' // the top-level key whose value comes next
  private meta: ListMeta = {}
  private item = 0 // the index of the item being read, or of the next one
  private failed?: Error

  // The value being collected.
  private kind = KEY
  private limit = 0
  private start = 0 // its first byte, from the start of the body
  private parts: Buffer[] = []
  private size = 0 // bytes in parts
  private readonly value: ValueScan = { depth: 0, inString: false, escaped: false }
  private scalar = false

  /**
   * onItem is called from write(), synchronously, with each element of items as soon as
   * it is complete. write() keeps slices of chunks holding an unfinished item: do not
   * reuse a chunk's memory after writing it. After a throw (the parser's or onItem's),
   * every later call throws the same error.
   */
  constructor (private readonly onItem: (item: unknown) => void, options: ListParserOptions = {}) {
    this.maxItemBytes = options.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES
  }

  write (chunk: Buffer): void {
    if (this.failed) throw this.failed
    if (chunk.length === 0) return // a pending escape skips the next chunk's first byte: it must have one
    try {
      this.scan(chunk)
      this.offset += chunk.length
    } catch (err) {
      this.fail(err as Error)
    }
  }

  /** The list's metadata, once the whole body has been written. */
  end (): ListMeta {
    if (this.failed) throw this.failed
    if (this.state !== DONE) this.fail(new ListParseError(this.incomplete()))
    return this.meta
  }

  private fail (err: Error): never {
    this.failed = err
    this.parts = []
    throw err
  }

  private scan (buf: Buffer): void {
    const len = buf.length
    let i = this.state === COLLECTING ? this.collect(buf, 0, 0) : 0
    while (i < len) {
      const c = buf[i]
      if (c === SPACE || c === LF || c === CR || c === TAB) {
        i++
        continue
      }
      switch (this.state) {
        case BEFORE_DOC:
          if (c !== LBRACE) throw this.unexpected(c, i, 'the body is not a JSON object')
          this.state = FIRST_KEY
          i++
          break
        case FIRST_KEY:
        case NEXT_KEY:
          if (c === RBRACE && this.state === FIRST_KEY) {
            this.state = DONE
            i++
          } else if (c === QUOTE) {
            i = this.begin(KEY, MAX_KEY_BYTES, buf, i)
          } else {
            throw this.unexpected(c, i)
          }
          break
        case AFTER_KEY:
          if (c !== COLON) throw this.unexpected(c, i)
          this.state = BEFORE_VALUE
          i++
          break
        case BEFORE_VALUE:
          if (c === COMMA || c === COLON || c === RBRACE || c === RBRACKET) throw this.unexpected(c, i)
          if (this.key === 'items') {
            if (c === LBRACKET) {
              this.state = FIRST_ITEM
              i++
            } else if (c === LOWER_N) {
              i = this.begin(ITEMS_NULL, MAX_KEY_BYTES, buf, i)
            } else {
              throw this.unexpected(c, i, 'items is not an array')
            }
          } else if (this.key === 'metadata') {
            if (c !== LBRACE && c !== LOWER_N) throw this.unexpected(c, i, 'metadata is not an object')
            i = this.begin(METADATA, MAX_META_BYTES, buf, i)
          } else {
            i = this.begin(OTHER, this.maxItemBytes, buf, i)
          }
          break
        case AFTER_VALUE:
          if (c === COMMA) this.state = NEXT_KEY
          else if (c === RBRACE) this.state = DONE
          else throw this.unexpected(c, i)
          i++
          break
        case FIRST_ITEM:
        case NEXT_ITEM:
          if (c === LBRACE) {
            i = this.begin(ITEM, this.maxItemBytes, buf, i)
          } else if (c === RBRACKET && this.state === FIRST_ITEM) {
            this.state = AFTER_VALUE
            i++
          } else {
            throw this.unexpected(c, i, c === RBRACKET ? undefined : `item ${this.item} is not an object`)
          }
          break
        case AFTER_ITEM:
          if (c === COMMA) this.state = NEXT_ITEM
          else if (c === RBRACKET) this.state = AFTER_VALUE
          else throw this.unexpected(c, i)
          i++
          break
        default: // DONE
          throw this.unexpected(c, i, 'trailing bytes after the list')
      }
    }
  }

  /** Starts collecting the value whose first byte is buf[i]; returns where scanning goes on. */
  private begin (kind: number, limit: number, buf: Buffer, i: number): number {
    this.state = COLLECTING
    this.kind = kind
    this.limit = limit
    this.start = this.offset + i
    const c = buf[i]
    const v = this.value
    v.depth = c === LBRACE || c === LBRACKET ? 1 : 0
    v.inString = c === QUOTE
    v.escaped = false
    this.scalar = v.depth === 0 && !v.inString
    return this.collect(buf, i, i + 1)
  }

  /**
   * Scans from buf[i] for the end of the value being collected (whose bytes in this chunk
   * begin at from): completes it and returns the index after it, or keeps the chunk's
   * rest and returns its length.
   */
  private collect (buf: Buffer, from: number, i: number): number {
    const end = this.scalar ? scanScalar(buf, i) : scanValue(buf, i, this.value)
    const size = this.size + (end < 0 ? buf.length : end) - from
    if (size > this.limit) throw new ListParseError(`${this.what()} at byte ${this.start} is over ${this.limit} bytes`)
    if (end < 0) {
      this.parts.push(from === 0 ? buf : buf.subarray(from))
      this.size = size
      return buf.length
    }
    let text: string
    if (this.parts.length === 0) {
      text = this.text(buf, from, end)
    } else {
      this.parts.push(buf.subarray(from, end))
      text = this.text(Buffer.concat(this.parts, size), 0, size)
      this.parts = []
      this.size = 0
    }
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      throw new ListParseError(`${this.what()} at byte ${this.start} is not valid JSON: ${(err as Error).message}`, { cause: err })
    }
    this.completed(value)
    return end
  }

  private text (buf: Buffer, from: number, end: number): string {
    return this.kind === ITEM ? withoutManagedFields(buf, from, end) : buf.toString('utf8', from, end)
  }

  private completed (value: unknown): void {
    switch (this.kind) {
      case KEY:
        this.key = value as string
        this.state = AFTER_KEY
        break
      case METADATA:
        this.meta = listMeta(value)
        this.state = AFTER_VALUE
        break
      case ITEMS_NULL:
        if (value !== null) throw new ListParseError(`items at byte ${this.start} is not an array`)
        this.state = AFTER_VALUE
        break
      case ITEM:
        this.item++
        this.state = AFTER_ITEM
        // The bytes were not compact JSON (withoutManagedFields left them in): the item is the same either way.
        delete (value as { metadata?: { managedFields?: unknown } }).metadata?.managedFields
        this.onItem(value)
        break
      default:
        this.state = AFTER_VALUE
    }
  }

  private what (): string {
    switch (this.kind) {
      case KEY: return 'a key'
      case METADATA: return 'metadata'
      case ITEMS_NULL: return 'items'
      case ITEM: return `item ${this.item}`
      default: return `the value of ${JSON.stringify(this.key)}`
    }
  }

  private unexpected (c: number, i: number, problem?: string): ListParseError {
    const got = c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`
    const at = this.offset + i
    return new ListParseError(problem
      ? `${problem}: ${got} at byte ${at}`
      : `expected ${EXPECTING[this.state]}, got ${got} at byte ${at}`)
  }

  private incomplete (): string {
    const at = this.offset
    if (this.state === BEFORE_DOC) return at === 0 ? 'the body is empty' : `the body is only whitespace (${at} bytes)`
    if (this.state === COLLECTING) {
      return `the body ended at byte ${at} inside ${this.value.inString ? 'a string in ' : ''}${this.what()}, which began at byte ${this.start}`
    }
    return `the body ended at byte ${at}, expecting ${EXPECTING[this.state]}`
  }
}

/** Where scanning a value stands between chunks. */
interface ValueScan {
  depth: number
  inString: boolean
  /** A backslash was a chunk's last byte. */
  escaped: boolean
}

/**
 * Only string and bracket boundaries matter here: JSON.parse checks the rest of the value.
 * Scans from buf[i] inside a value (state s) for its end: the index after its last byte,
 * or -1 when the chunk ends first (s then says where it stands).
 */
function scanValue (buf: Buffer, i: number, s: ValueScan): number {
  const len = buf.length
  let depth = s.depth
  let inString = s.inString
  if (s.escaped) {
    s.escaped = false
    i++
  }
  while (i < len) {
    if (inString) {
      let c = 0
      while (i < len) {
        c = buf[i++]
        if (c === QUOTE) break
        if (c === BACKSLASH) {
          if (i === len) s.escaped = true
          else i++
        }
      }
      if (c !== QUOTE) break // the chunk ended inside the string
      inString = false
      if (depth === 0) return i
      continue
    }
    const c = buf[i++]
    if (c === QUOTE) {
      inString = true
    } else if (c === LBRACE || c === LBRACKET) {
      depth++
    } else if (c === RBRACE || c === RBRACKET) {
      if (--depth === 0) return i
    }
  }
  s.depth = depth
  s.inString = inString
  return -1
}

// metadata.managedFields is ~40% of a Pod's JSON and most of its objects, and the daemon
// never reads it: items are handed over without it. In compact JSON, as the API server
// writes it, it is cut from the item's bytes before JSON.parse, which then takes half the
// time. Unescaped, these bytes can only be a key whose value is an array: inside a
// string every quote is escaped, and only metadata has a field of that name.
const MANAGED_FIELDS = Buffer.from('"managedFields":[')

/** The item buf[from, end) as text, without its managedFields and their comma. */
function withoutManagedFields (buf: Buffer, from: number, end: number): string {
  const at = buf.indexOf(MANAGED_FIELDS, from)
  if (at < 0 || at >= end) return buf.toString('utf8', from, end)
  const after = scanValue(buf.subarray(0, end), at + MANAGED_FIELDS.length, { depth: 1, inString: false, escaped: false })
  if (after < 0) return buf.toString('utf8', from, end) // unterminated: JSON.parse says what is wrong with it
  if (buf[at - 1] === COMMA) return buf.toString('utf8', from, at - 1) + buf.toString('utf8', after, end)
  if (buf[after] === COMMA) return buf.toString('utf8', from, at) + buf.toString('utf8', after + 1, end)
  return buf.toString('utf8', from, at) + buf.toString('utf8', after, end)
}

// A number, true, false or null ends at the first byte that cannot be part of it.
function scanScalar (buf: Buffer, i: number): number {
  for (const len = buf.length; i < len; i++) {
    const c = buf[i]
    if (c === COMMA || c === RBRACE || c === RBRACKET || c === SPACE || c === LF || c === CR || c === TAB) return i
  }
  return -1
}

function listMeta (m: unknown): ListMeta {
  if (m === null) return {}
  if (typeof m !== 'object' || Array.isArray(m)) throw new ListParseError('metadata is not an object')
  const { resourceVersion, continue: token, remainingItemCount } = m as Record<string, unknown>
  const meta: ListMeta = {}
  if (typeof resourceVersion === 'string') meta.resourceVersion = resourceVersion
  else if (resourceVersion != null) throw new ListParseError(`metadata.resourceVersion is not a string: ${JSON.stringify(resourceVersion)}`)
  if (typeof token === 'string') meta.continue = token
  else if (token != null) throw new ListParseError(`metadata.continue is not a string: ${JSON.stringify(token)}`)
  if (typeof remainingItemCount === 'number' && Number.isInteger(remainingItemCount) && remainingItemCount >= 0) {
    meta.remainingItemCount = remainingItemCount
  } else if (remainingItemCount != null) {
    throw new ListParseError(`metadata.remainingItemCount is not a count: ${JSON.stringify(remainingItemCount)}`)
  }
  return meta
}
