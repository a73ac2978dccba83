// One kind's objects kept current from the API server, as client-go's reflector does
// it: a paginated LIST, then a WATCH from the list's resourceVersion with bookmarks,
// resumed after every normal close; a full relist only after 410 Gone (the resume
// point expired). Objects are projected on arrival to the few fields the daemon uses
// and the raw JSON dropped, so memory follows the projection, not the object's size.
// Failures back off exponentially with jitter from the last failure, and the backoff
// resets only after a list completes or a watch delivers: no relist storm when an API
// server keeps failing, no periodic relist.
import type { IncomingMessage } from 'node:http'
import { isDeepStrictEqual } from 'node:util'
import type { Logger } from '../log.js'
import { Backoff } from '../control/backoff.js'
import { KubeError, type KubeClient } from './client.js'
import { internString } from './intern.js'
import { LineReader } from './line-reader.js'
import { ListParser } from './list-parser.js'
import { slicer } from '../slicer.js'
import { joinKey, KeyedStore, splitKey } from './store.js'

export interface ReflectorSink<T> {
  /** An object added or changed (from a list page or a watch event); previous: what the store held. */
  set: (key: string, value: T, previous: T | undefined) => void
  delete: (key: string, previous: T | undefined) => void
  /**
   * An object whose projection is what the store holds (a relist, or a change to fields the
   * daemon does not read): the store is already current at its resourceVersion.
   */
  unchanged?: (key: string) => void
  /** An object refused by the projection (the store keeps its last good value, if any). */
  refused?: (key: string, why: string) => void
  /** A list completed: the store now holds exactly what the API server listed. */
  synced: () => void
  /** A list or watch failed; the store keeps what it had. */
  failed?: (err: Error) => void
  /** After a failure: a list completed or a watch connected again. */
  recovered?: () => void
}

export interface ReflectorOptions<T> {
  client: KubeClient
  /** The kind, for logs and errors: 'Pod'. */
  kind: string
  /** The collection: '/api/v1/pods'. */
  path: string
  /** The fields kept; throws (a message naming the field) to refuse the object. */
  project: (raw: unknown) => T
  /**
   * What to hold for a refused object that has no last good version, if anything: a
   * stand-in that fails closed (a NetworkPolicy isolating what it would select).
   */
  standIn?: (raw: unknown) => T | undefined
  sink: ReflectorSink<T>
  log: Logger
  pageSize?: number
  /** Each watch's timeoutSeconds: jittered so a cluster's daemons do not re-watch in step. */
  watchSeconds?: () => number
  backoff?: Backoff
  /** Waits between retries; tests pass one that records the schedule. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

// The page size client-go's pager uses (500): a page of Pods is ~3 MB of JSON.
const PAGE_SIZE = 500
// One watch event is one object; etcd caps an object at 1.5 MiB.
const MAX_EVENT_BYTES = 4 << 20
// A list page that stalls this long has failed.
const LIST_IDLE_MS = 60_000
// The watch carries bookmarks about once a minute; silence well past timeoutSeconds is a dead connection.
const WATCH_GRACE_S = 30
// A watch closed sooner than this without a single event is a failing server, not a timeout.
const WATCH_MIN_MS = 1000

export interface ReflectorStats { lists: number, pages: number, watches: number, events: number, relists: number, errors: number, refused: number }

export class Reflector<T> {
  /** The projected objects, by namespace/name (name for cluster-scoped kinds). */
  readonly store = new KeyedStore<T>()
  /** Objects refused by the projection, with why; a refused update keeps the last good value in the store. */
  readonly refused = new Map<string, string>()
  /** The resourceVersion the store reflects; undefined until listed and after a 410. */
  resourceVersion?: string
  /** A list has completed at least once. */
  listed = false
  /** The last failure while it lasts: cleared when a list completes or a watch connects. */
  error?: string
  readonly stats: ReflectorStats = { lists: 0, pages: 0, watches: 0, events: 0, relists: 0, errors: 0, refused: 0 }
  private readonly abort = new AbortController()
  private readonly backoff: Backoff
  private running?: Promise<void>

  constructor (private readonly o: ReflectorOptions<T>) {
    this.backoff = o.backoff ?? new Backoff(1000, 30_000)
  }

  start (): void {
    this.running ??= this.run()
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.running
  }

