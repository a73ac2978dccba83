// A Kubernetes API server for tests and benchmarks, on 127.0.0.1 by default or any
// address in a lab namespace (kube-api-process.ts runs it as a process of its own).
// It speaks the real list/watch protocol for Nodes (the peer source) and Namespaces,
// Pods and NetworkPolicies (NetworkPolicy enforcement): chunked lists with limit and
// continue at a consistent revision, `?watch=true` streams of ADDED/MODIFIED/DELETED
// and BOOKMARK lines, 410 Expired for a resume point older than the last compaction,
// GET of one object, merge-PATCH of a Node's annotations, and injected failures for
// retry tests.
// resourceVersion is one counter for all kinds, as the real server's (etcd's revision).
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'

export interface KubeNode {
  apiVersion: 'v1'
  kind: 'Node'
  metadata: { name: string, uid: string, resourceVersion: string, creationTimestamp: string, labels: Record<string, string>, annotations: Record<string, string> }
  spec: { podCIDR?: string, podCIDRs?: string[] }
  status: { addresses: Array<{ type: string, address: string }>, conditions?: Condition[] }
}

/** A NodeCondition: the daemon sets NetworkUnavailable. */
export interface Condition { type: string, status: string, [k: string]: unknown }

/** Any object of the served kinds: its metadata is all the server reads. */
export interface KubeObject { kind: string, metadata: { name: string, namespace?: string, resourceVersion?: string, [k: string]: unknown }, [k: string]: unknown }

/** One request as the server saw it; `at` is performance.now() in the server's process. */
export interface RequestRecord { at: number, method: string, kind?: string, watch: boolean, query: Record<string, string> }

interface Event { rv: number, kind: string, line: string }
/**
 * One revision of a key: the object as JSON without kind and apiVersion (as a list's
 * items carry it); no item: deleted at rv. Kept as JSON, as etcd keeps it: 150,000
 * parsed Pods would make this process's garbage collector the cluster's bottleneck.
 */
interface Version { rv: number, item?: string }
type Change = 'ADDED' | 'MODIFIED' | 'DELETED'
interface Watch { kind: string, bookmarks: boolean, timer?: NodeJS.Timeout }
interface Failure { count: number, code: number }
type Fail = (code: number, message: string, reason?: string, extra?: Record<string, unknown>) => void

/** The collections served, by kind: their path, the kind of their list, and whether namespaced. */
const COLLECTIONS: Record<string, { path: string, plural: string, list: string, apiVersion: string, namespaced: boolean }> = {
  Node: { path: '/api/v1/nodes', plural: 'nodes', list: 'NodeList', apiVersion: 'v1', namespaced: false },
  Namespace: { path: '/api/v1/namespaces', plural: 'namespaces', list: 'NamespaceList', apiVersion: 'v1', namespaced: false },
  Pod: { path: '/api/v1/pods', plural: 'pods', list: 'PodList', apiVersion: 'v1', namespaced: true },
  NetworkPolicy: { path: '/apis/networking.k8s.io/v1/networkpolicies', plural: 'networkpolicies', list: 'NetworkPolicyList', apiVersion: 'networking.k8s.io/v1', namespaced: true },
}

// metav1.StatusReason for the codes a test may inject (k8s.io/apimachinery/pkg/api/errors).
const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
}

// The apiserver's messages (apiserver/pkg/storage/etcd3/store.go).
const CONTINUE_EXPIRED = 'The provided continue parameter is too old to display a consistent list result. ' +
  'You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. ' +
  'Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.'

// Keys as in etcd below the resource's prefix (/registry/minions/NAME, /registry/pods/NS/NAME): lists come in this order.
const keyOf = (o: { metadata: { name: string, namespace?: string } }): string =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name

// Item by item, a few writes per 64 KiB: clients see a stream as from a real server.
const CHUNK = 64 << 10

const status = (code: number, message: string, reason = REASONS[code] ?? 'Unknown', extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...extra })

/** The whole object's JSON from a stored item: kind and apiVersion first, as the server writes them. */
function whole (kind: string, item: string): string {
  const head = `{"kind":${JSON.stringify(kind)},"apiVersion":${JSON.stringify(COLLECTIONS[kind].apiVersion)}`
  return item === '{}' ? `${head}}` : `${head},${item.slice(1)}`
}

const parsed = (kind: string, item: string): KubeObject => JSON.parse(whole(kind, item)) as KubeObject

