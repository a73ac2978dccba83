// etcd v3 as the peer store, as flannel uses it: one key per node under a prefix
// (value: the VTEP record as JSON), bound to a lease the daemon keeps alive, so a
// node that dies disappears when its lease runs out; a graceful stop revokes it.
// Spoken over etcd's JSON gateway (/v3/...) with node:http(s): no gRPC dependency.
// With TLS (a CA, a client certificate) and etcd's own auth (a token from
// /v3/auth/authenticate, sent as Authorization and renewed when etcd refuses it), as
// flannel and Calico speak to an etcd that requires client authentication.
//
// Loop: grant lease + put own key, range the prefix (a full snapshot), watch from
// the next revision; on any failure (etcd down, watch compacted) start over after a
// pause. The peer table is left as it is meanwhile: forwarding goes on.
import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { Logger } from '../log.js'
import { Backoff } from './backoff.js'
import type { EtcdConfig } from './config.js'
import type { PeerSink, PeerSource } from './source.js'
import { fromWire, toWire, type VtepRecord } from './vtep.js'

const CALL_TIMEOUT_MS = 2000
const MAX_REPLY = 64 << 20 // a range of every node's record: 5,000 x ~300 bytes, base64, with room

interface Kv { key?: string, value?: string, mod_revision?: string }

export class EtcdSource implements PeerSource {
  readonly name = 'etcd'
  private readonly backoff = new Backoff()
  private sink?: PeerSink
  private stopped = false
  private lease?: string
  private watchAbort?: AbortController
  private keepalive?: NodeJS.Timeout
  private endpoint = 0
  private loop?: Promise<void>
  private agent: HttpAgent | HttpsAgent = new HttpAgent({ keepAlive: true })
  private token?: string // etcd auth's, while it is valid
  private readonly counts = { resyncs: 0, events: 0, errors: 0, lease_grants: 0, bad_record: 0 }

  constructor (private readonly config: EtcdConfig, private readonly self: VtepRecord, private readonly log: Logger) {}

  async start (sink: PeerSink): Promise<void> {
    this.sink = sink
    this.loop = this.run()
  }

  async stop ({ withdraw = true } = {}): Promise<void> {
    this.stopped = true
    clearInterval(this.keepalive)
    this.watchAbort?.abort()
    // Revoking the lease deletes our key: every peer withdraws us at once. A successor's
    // put moves the key to its own lease; ours then expires with nothing attached.
    if (this.lease && withdraw) await this.call('/v3/lease/revoke', { ID: this.lease }).catch(() => {})
    await this.loop
    this.agent.destroy() // its kept-alive sockets would hold the process open
  }

  stats (): Record<string, number> {
    return { ...this.counts }
  }

  up (): boolean {
    return this.lease !== undefined && this.watchAbort !== undefined && !this.watchAbort.signal.aborted
  }

  private async run (): Promise<void> {
    while (!this.stopped) {
      try {
        this.connect()
        await this.register()
        const revision = await this.snapshot()
        this.backoff.reset()
        await this.watch(revision + 1)
      } catch (err) {
        if (this.stopped) break
        this.counts.errors++
        this.log.warn({ endpoint: this.url(), err: (err as Error).message }, 'etcd unavailable; keeping the last known peers, retrying')
        this.endpoint = (this.endpoint + 1) % this.config.endpoints.length
        await new Promise((resolve) => setTimeout(resolve, this.backoff.next()))
      }
    }
  }

  /** A lease (reused while it lives) and our key bound to it. */
  private async register (): Promise<void> {
    if (this.lease) {
      const ka = await this.call('/v3/lease/keepalive', { ID: this.lease }) as { result?: { TTL?: string } }
      if (!ka.result?.TTL || ka.result.TTL === '0') this.lease = undefined // expired while etcd was away
    }
    if (!this.lease) {
      const grant = await this.call('/v3/lease/grant', { TTL: this.config.ttlSeconds }) as { ID: string }
      this.lease = grant.ID
      this.counts.lease_grants++
    }
    await this.call('/v3/kv/put', {
      key: b64(this.config.prefix + this.self.nodeName),
      value: b64(JSON.stringify(toWire(this.self))),
      lease: this.lease,
    })
    clearInterval(this.keepalive)
    // A third of the TTL: two keepalives may fail before the key expires.
    this.keepalive = setInterval(() => {
      if (!this.lease) return
      this.call('/v3/lease/keepalive', { ID: this.lease }).then((r) => {
        const ttl = (r as { result?: { TTL?: string } }).result?.TTL
        if (!ttl || ttl === '0') { this.lease = undefined; this.watchAbort?.abort() } // lost: re-register
      }, () => {})
    }, this.config.ttlSeconds * 1000 / 3)
  }

  private async snapshot (): Promise<number> {
    const res = await this.call('/v3/kv/range', { key: b64(this.config.prefix), range_end: b64(prefixEnd(this.config.prefix)) }) as
      { header: { revision: string }, kvs?: Kv[] }
    const records = (res.kvs ?? []).map((kv) => this.record(kv)).filter((r): r is VtepRecord => r !== undefined)
    this.sink?.resync('etcd', records)
    this.counts.resyncs++
    this.log.info({ peers: records.length, revision: res.header.revision }, 'etcd peers listed')
    return Number(res.header.revision)
  }