  private async run (): Promise<void> {
    const { log, kind } = this.o
    const sleep = this.o.sleep ?? abortableSleep
    while (!this.abort.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) {
          await this.list()
          this.backoff.reset()
        }
        const outcome = await this.watch()
        if (outcome === 'gone') {
          this.stats.relists++
          this.resourceVersion = undefined
          log.info({ kind }, 'watch expired (410 Gone); relisting')
        } else if (outcome === 'delivered') {
          this.backoff.reset()
        } else if (outcome === 'empty-early') {
          throw new Error('the API server closed the watch at once')
        }
      } catch (err) {
        if (this.abort.signal.aborted) break
        const e = err as Error
        // 410 Gone as the answer's status rather than a watch event: the resume point is gone too.
        if (e instanceof KubeError && e.code === 410 && this.resourceVersion !== undefined) {
          this.stats.relists++
          this.resourceVersion = undefined
        }
        this.error = e.message
        this.stats.errors++
        this.o.sink.failed?.(e)
        const ms = this.backoff.next()
        log.warn({ kind, err: e.message, retryMs: Math.round(ms) }, this.listed ? 'watch failed; keeping the last objects' : 'list failed')
        await sleep(ms, this.abort.signal)
      }
    }
  }

  private recovered (): void {
    if (this.error === undefined) return
    this.error = undefined
    this.o.sink.recovered?.()
  }

  /** The object's namespace ('' for cluster-scoped kinds) and name, or undefined when it has no name. */
  private idOf (raw: unknown): [namespace: string, name: string] | undefined {
    const m = (raw as { metadata?: { name?: unknown, namespace?: unknown } } | null)?.metadata
    if (typeof m?.name !== 'string' || m.name === '') return undefined
    return [typeof m.namespace === 'string' ? internString(m.namespace) : '', m.name]
  }

  /** Projects and stores one object; returns its namespace and name, or undefined when it has none. */
  private apply (raw: unknown): [namespace: string, name: string] | undefined {
    const id = this.idOf(raw)
    if (id === undefined) {
      this.stats.refused++
      return undefined
    }
    const [namespace, name] = id
    const key = joinKey(namespace, name)
    let value: T
    try {
      value = this.o.project(raw)
    } catch (err) {
      this.stats.refused++
      this.refused.set(key, (err as Error).message)
      this.o.sink.refused?.(key, (err as Error).message)
      const held = this.store.getIn(namespace, name)
      const standIn = held === undefined ? this.o.standIn?.(raw) : undefined
      if (standIn !== undefined) {
        this.store.setIn(namespace, name, standIn)
        this.o.sink.set(key, standIn, undefined)
      }
      this.o.log.warn({ kind: this.o.kind, object: key, err: (err as Error).message },
        held !== undefined ? 'object refused; its last good version stays' : standIn !== undefined ? 'object refused; a stand-in that fails closed is held' : 'object refused')
      return id
    }
    if (this.refused.size > 0) this.refused.delete(key)
    const previous = this.store.getIn(namespace, name)
    // The object held stays when nothing the daemon reads changed: no work downstream, and in
    // a relist the new copies die young instead of the held ones turning to old garbage.
    if (previous !== undefined && isDeepStrictEqual(previous, value)) {
      this.o.sink.unchanged?.(key)
      return id
    }
    // Stored under the new object's own name string, so the old one goes with the old object.
    if (previous !== undefined) this.store.deleteIn(namespace, name)
    this.store.setIn(namespace, name, value)
    this.o.sink.set(key, value, previous)
    return id
  }

  private remove (namespace: string, name: string): void {
    const key = joinKey(namespace, name)
    const known = this.refused.delete(key)
    const previous = this.store.getIn(namespace, name)
    if (this.store.deleteIn(namespace, name) || known) this.o.sink.delete(key, previous)
  }

  private async list (): Promise<void> {
    const { client, path } = this.o
    // The names held before, struck off as the list names them: what remains was deleted while
    // nobody watched. Each namespace's names sorted, with a mark each: a relist of 150,000
    // pods then costs an array of the store's own strings, not a hash set of them.
    const held = new Map<string, { names: string[], seen: Uint8Array }>()
    for (const [namespace, names] of this.store.namespaces()) {
      const sorted = [...names.keys()].sort()
      held.set(namespace, { names: sorted, seen: new Uint8Array(sorted.length) })
    }
    const unseenRefused = new Set(this.refused.keys())
    let token: string | undefined
    let rv: string | undefined
    this.stats.lists++
    do {
      // No resourceVersion: a consistent read, which the API server serves from its watch
      // cache since 1.31 (ConsistentListFromCache) and which honours limit/continue.
      const res = await client.request('GET', path, { query: { limit: this.o.pageSize ?? PAGE_SIZE, continue: token }, idleMs: LIST_IDLE_MS, signal: this.abort.signal })
      const parser = new ListParser((item) => {
        const id = this.apply(item)
        if (id === undefined) return
        const h = held.get(id[0])
        const i = h === undefined ? -1 : sortedIndex(h.names, id[1])
        if (i >= 0) (h as { seen: Uint8Array }).seen[i] = 1
        if (unseenRefused.size > 0) unseenRefused.delete(joinKey(...id))
      })
      await drain(res, (chunk) => parser.write(chunk))
      const meta = parser.end()
      this.stats.pages++
      token = meta.continue === '' ? undefined : meta.continue
      rv = meta.resourceVersion
    } while (token !== undefined)
    if (rv === undefined || rv === '') throw new KubeError(200, 'BadResponse', `${path}: the list has no metadata.resourceVersion`)
    for (const [namespace, h] of held) h.names.forEach((name, i) => { if (h.seen[i] === 0) this.remove(namespace, name) })
    for (const key of unseenRefused) this.remove(...splitKey(key))
    this.resourceVersion = rv
    this.listed = true
    this.recovered()
    this.o.sink.synced()
  }

  private async watch (): Promise<'gone' | 'delivered' | 'empty' | 'empty-early'> {
    const { client, path, kind } = this.o
    const seconds = this.o.watchSeconds?.() ?? Math.round(300 + Math.random() * 300)
    const started = performance.now()
    const res = await client.request('GET', path, {
      query: { watch: 1, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: seconds },
      idleMs: (seconds + WATCH_GRACE_S) * 1000,
      signal: this.abort.signal,
    })
    this.stats.watches++
    this.recovered()
    let lines = 0
    let gone = false
    const reader = new LineReader((line) => {
      if (gone) return
      lines++
      const e = parseEvent(line, kind)
      if (e.type === 'ERROR') {
        if (e.code === 410) { gone = true; return }
        throw new KubeError(e.code, e.reason, `watch ${path}: ${e.code} ${e.reason}: ${e.message}`)
      }
      this.stats.events++
      // First: what the sink is told reflects this event's resourceVersion.
      if (e.resourceVersion) this.resourceVersion = e.resourceVersion
      if (e.type === 'DELETED') {
        const id = this.idOf(e.object)
        if (id !== undefined) this.remove(...id)
      } else if (e.type !== 'BOOKMARK') {
        this.apply(e.object)
      }
    }, MAX_EVENT_BYTES)
    await drain(res, (chunk) => {
      reader.write(chunk)
      if (gone) res.destroy()
    }).catch((err) => { if (!gone) throw err })
    if (gone) return 'gone'
    reader.end()
    if (lines > 0) return 'delivered'
    return performance.now() - started < WATCH_MIN_MS ? 'empty-early' : 'empty'
  }
}