/** A version 4 UUID's shape, from the seed: uids stay the same from run to run. */
function uuidFrom (seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** Continue tokens as the apiserver makes them: base64url JSON of the list's revision and the next key. */
function encodeContinue (rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url')
}

function decodeContinue (token: string): { rv: number, start: string } | undefined {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString()) as { v?: unknown, rv?: unknown, start?: unknown }
    if (t.v !== 'meta.k8s.io/v1' || typeof t.rv !== 'number' || !Number.isInteger(t.rv) || typeof t.start !== 'string' || t.start === '') return undefined
    return { rv: t.rv, start: t.start }
  } catch {
    return undefined
  }
}

export class KubeApiServer {
  private server?: Server
  private rv = 100
  private compactedAt = 0 // resume points (watch resourceVersion, continue tokens) before this get 410
  readonly nodes = new Map<string, KubeNode>()
  // Every revision of every key since the last compaction, by kind, then key: what a continue token reads.
  private readonly history = new Map<string, Map<string, Version[]>>(Object.keys(COLLECTIONS).map((k) => [k, new Map()]))
  private readonly sortedKeys = new Map<string, string[]>() // by kind, dropped when a key comes or goes
  private readonly events: Event[] = []
  private readonly watchers = new Map<ServerResponse, Watch>()
  private readonly listFailures = new Map<string, Failure>() // by kind or '*'
  private readonly watchFailures = new Map<string, Failure>()
  readonly requests: string[] = []
  readonly requestLog: RequestRecord[] = []

  /** Listens on host:port (port 0: any free one); resolves to the server's URL. */
  async start (host = '127.0.0.1', port = 0): Promise<string> {
    const server = createServer((req, res) => this.handle(req, res))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    const a = server.address() as AddressInfo
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
  }

  async stop (): Promise<void> {
    this.closeWatches()
    await new Promise((resolve) => this.server?.close(resolve))
  }