  private async watch (fromRevision: number): Promise<void> {
    this.watchAbort = new AbortController()
    const res = await this.post('/v3/watch',
      { create_request: { key: b64(this.config.prefix), range_end: b64(prefixEnd(this.config.prefix)), start_revision: String(fromRevision) } },
      this.watchAbort.signal)
    if (res.statusCode !== 200) {
      res.resume()
      throw new Error(`watch: HTTP ${String(res.statusCode)}`)
    }
    res.setEncoding('utf8')
    let buffered = ''
    for await (const chunk of res as AsyncIterable<string>) {
      buffered += chunk
      if (buffered.length > MAX_REPLY) throw new Error(`watch: a message over ${MAX_REPLY} bytes`)
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0 || (nl = endOfJson(buffered)) > 0) {
        const line = buffered.slice(0, nl).trim()
        buffered = buffered.slice(nl + (buffered[nl] === '\n' ? 1 : 0))
        if (line) this.onWatch(JSON.parse(line))
      }
    }
    throw new Error('watch stream ended')
  }

  private onWatch (msg: { result?: { compact_revision?: string, canceled?: boolean, events?: Array<{ type?: string, kv: Kv }> }, error?: unknown }): void {
    const r = msg.result
    if (msg.error || !r) throw new Error(`watch error: ${JSON.stringify(msg.error ?? msg)}`)
    if ((r.compact_revision && r.compact_revision !== '0') || r.canceled) throw new Error('watch compacted or canceled: relisting')
    const set: VtepRecord[] = []
    const remove: string[] = []
    for (const e of r.events ?? []) {
      this.counts.events++
      const name = Buffer.from(e.kv.key ?? '', 'base64').toString().slice(this.config.prefix.length)
      if (e.type === 'DELETE') { remove.push(name); continue }
      const rec = this.record(e.kv)
      if (rec) set.push(rec)
    }
    if (set.length || remove.length) this.sink?.update('etcd', { set, remove })
  }

  private record (kv: Kv): VtepRecord | undefined {
    const name = Buffer.from(kv.key ?? '', 'base64').toString().slice(this.config.prefix.length)
    let parsed: unknown
    try {
      parsed = JSON.parse(Buffer.from(kv.value ?? '', 'base64').toString())
    } catch {}
    const rec = fromWire(parsed, 'etcd')
    if (typeof rec === 'string' || rec.nodeName !== name) {
      this.counts.bad_record++
      this.log.warn({ key: this.config.prefix + name, why: typeof rec === 'string' ? rec : 'key and node name differ' }, 'etcd record refused')
      return undefined
    }
    return { ...rec, version: Number(kv.mod_revision ?? 0) }
  }

  private url (): string {
    return this.config.endpoints[this.endpoint]
  }

  /** TLS material read afresh for each (re)connection, so a rotated certificate is taken up. */
  private connect (): void {
    const tls = this.config.tls
    this.agent.destroy()
    this.agent = this.url().startsWith('https:')
      ? new HttpsAgent({
        keepAlive: true,
        ca: tls?.caFile ? readFileSync(tls.caFile) : undefined, // undefined: the system's CAs
        cert: tls?.certFile ? readFileSync(tls.certFile) : undefined,
        key: tls?.keyFile ? readFileSync(tls.keyFile) : undefined,
      })
      : new HttpAgent({ keepAlive: true })
    this.token = undefined
  }

  private async post (path: string, body: unknown, signal: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(path, this.url())
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (this.token && path !== '/v3/auth/authenticate') headers.authorization = this.token
    return await new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'POST', agent: this.agent, headers, signal }, resolve)
      req.on('error', reject)
      req.end(JSON.stringify(body))
    })
  }

  private async call (path: string, body: unknown, retried = false): Promise<unknown> {
    if (this.config.username && !this.token && path !== '/v3/auth/authenticate') await this.authenticate()
    const signal = AbortSignal.timeout(CALL_TIMEOUT_MS)
    const res = await this.post(path, body, signal)
    let text = ''
    res.setEncoding('utf8')
    for await (const chunk of res as AsyncIterable<string>) {
      text += chunk
      if (text.length > MAX_REPLY) throw new Error(`${path}: a reply over ${MAX_REPLY} bytes`)
    }
    if (res.statusCode !== 200) {
      // An expired or revoked token (etcd's simple tokens live 5 min): authenticate again, once.
      if (this.config.username && !retried && /token/i.test(text)) {
        this.token = undefined
        return await this.call(path, body, true)
      }
      throw new Error(`${path}: HTTP ${String(res.statusCode)} ${text.slice(0, 200)}`)
    }
    return JSON.parse(text)
  }

  private async authenticate (): Promise<void> {
    const password = readFileSync(this.config.passwordFile as string, 'utf8').trim()
    const r = await this.call('/v3/auth/authenticate', { name: this.config.username, password }) as { token?: string }
    if (!r.token) throw new Error('/v3/auth/authenticate: no token (is auth enabled in etcd?)')
    this.token = r.token
  }
}

function b64 (s: string): string {
  return Buffer.from(s).toString('base64')
}

/** etcd's range end for "every key with this prefix": the prefix with its last byte + 1. */
function prefixEnd (prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

/** The gateway writes one JSON object per message, not always newline-terminated. */
function endOfJson (s: string): number {
  let depth = 0; let inString = false
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]
    if (inString) { if (ch === '\\') i++; else if (ch === '"') inString = false; continue }
    if (ch === '"') inString = true
    else if (ch === '{') depth++
    else if (ch === '}' && --depth === 0) return i + 1
  }
  return -1
}