/** The index of name in names (sorted), or -1. */
function sortedIndex (names: string[], name: string): number {
  let lo = 0
  let hi = names.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const v = names[mid]
    if (v === name) return mid
    if (v < name) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

interface WatchEvent { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR', object: unknown, resourceVersion?: string, code: number, reason: string, message: string }

/** One watch line: {"type": ..., "object": ...}; ERROR carries a Status. Anything else fails the watch. */
function parseEvent (line: string, kind: string): WatchEvent {
  let j: { type?: unknown, object?: unknown }
  try {
    j = JSON.parse(line)
  } catch {
    throw new KubeError(200, 'BadWatchEvent', `watch of ${kind}: an event that is not JSON`)
  }
  const type = j?.type
  if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK' && type !== 'ERROR') {
    throw new KubeError(200, 'BadWatchEvent', `watch of ${kind}: unknown event type ${JSON.stringify(type)?.slice(0, 40)}`)
  }
  const o = (j.object ?? {}) as { code?: unknown, reason?: unknown, message?: unknown, metadata?: { resourceVersion?: unknown } }
  const rv = o.metadata?.resourceVersion
  return {
    type,
    object: j.object,
    resourceVersion: typeof rv === 'string' && rv !== '' ? rv : undefined,
    code: typeof o.code === 'number' ? o.code : 0,
    reason: typeof o.reason === 'string' ? o.reason : 'Unknown',
    message: typeof o.message === 'string' ? o.message.slice(0, 300) : '',
  }
}

/** Feeds the response's chunks to fn as they arrive, giving the event loop a turn every slice (a 64 KiB chunk of Pods parses in well under one). */
async function drain (res: IncomingMessage, fn: (chunk: Buffer) => void): Promise<void> {
  // for-await hands over chunks already buffered in microtasks, all in one event-loop turn:
  // a list page arriving faster than it is parsed would hold the loop (and the health
  // probes) for tens of milliseconds.
  const turn = slicer()
  try {
    for await (const chunk of res) {
      fn(chunk as Buffer)
      await turn()
    }
  } catch (err) {
    res.destroy()
    throw err
  }
}

async function abortableSleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
