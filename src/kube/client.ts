// HTTP(S) requests to the API server, streamed: a response is handed over as it
// arrives (lists are parsed item by item, watches line by line), never read whole.
// Errors carry the API's Status (code, reason, message) so callers can tell 410 Gone
// (resume point expired: relist) from everything else (back off, retry).
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { readFile } from 'node:fs/promises'
import { type KubeEndpoint, loadKubeEndpoint } from './config.js'

/** A failed request: the HTTP status (0 when none came back) and the API's Status reason and message. */
export class KubeError extends Error {
  /** The API's Status message, or the connection's error, without the request. */
  readonly detail: string

  constructor (readonly code: number, readonly reason: string, message: string, detail?: string) {
    super(message)
    this.name = 'KubeError'
    this.detail = detail ?? message
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  contentType?: string
  /** No bytes for this long: the request fails (a silent API server must not hang a watch forever). */
  idleMs?: number
  signal?: AbortSignal
}

// A Status body is small; anything past this is not read (a hostile or broken server).
const STATUS_BYTES = 64 << 10
// Bodies read whole (a single object, a patch response): a Node is ~14 KB; etcd caps objects at 1.5 MiB.
const OBJECT_BYTES = 4 << 20
// A single object's answer: a silent API server must not hang a patch forever.
const OBJECT_IDLE_MS = 30_000
// Projected service account tokens rotate; client-go re-reads the file at most once a minute.
const TOKEN_REREAD_MS = 60_000

export class KubeClient {
  private readonly agent: HttpAgent
  private readonly https: boolean
  private token?: { value: string, readAt: number }

  constructor (readonly endpoint: KubeEndpoint) {
    this.https = endpoint.server.startsWith('https:')
    // Few sockets: one daemon holds a watch per kind and now and then a list or a patch.
    const common = { keepAlive: true, maxSockets: 8 }
    this.agent = this.https
      ? new HttpsAgent({ ...common, ca: endpoint.ca, cert: endpoint.cert, key: endpoint.key, rejectUnauthorized: !endpoint.insecure, servername: endpoint.servername })
      : new HttpAgent(common)
  }

  static load (kubeconfig?: string): KubeClient {
    return new KubeClient(loadKubeEndpoint(kubeconfig))
  }

  /** Resolves with the response once a 2xx status has arrived; rejects with KubeError otherwise. */
  async request (method: string, path: string, o: RequestOptions = {}): Promise<IncomingMessage> {
    const url = new URL(this.endpoint.server + path)
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'flatnet' }
    const auth = await this.authorization()
    if (auth) headers.authorization = auth
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body))
    if (body) {
      headers['content-type'] = o.contentType ?? 'application/json'
      headers['content-length'] = String(body.length)
    }
    const send = this.https ? httpsRequest : httpRequest
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent, signal: o.signal }, resolve)
      req.on('error', (err) => reject(new KubeError(0, 'ConnectionFailed', `${method} ${url.pathname}: ${err.message}`, err.message)))
      if (o.idleMs) req.setTimeout(o.idleMs, () => req.destroy(new Error(`no answer for ${o.idleMs} ms`)))
      req.end(body)
    })
    const code = res.statusCode ?? 0
    if (code >= 200 && code < 300) return res
    const text = await readBody(res, STATUS_BYTES).catch(() => '')
    throw statusError(code, text, `${method} ${url.pathname}`)
  }

  /** A request whose answer is one object, read whole (bounded) and parsed. */
  async json (method: string, path: string, o: RequestOptions = {}): Promise<unknown> {
    const res = await this.request(method, path, { idleMs: OBJECT_IDLE_MS, ...o })
    const text = await readBody(res, OBJECT_BYTES)
    try {
      return JSON.parse(text)
    } catch {
      throw new KubeError(res.statusCode ?? 0, 'BadResponse', `${method} ${path}: the API server's answer is not JSON`)
    }
  }

  close (): void {
    this.agent.destroy()
  }

  private async authorization (): Promise<string | undefined> {
    const e = this.endpoint
    if (e.tokenFile) {
      if (!this.token || Date.now() - this.token.readAt > TOKEN_REREAD_MS) {
        try {
          this.token = { value: (await readFile(e.tokenFile, 'utf8')).trim(), readAt: Date.now() }
        } catch (err) {
          if (!this.token) throw new KubeError(0, 'NoToken', `cannot read the token ${e.tokenFile}: ${(err as Error).message}`)
        }
      }
      return `Bearer ${this.token?.value ?? ''}`
    }
    if (e.token) return `Bearer ${e.token}`
    if (e.basic) return `Basic ${Buffer.from(`${e.basic.username}:${e.basic.password}`).toString('base64')}`
    return undefined
  }
}

/** The response's body as text, failing past max bytes. */
async function readBody (res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res) {
    size += (chunk as Buffer).length
    if (size > max) {
      res.destroy()
      throw new KubeError(res.statusCode ?? 0, 'TooLarge', `the API server's answer is over ${max} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A KubeError from an HTTP status and its body (a metav1.Status when the API server wrote it). */
function statusError (code: number, text: string, what: string): KubeError {
  let reason = `HTTP ${code}`
  let message = text.slice(0, 300)
  try {
    const s = JSON.parse(text) as { kind?: unknown, reason?: unknown, message?: unknown }
    if (s.kind === 'Status') {
      if (typeof s.reason === 'string' && s.reason) reason = s.reason
      if (typeof s.message === 'string') message = s.message.slice(0, 300)
    }
  } catch { /* not a Status: keep the text */ }
  return new KubeError(code, reason, `${what}: ${code} ${reason}${message ? `: ${message}` : ''}`, message)
}
