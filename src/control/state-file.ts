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

export function saveTable (file: string, records: VtepRecord[]): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, pack({ v: SCHEMA, savedAt: Date.now(), peers: records.map((r) => ({ ...toWire(r), src: r.source })) }),
    { mode: 0o600 })
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
  return doc.peers.map((p: Record<string, unknown>) => {
    const source = SOURCES.includes(p.src as SourceName) ? p.src as SourceName : 'static'
    const r = fromWire(p, source)
    if (typeof r === 'string') throw new Error(`${file}: ${r}`)
    return r
  })
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
