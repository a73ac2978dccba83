// The peer sources' part of the daemon config: `stateFile`, `channel`,
// `kubernetes`, `etcd` (the static `peers` stay in ../config.ts). Checked field by
// field like the rest, so a mistake exits 2 naming the field.
import { readFileSync } from 'node:fs'
import { boolean as bool, ConfigError, integer as int, known, object } from '../config-fields.js'
import { type Address, formatAddress, parseAddress } from '../net/cidr.js'
import { defaultStateFile } from './state-file.js'

export const DEFAULT_CHANNEL_PORT = 8473 // next to the VTEP's 8472

export interface Endpoint { host: string, port: number }

export interface ChannelConfig {
  listen: Endpoint
  join: Endpoint[]
  key: Buffer // cluster key: HMAC-SHA256 over every frame
  heartbeatMs: number
  deadAfterMs: number // no heartbeat this long: withdrawn
}

export interface KubernetesConfig {
  kubeconfig?: string // default: in-cluster service account, else $KUBECONFIG / ~/.kube/config
  annotate: boolean // write this node's VTEP annotations on its own Node
}

export interface EtcdConfig {
  endpoints: string[] // http://host:port or https://, tried in order
  prefix: string
  ttlSeconds: number
  tls?: EtcdTls // files read at each (re)connection: a rotated certificate is taken up
  username?: string
  passwordFile?: string // the password, for etcd's auth (/v3/auth/authenticate)
}

/** PEM files, as flannel's -etcd-cafile, -etcd-certfile, -etcd-keyfile. */
export interface EtcdTls { caFile?: string, certFile?: string, keyFile?: string }

export interface SourcesConfig {
  stateFile?: string // undefined: not persisted
  channel?: ChannelConfig
  kubernetes?: KubernetesConfig
  etcd?: EtcdConfig
}

export const SOURCE_FIELDS = ['stateFile', 'channel', 'kubernetes', 'etcd']

type Json = Record<string, unknown>

export function parseSources (raw: Json, nodeName: string, underlay: Address): SourcesConfig {
  const out: SourcesConfig = {}
  if (raw.stateFile !== false) {
    out.stateFile = raw.stateFile === undefined || raw.stateFile === null ? defaultStateFile(nodeName) : absPath(raw.stateFile, 'stateFile')
  }
  if (raw.channel !== undefined && raw.channel !== null) out.channel = channel(raw.channel, underlay)
  if (raw.kubernetes !== undefined && raw.kubernetes !== null) {
    const k = object(raw.kubernetes, 'kubernetes')
    known(k, 'kubernetes.', ['kubeconfig', 'annotate'])
    out.kubernetes = {
      kubeconfig: k.kubeconfig === undefined ? undefined : absPath(k.kubeconfig, 'kubernetes.kubeconfig'),
      annotate: k.annotate === undefined ? true : bool(k.annotate, 'kubernetes.annotate'),
    }
  }
  if (raw.etcd !== undefined && raw.etcd !== null) {
    const e = object(raw.etcd, 'etcd')
    known(e, 'etcd.', ['endpoints', 'prefix', 'ttlSeconds', 'caFile', 'certFile', 'keyFile', 'username', 'passwordFile'])
    const endpoints = list(e.endpoints, 'etcd.endpoints').map((u, i) => {
      try {
        const url = new URL(u)
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme')
        return url.origin
      } catch {
        throw new ConfigError(`etcd.endpoints[${i}]`, `${JSON.stringify(u)} is not an http(s)://host:port URL`)
      }
    })
    if (endpoints.length === 0) throw new ConfigError('etcd.endpoints', 'needs at least one endpoint')
    const prefix = e.prefix === undefined ? '/flatnet/nodes/' : e.prefix
    if (typeof prefix !== 'string' || !prefix.endsWith('/')) throw new ConfigError('etcd.prefix', 'must be a string ending in "/"')
    // Each file must be readable now: a typo is a config error at start, not a retry loop later.
    const file = (field: string): string | undefined => {
      const v = e[field]
      if (v === undefined) return undefined
      const at = absPath(v, `etcd.${field}`)
      try {
        readFileSync(at)
      } catch (err) {
        throw new ConfigError(`etcd.${field}`, `cannot read ${at}: ${(err as Error).message}`)
      }
      return at
    }
    const tls = { caFile: file('caFile'), certFile: file('certFile'), keyFile: file('keyFile') }
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new ConfigError(tls.certFile ? 'etcd.keyFile' : 'etcd.certFile', 'certFile and keyFile go together')
    if (Object.values(tls).some((f) => f !== undefined) && endpoints.some((u) => u.startsWith('http:'))) {
      throw new ConfigError('etcd.endpoints', 'caFile, certFile and keyFile are for https:// endpoints')
    }
    const username = e.username === undefined ? undefined : e.username
    if (username !== undefined && (typeof username !== 'string' || username === '')) throw new ConfigError('etcd.username', 'must be a non-empty string')
    const passwordFile = file('passwordFile')
    if ((username === undefined) !== (passwordFile === undefined)) throw new ConfigError(username ? 'etcd.passwordFile' : 'etcd.username', 'username and passwordFile go together')
    out.etcd = {
      endpoints,
      prefix,
      ttlSeconds: e.ttlSeconds === undefined ? 10 : int(e.ttlSeconds, 'etcd.ttlSeconds', 2, 3600),
      ...(Object.values(tls).some((f) => f !== undefined) ? { tls } : {}),
      ...(username !== undefined ? { username, passwordFile } : {}),
    }
  }
  return out
}