  node (name: string, podCIDRs: string[], internalIP: string, annotations: Record<string, string> = {}): KubeNode {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, uid: `uid-${name}`, resourceVersion: '', creationTimestamp: new Date().toISOString(), labels: { 'kubernetes.io/hostname': name }, annotations },
      spec: { podCIDR: podCIDRs[0], podCIDRs },
      status: { addresses: [{ type: 'InternalIP', address: internalIP }, { type: 'Hostname', address: name }] },
    }
  }

  /** Creates or replaces a Node; returns the new resourceVersion. */
  put (n: KubeNode): number {
    return this.putObject(n as unknown as KubeObject)
  }

  /** Deletes a Node; returns the new resourceVersion (the current one if there was no such Node). */
  delete (name: string): number {
    return this.deleteObject('Node', name)
  }

  /** Creates or replaces an object of any served kind; returns the new resourceVersion. */
  putObject (o: KubeObject): number {
    const c = COLLECTIONS[o.kind]
    if (!c) throw new Error(`kind ${o.kind}: not served (${Object.keys(COLLECTIONS).join(', ')})`)
    const old = this.object(o.kind, o.metadata.name, o.metadata.namespace)
    return this.record(old ? 'MODIFIED' : 'ADDED', o, old)
  }

  /** Deletes an object; returns the new resourceVersion (the current one if there was no such object). */
  deleteObject (kind: string, name: string, namespace?: string): number {
    const o = this.object(kind, name, namespace)
    return o ? this.record('DELETED', o) : this.rv
  }

  /** The object as stored now (resourceVersion and all), or undefined. */
  object (kind: string, name: string, namespace?: string): KubeObject | undefined {
    const item = this.history.get(kind)?.get(keyOf({ metadata: { name, namespace } }))?.at(-1)?.item
    return item === undefined ? undefined : parsed(kind, item)
  }

  /** Every object of `kind` now, in key order. */
  * objectsOf (kind: string): Generator<KubeObject> {
    for (const [, item] of this.at(kind, this.rv)) yield parsed(kind, item)
  }

  resourceVersion (): number {
    return this.rv
  }

  /**
   * Forgets history: watches resuming from before now and continue tokens of lists
   * made before now get 410. The compaction takes a revision of its own here, so a
   * list made right after it is newer than the compaction and pages on normally.
   */
  compact (): void {
    this.compactedAt = ++this.rv
    this.events.length = 0
    for (const [kind, keys] of this.history) {
      for (const [key, versions] of keys) {
        const last = versions[versions.length - 1]
        if (last.item !== undefined) keys.set(key, [last]); else keys.delete(key)
      }
      this.sortedKeys.delete(kind)
    }
  }

  /** Ends every open watch, as an API server restart or timeout does. */
  closeWatches (): void {
    for (const [res, w] of this.watchers) {
      clearTimeout(w.timer)
      res.end()
    }
    this.watchers.clear()
  }

  /** A BOOKMARK at the current resourceVersion to the watches that asked for them (allowWatchBookmarks=true); the server sends others none. */
  bookmark (): void {
    for (const [res, w] of this.watchers) {
      if (!w.bookmarks) continue
      const c = COLLECTIONS[w.kind]
      res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: w.kind, apiVersion: c.apiVersion, metadata: { resourceVersion: String(this.rv) } } })}\n`)
    }
  }

  /** The next `count` lists (first pages) of `kind` ('*': any kind; count may be Infinity) answer `code` with a Status. */
  failLists (kind: string, count: number, code = 500): void {
    this.listFailures.set(kind, { count, code })
  }

  /** The next `count` watch requests of `kind` ('*': any kind; count may be Infinity) answer `code` with a Status. */
  failWatches (kind: string, count: number, code = 500): void {
    this.watchFailures.set(kind, { count, code })
  }

  private record (type: Change, o: KubeObject, old?: KubeObject): number {
    const rv = ++this.rv
    const meta = { ...o.metadata }
    // What the apiserver sets itself on create (uid, creationTimestamp), keeps on update,
    // and the label the Namespace strategy adds (kubernetes.io/metadata.name, since 1.21).
    meta.uid ??= old?.metadata.uid ?? uuidFrom(`${o.kind}/${keyOf(o)}/${rv}`)
    meta.creationTimestamp ??= old?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    if (o.kind === 'Namespace') meta.labels = { ...(meta.labels as Record<string, string> | undefined), 'kubernetes.io/metadata.name': o.metadata.name }
    meta.resourceVersion = String(rv)
    const { kind: _k, apiVersion: _a, ...rest } = o
    const item = JSON.stringify({ ...rest, metadata: meta })
    const key = keyOf(o)
    const keys = this.history.get(o.kind) as Map<string, Version[]>
    const versions = keys.get(key)
    if (!versions) {
      keys.set(key, [{ rv, item }])
      this.sortedKeys.delete(o.kind)
    } else {
      versions.push({ rv, item: type === 'DELETED' ? undefined : item })
    }
    if (o.kind === 'Node') {
      if (type === 'DELETED') this.nodes.delete(o.metadata.name)
      else this.nodes.set(o.metadata.name, parsed('Node', item) as unknown as KubeNode)
    }
    const line = `{"type":"${type}","object":${whole(o.kind, item)}}\n`
    this.events.push({ rv, kind: o.kind, line })
    for (const [res, w] of this.watchers) if (w.kind === o.kind) res.write(line)
    return rv
  }

  private keysOf (kind: string): string[] {
    let keys = this.sortedKeys.get(kind)
    if (!keys) {
      // Code unit order is etcd's byte order for the ASCII of Kubernetes names.
      keys = [...(this.history.get(kind)?.keys() ?? [])].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
      this.sortedKeys.set(kind, keys)
    }
    return keys
  }

  /** The objects of `kind` as they were at revision `rv`, from key `start` on, in key order, with each key's index among every key held. */
  private * at (kind: string, rv: number, start = ''): Generator<[string, string, number]> {
    const keys = this.keysOf(kind)
    const history = this.history.get(kind) as Map<string, Version[]>
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (keys[mid] < start) lo = mid + 1; else hi = mid
    }
    for (let i = lo; i < keys.length; i++) {
      const versions = history.get(keys[i])
      if (!versions) continue // gone by a compaction since
      let j = versions.length - 1
      while (j >= 0 && versions[j].rv > rv) j--
      const item = j >= 0 ? versions[j].item : undefined
      if (item !== undefined) yield [keys[i], item, i]
    }
  }

  private injected (failures: Map<string, Failure>, kind: string): number | undefined {
    for (const k of [kind, '*']) {
      const f = failures.get(k)
      if (!f || f.count <= 0) continue
      f.count--
      return f.code
    }
    return undefined
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x')
    const method = req.method ?? 'GET'
    const query = Object.fromEntries(url.searchParams)
    const watch = query.watch === 'true' || query.watch === '1'
    this.requests.push(`${method} ${url.pathname}${url.search}`)
    const json = (code: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(code, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(body))
    }
    const fail: Fail = (code, message, reason, extra) =>
      json(code, status(code, message, reason, extra), code === 429 ? { 'retry-after': '1' } : {})

    const kind = Object.keys(COLLECTIONS).find((k) => COLLECTIONS[k].path === url.pathname)
    const one = kind ? undefined : this.objectPath(url.pathname)
    this.requestLog.push({ at: performance.now(), method, kind: kind ?? one?.kind, watch, query })
    if (kind && method === 'GET') {
      const injected = (watch || query.continue === undefined) ? this.injected(watch ? this.watchFailures : this.listFailures, kind) : undefined
      if (injected !== undefined) return fail(injected, `injected by the test: ${watch ? 'watch' : 'list'} ${COLLECTIONS[kind].plural} fails with ${injected}`)
      if (watch) return this.watch(req, res, kind, query, fail)
      return this.list(res, kind, query, fail)
    }
    if (one && !one.status && method === 'GET') {
      const o = this.object(one.kind, one.name, one.namespace)
      if (!o) return fail(404, `${COLLECTIONS[one.kind].plural} "${one.name}" not found`)
      return json(200, o)
    }
    if (one?.kind === 'Node' && method === 'PATCH') {
      let body = ''
      req.on('data', (d) => { body += d })
      req.on('end', () => {
        const n = this.nodes.get(one.name)
        if (!n) return fail(404, `nodes "${one.name}" not found`)
        const type = String(req.headers['content-type']).split(';')[0]
        if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
          return fail(415, `unsupported patch type ${type}`)
        }
        let patch: { metadata?: { annotations?: Record<string, string | null> }, status?: { conditions?: Condition[] } }
        try {
          patch = JSON.parse(body)
        } catch (err) {
          return fail(400, `the body of the request was in an unknown format: ${(err as Error).message}`)
        }
        const annotations = { ...n.metadata.annotations }
        for (const [k, v] of Object.entries(patch.metadata?.annotations ?? {})) {
          if (v === null) delete annotations[k]; else annotations[k] = v
        }
        // The Node strategies keep status on an update of the Node and spec on one of its
        // status; metadata changes through either (pkg/registry/core/node/strategy.go).
        let conditions = n.status.conditions
        if (one.status && patch.status?.conditions !== undefined) {
          // Strategic merge: conditions merge by type; a merge patch replaces the list.
          conditions = type === 'application/merge-patch+json'
            ? patch.status.conditions
            : [...(conditions ?? []).filter((c) => !patch.status?.conditions?.some((p) => p.type === c.type)), ...patch.status.conditions]
        }
        this.put({ ...n, metadata: { ...n.metadata, annotations }, status: { ...n.status, conditions } })
        json(200, this.nodes.get(one.name))
      })
      return
    }
    fail(404, `${method} ${url.pathname}: not served by the fake`, 'NotFound')
  }

  /** /api/v1/nodes/N (and its /status), /api/v1/namespaces/N, /api/v1/namespaces/NS/pods/N, /apis/networking.k8s.io/v1/namespaces/NS/networkpolicies/N. */
  private objectPath (path: string): { kind: string, name: string, namespace?: string, status: boolean } | undefined {
    const m = /^(\/api\/v1|\/apis\/networking\.k8s\.io\/v1)\/(?:namespaces\/([^/]+)\/)?([a-z]+)\/([^/]+)(\/status)?$/.exec(path)
    if (!m) return undefined
    const [, group, namespace, plural, name, status] = m
    if (status && plural !== 'nodes') return undefined
    const kind = Object.keys(COLLECTIONS).find((k) => {
      const c = COLLECTIONS[k]
      return c.plural === plural && c.namespaced === (namespace !== undefined) && c.path === `${group}/${plural}`
    })
    return kind ? { kind, name, namespace, status: status !== undefined } : undefined
  }

  // https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
  private list (res: ServerResponse, kind: string, query: Record<string, string>, fail: Fail): void {
    const limit = query.limit === undefined ? 0 : Number(query.limit)
    if (!Number.isInteger(limit) || limit < 0) return fail(400, `limit: Invalid value: "${query.limit}": must be a non-negative integer`)
    let rv = this.rv
    let start = ''
    if (query.continue !== undefined) {
      if (query.resourceVersion !== undefined && query.resourceVersion !== '0') return fail(400, 'specifying resource version is not allowed when using continue')
      const token = decodeContinue(query.continue)
      if (!token) return fail(400, 'invalid continue token')
      if (token.rv !== -1 && token.rv < this.compactedAt) {
        // As etcd3's store: the Status carries a token to go on at the latest revision (rv -1), for a client that accepts an inconsistent list.
        return fail(410, CONTINUE_EXPIRED, 'Expired', { metadata: { continue: encodeContinue(-1, token.start) } })
      }
      if (token.rv > this.rv) return fail(400, 'invalid continue token: resource version from the future')
      if (token.rv !== -1) rv = token.rv
      start = token.start
    } else if (query.resourceVersion !== undefined && query.resourceVersion !== '0' && query.resourceVersion !== '') {
      const asked = Number(query.resourceVersion)
      if (!Number.isInteger(asked) || asked < 0) return fail(400, `resourceVersion: Invalid value: "${query.resourceVersion}"`)
      if (asked > this.rv) return fail(504, `Too large resource version: ${asked}, current: ${this.rv}`, 'Timeout')
      if (query.resourceVersionMatch === 'Exact') {
        if (asked < this.compactedAt) return fail(410, `too old resource version: ${asked} (${this.compactedAt})`, 'Expired')
        rv = asked
      }
      // NotOlderThan, the default: the current state is not older.
    }
    const c = COLLECTIONS[kind]
    const items: string[] = []
    let last = ''
    let remaining = 0
    for (const [key, item, index] of this.at(kind, rv, start)) {
      if (limit > 0 && items.length === limit) {
        // Counted from the key index, as the watch cache counts its snapshot: a scan of every
        // later key per page (O(N^2) over a whole list) would make this server, not the
        // client, the measure of a paginated list.
        remaining = this.keysOf(kind).length - index
        break
      }
      // Items without kind and apiVersion: the real server leaves them out of lists (kubernetes/kubernetes#3030).
      items.push(item)
      last = key
    }
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) }
    if (remaining > 0) {
      metadata.continue = encodeContinue(rv, `${last}\u0000`)
      metadata.remainingItemCount = remaining
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    void this.stream(res, `{"kind":"${c.list}","apiVersion":"${c.apiVersion}","metadata":${JSON.stringify(metadata)},"items":[`, items, ']}\n')
  }

  /** Writes the items in chunks of about CHUNK bytes, waiting out backpressure; gives up if the client goes. */
  private async stream (res: ServerResponse, head: string, items: string[], tail: string): Promise<void> {
    const gone = new Promise<false>((resolve) => res.once('close', () => resolve(false)))
    let chunk = head
    for (let i = 0; i < items.length; i++) {
      chunk += (i > 0 ? ',' : '') + items[i]
      if (chunk.length < CHUNK) continue
      if (!res.write(chunk) && !await Promise.race([new Promise<true>((resolve) => res.once('drain', () => resolve(true))), gone])) return
      chunk = ''
    }
    res.end(chunk + tail)
  }

  // https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
  private watch (req: IncomingMessage, res: ServerResponse, kind: string, query: Record<string, string>, fail: Fail): void {
    const rv = query.resourceVersion
    const from = Number(rv ?? 0)
    if (!Number.isInteger(from) || from < 0) return fail(400, `resourceVersion: Invalid value: "${rv ?? ''}"`)
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    res.flushHeaders() // as the API server does: a watch with nothing to report yet is still open
    if (from === 0) {
      // Unset or 0: the current state as synthetic ADDED events, then the changes.
      for (const [, item] of this.at(kind, this.rv)) res.write(`{"type":"ADDED","object":${whole(kind, item)}}\n`)
    } else {
      if (from < this.compactedAt) {
        res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, `too old resource version: ${rv} (${this.compactedAt})`, 'Expired') })}\n`)
        return
      }
      for (const e of this.events) if (e.rv > from && e.kind === kind) res.write(e.line)
    }
    const w: Watch = { kind, bookmarks: query.allowWatchBookmarks === 'true' || query.allowWatchBookmarks === '1' }
    const timeout = Number(query.timeoutSeconds)
    if (query.timeoutSeconds !== undefined && Number.isFinite(timeout) && timeout > 0) {
      // The server ends the watch cleanly when its timeoutSeconds run out; the client re-watches from its last resourceVersion.
      w.timer = setTimeout(() => {
        this.watchers.delete(res)
        res.end()
      }, timeout * 1000)
    }
    this.watchers.set(res, w)
    req.on('close', () => {
      clearTimeout(w.timer)
      this.watchers.delete(res)
    })
  }
}

// The names the tests knew it by (test/fixtures/fake-kube-api.ts re-exports them).
export { KubeApiServer as FakeKubeApi }
export type FakeNode = KubeNode
export type FakeObject = KubeObject

export function kubeconfigFor (server: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'fake',
    clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }], // plain HTTP: the client insists on this flag
    users: [{ name: 'fake', user: { token: 'fake-token' } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
  })
}
