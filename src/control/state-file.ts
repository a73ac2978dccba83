// The last known peer table on disk, so a restarted daemon forwards at once, before
// its source answers. msgpack, written to a temporary file and renamed over the old
// one: a crash mid-write leaves the previous table, never half of one.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { pack, unpack } from 'msgpackr'
import { fromWire, type SourceName, toWire, type VtepRecord } from './vtep.js'

const SCHEMA = 1
const SOURCES: SourceName[] = ['static', 'channel', 'kubernetes', 'etcd']

export function defaultStateFile (nodeName: string): string {
  return `/var/lib/flatnet/${nodeName}.peers`
}

// Each record's wire form, kept while the record lives: the peer table replaces a record when
// its peer changes and never edits one, so a save after a change formats that record alone,
// not every record of a large cluster's table again.
const wireForms = new WeakMap<VtepRecord, unknown>()

/** The table's wire form, each record with the source that owns it: the file's, and what a daemon hands its successor. */
export function tableToWire (records: VtepRecord[]): unknown[] {
  return records.map((r) => {
    let w = wireForms.get(r)
    if (w === undefined) {
      w = { ...toWire(r), src: r.source }
      wireForms.set(r, w)
    }
    return w
  })
}

/** Checks an untrusted wire table; throws naming where it came from and what is wrong. */
export function tableFromWire (peers: unknown[], from: string): VtepRecord[] {
  return peers.map((p) => {
    const src = (p as { src?: unknown })?.src
    const r = fromWire(p, SOURCES.includes(src as SourceName) ? src as SourceName : 'static')
    if (typeof r === 'string') throw new Error(`${from}: ${r}`)
    return r
  })
}

export function saveTable (file: string, records: VtepRecord[]): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, pack({ v: SCHEMA, savedAt: Date.now(), peers: tableToWire(records) }), { mode: 0o600 })
  renameSync(tmp, file)
}

/** The saved records; [] when there is no file. Throws (with the reason) on a damaged one. */
export function loadTable (file: string): VtepRecord[] {
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const doc = unpack(bytes) as { v?: unknown, peers?: unknown }
  if (doc?.v !== SCHEMA || !Array.isArray(doc.peers)) throw new Error(`${file}: not a flatnet peer table (schema ${SCHEMA})`)
  return tableFromWire(doc.peers, file)
}

/** Writes after changes settle: a burst of updates costs one write. */
export function persistOnChange (file: string, records: () => VtepRecord[], onError: (err: Error) => void,
  delayMs = 200): { schedule: () => void, flush: () => void } {
  let timer: NodeJS.Timeout | undefined
  const flush = (): void => {
    if (timer) clearTimeout(timer)
    timer = undefined
    try {
      saveTable(file, records())
    } catch (err) {
      onError(err as Error)
    }
  }
  return {
    schedule: () => { timer ??= setTimeout(flush, delayMs) },
    flush: () => { if (timer) flush() },
  }
}