function channel (v: unknown, underlay: Address): ChannelConfig {
  const c = object(v, 'channel')
  known(c, 'channel.', ['listen', 'join', 'key', 'keyFile', 'heartbeatMs', 'deadAfterMs'])
  const listen = c.listen === undefined
    ? { host: formatAddress(underlay), port: DEFAULT_CHANNEL_PORT }
    : endpoint(c.listen, 'channel.listen')
  const join = c.join === undefined ? [] : list(c.join, 'channel.join').map((j, i) => endpoint(j, `channel.join[${i}]`))
  let key: Buffer
  if (c.key !== undefined && c.keyFile !== undefined) throw new ConfigError('channel.key', 'give key or keyFile, not both')
  if (c.keyFile !== undefined) {
    const file = absPath(c.keyFile, 'channel.keyFile')
    try {
      key = Buffer.from(readFileSync(file, 'utf8').trim())
    } catch (err) {
      throw new ConfigError('channel.keyFile', `cannot read ${file}: ${(err as Error).message}`)
    }
  } else if (typeof c.key === 'string') {
    key = Buffer.from(c.key)
  } else {
    throw new ConfigError('channel.key', 'is required: the cluster key (16+ characters) every node shares, or keyFile')
  }
  if (key.length < 16) throw new ConfigError('channel.key', 'must be at least 16 characters (use e.g. `openssl rand -hex 32`)')
  const heartbeatMs = c.heartbeatMs === undefined ? 500 : int(c.heartbeatMs, 'channel.heartbeatMs', 50, 60_000)
  const deadAfterMs = c.deadAfterMs === undefined ? 3000 : int(c.deadAfterMs, 'channel.deadAfterMs', 200, 600_000)
  if (deadAfterMs < 2 * heartbeatMs) throw new ConfigError('channel.deadAfterMs', `must be at least twice heartbeatMs (${heartbeatMs})`)
  return { listen, join, key, heartbeatMs, deadAfterMs }
}

/** "ADDR:PORT", "[v6]:PORT" or a bare address (the default channel port). */
export function endpoint (v: unknown, at: string): Endpoint {
  if (typeof v !== 'string') throw new ConfigError(at, 'must be "ADDRESS[:PORT]"')
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(v) ?? /^([^:]+)(?::(\d+))?$/.exec(v) ?? [v, v, undefined]
  const host = m[1]
  if (!parseAddress(host)) throw new ConfigError(at, `${JSON.stringify(v)}: ${host} is not an IP address`)
  const port = m[2] === undefined ? DEFAULT_CHANNEL_PORT : Number(m[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(at, `${JSON.stringify(v)}: port must be 1-65535`)
  return { host, port }
}

function list (v: unknown, at: string): string[] {
  const l = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v
  if (!Array.isArray(l) || l.some((x) => typeof x !== 'string')) throw new ConfigError(at, 'must be a list of strings (or one comma-separated string)')
  return l as string[]
}

function absPath (v: unknown, at: string): string {
  if (typeof v !== 'string' || !v.startsWith('/')) throw new ConfigError(at, 'must be an absolute path')
  return v
}
