// The daemon's configuration: read from JSON, checked field by field, defaults
// filled in. Every problem names the field, so `flatnet daemon` can exit 2 with a
// message an operator can act on.
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { contains, type Address, type Cidr, formatCidr, overlaps, parseCidr } from './net/cidr.js'
import { macFromName } from './net/mac.js'
import { address, boolean, cidrs, ConfigError, ifname, integer, isObject, type Json, known, mac, name, object, oneOf, optional, wireguardKey } from './config-fields.js'
import { parseSources, SOURCE_FIELDS, type SourcesConfig } from './control/config.js'
import { type CniConfig, DEFAULT_CNI } from './cni.js'
import { jsonErrorAt } from './json-error.js'
import { PROBE_DEFAULTS } from './reach/prober.js'
import { defaultStateFile } from './control/state-file.js'
import { type Encryption, parseEncryption, type WireguardConfig } from './wireguard/config.js'

export const DEFAULT_PORT = 8472 // Linux's vxlan default, and flannel's
export const DEFAULT_VNI = 1
export const DEFAULT_BUSY_POLL_MICROS = 0 // spinning only pays with idle cores (docs/performance.md)

export { ConfigError } from './config-fields.js'

export interface PeerConfig {
  nodeName: string
  podCIDRs: Cidr[]
  address: Address
  port: number
  // undefined: a node that speaks WireGuard only (flannel's wireguard backend); it has a wgKey
  vtepMAC?: Buffer
  wgKey?: Buffer // WireGuard public key, raw (32 bytes); undefined: the peer publishes none
  wgPort?: number // its WireGuard port; undefined: this node's (wireguard.port)
}

export interface Config {
  nodeName: string
  clusterCIDRs: Cidr[]
  podCIDRs: Cidr[]
  underlay: { address: Address, port: number }
  vni: number
  vtepMAC: Buffer
  mtu?: number // undefined: underlay interface MTU minus the encapsulation overhead
  tun: { name: string }
  bridge?: { name: string } // create this bridge with the pod CIDR's gateway (.1) address
  offloads: boolean
  busyPollMicros: number // keep polling this long after traffic, both loops on one thread (latency vs idle CPU)
  workers: 'auto' | 'pipeline' | 'per-cpu' // a transmit and a receive thread, a pinned worker per CPU, or per-cpu where its steering loads (docs/configuration.md)
  peers: PeerConfig[]
  logLevel: string
  controlSocket?: string // default /run/flatnet/<nodeName>.sock
  peerProbes?: { port: number, intervalMs: number } // node-to-node health (src/reach/); undefined = off
  healthPort: number // /healthz, /readyz on 127.0.0.1; 0 = off
  metricsPort: number // /metrics on all addresses; 0 = off
  sources: SourcesConfig // stateFile, channel, kubernetes, etcd (src/control/config.ts)
  cni?: CniConfig // undefined: no CNI files written
  ipMasq: boolean // masquerade pod traffic leaving the cluster CIDR
  networkPolicy?: { manifests?: string } // enforce NetworkPolicy: from this directory's manifests, or (no manifests) from the API server
  encryption: Encryption // 'wireguard': WireGuard to every peer that publishes a key (src/wireguard/)
  wireguard?: WireguardConfig // set exactly when encryption is 'wireguard'
}

/**
 * `flatnet daemon`'s flags that override a field, by flag name (the keys of loadConfig's
 * overrides): the field's path, which the flag's value replaces and its errors name by the flag.
 */
export const FLAG_FIELDS: Readonly<Record<string, string>> = {
  'node-name': 'nodeName',
  'pod-cidr': 'podCIDR',
  'pod-cidr-from-node': 'podCIDR', // the Node object's spec.podCIDRs
  'underlay-address': 'underlay.address',
  join: 'channel.join',
  offloads: 'offloads',
  'log-level': 'logLevel',
}

export function loadConfig (file: string, overrides: Json = {}): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('(file)', `cannot read it: ${(err as Error).message}`, file)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    const at = jsonErrorAt(text, err as Error)
    throw new ConfigError('(file)', `${at.message} (not valid JSON)`, `${file}:${at.line}:${at.column}`)
  }
  if (!isObject(raw)) throw new ConfigError('(file)', 'must hold a JSON object', file)
  const merged: Json = { ...raw }
  for (const [flag, value] of Object.entries(overrides)) {
    const path = FLAG_FIELDS[flag]
    if (path === undefined) throw new Error(`loadConfig: no flag --${flag} overrides a field`)
    const [top, sub] = path.split('.')
    const into = raw[top]
    merged[top] = sub === undefined ? value : { ...(isObject(into) ? into : {}), [sub]: value }
  }
  try {
    return parseConfig(merged)
  } catch (err) {
    throw err instanceof ConfigError ? namingFlag(err, overrides) : err
  }
}

/** The error naming the flag the user typed when its field is one an override set (`--log-level: ...`), else as it was. */
export function namingFlag (err: ConfigError, overrides: Json): ConfigError {
  const flag = Object.keys(overrides).find((f) => {
    const path = FLAG_FIELDS[f]
    return path !== undefined && (err.field === path || err.field.startsWith(`${path}[`) || err.field.startsWith(`${path}.`))
  })
  return flag === undefined ? err : new ConfigError(err.field, err.problem, `--${flag}`)
}

export function parseConfig (raw: Json): Config {
  known(raw, '', ['nodeName', 'clusterCIDR', 'podCIDR', 'underlay', 'vni', 'vtepMAC', 'mtu', 'tun', 'bridge',
    'offloads', 'busyPollMicros', 'workers', 'peers', 'logLevel', 'controlSocket', 'healthPort', 'metricsPort', 'peerProbes', 'cni', 'ipMasq', 'networkPolicy', 'encryption', 'wireguard', ...SOURCE_FIELDS])
  const nodeName = name(raw.nodeName, 'nodeName')
  const clusterCIDRs = cidrs(raw.clusterCIDR, 'clusterCIDR')
  const podCIDRs = cidrs(raw.podCIDR, 'podCIDR')
  podCIDRs.forEach((p, i) => {
    if (!clusterCIDRs.some((c) => contains(c, p))) {
      throw new ConfigError(field('podCIDR', raw.podCIDR, i), `${formatCidr(p)} is not inside clusterCIDR`)
    }
  })
  const underlay = object(raw.underlay, 'underlay')
  known(underlay, 'underlay.', ['address', 'port'])
  const port = optional(underlay.port, DEFAULT_PORT, (v) => integer(v, 'underlay.port', 1, 65535))
  const config: Config = {
    nodeName,
    clusterCIDRs,
    podCIDRs,
    underlay: { address: address(underlay.address, 'underlay.address'), port },
    vni: optional(raw.vni, DEFAULT_VNI, (v) => integer(v, 'vni', 1, 0xffffff)),
    vtepMAC: optional(raw.vtepMAC, macFromName(nodeName), (v) => mac(v, 'vtepMAC')),
    mtu: optional(raw.mtu, undefined, (v) => integer(v, 'mtu', 576, 65_000)),
    tun: tunConfig(raw.tun),
    bridge: optional(raw.bridge, undefined, (v) => {
      const b = object(v, 'bridge')
      known(b, 'bridge.', ['name'])
      return { name: ifname(b.name, 'bridge.name') }
    }),
    offloads: optional(raw.offloads, true, (v) => boolean(v, 'offloads')),
    busyPollMicros: optional(raw.busyPollMicros, DEFAULT_BUSY_POLL_MICROS, (v) => integer(v, 'busyPollMicros', 0, 100_000)),
    workers: optional(raw.workers, 'auto', (v) => oneOf(v, 'workers', ['auto', 'pipeline', 'per-cpu'])) as Config['workers'],
    peers: [],
    sources: {},
    encryption: 'none',
    healthPort: optional(raw.healthPort, 9472, (v) => integer(v, 'healthPort', 0, 65535)),
    metricsPort: optional(raw.metricsPort, 9473, (v) => integer(v, 'metricsPort', 0, 65535)),
    peerProbes: raw.peerProbes === false ? undefined : peerProbes(raw.peerProbes),
    controlSocket: optional(raw.controlSocket, undefined, (v) => {
      if (typeof v !== 'string' || !v.startsWith('/')) throw new ConfigError('controlSocket', 'must be an absolute path')
      return v
    }),
    logLevel: optional(raw.logLevel, 'info', (v) => oneOf(v, 'logLevel', ['trace', 'debug', 'info', 'warn', 'error'])),
    ipMasq: optional(raw.ipMasq, true, (v) => boolean(v, 'ipMasq')),
    networkPolicy: optional(raw.networkPolicy, undefined, (v) => {
      const o = object(v, 'networkPolicy')
      known(o, 'networkPolicy.', ['manifests'])
      if (o.manifests === undefined) return {}
      if (typeof o.manifests !== 'string' || !o.manifests.startsWith('/')) {
        throw new ConfigError('networkPolicy.manifests', 'must be the absolute path of a directory of YAML or JSON manifests')
      }
      return { manifests: o.manifests }
    }),
  }
  config.cni = raw.cni === false ? undefined : cniConfig(raw.cni, config.bridge?.name)
  config.sources = parseSources(raw, nodeName, config.underlay.address)
  // The key sits beside the peer table: the DaemonSet's host mount (deploy/daemonset.yaml).
  Object.assign(config, parseEncryption(raw, dirname(config.sources.stateFile ?? defaultStateFile(nodeName)), port))
  config.peers = optional(raw.peers, [], (v) => peers(v, config)) // after encryption: a WireGuard-only peer needs it
  if (config.networkPolicy && config.networkPolicy.manifests === undefined && !config.sources.kubernetes) {
    throw new ConfigError('networkPolicy', 'give "manifests": DIR, or configure the "kubernetes" source to read the policies from the API server')
  }
  return config
}

function cniConfig (v: unknown, bridge: string | undefined): CniConfig {
  const o = v === undefined || v === null ? {} : object(v, 'cni')
  known(o, 'cni.', ['confDir', 'subnetFile', 'ipamDataDir', 'binDir', 'socket'])
  const path = (p: unknown, at: string): string => {
    if (typeof p !== 'string' || !p.startsWith('/')) throw new ConfigError(at, 'must be an absolute path')
    return p
  }
  return {
    confDir: optional(o.confDir, DEFAULT_CNI.confDir, (p) => path(p, 'cni.confDir')),
    subnetFile: optional(o.subnetFile, DEFAULT_CNI.subnetFile, (p) => path(p, 'cni.subnetFile')),
    ipamDataDir: optional(o.ipamDataDir, undefined, (p) => path(p, 'cni.ipamDataDir')),
    binDir: optional(o.binDir, DEFAULT_CNI.binDir, (p) => path(p, 'cni.binDir')),
    socket: optional(o.socket, DEFAULT_CNI.socket, (p) => path(p, 'cni.socket')),
    bridge: bridge ?? DEFAULT_CNI.bridge,
  }
}

function peerProbes (v: unknown): { port: number, intervalMs: number } {
  const o = v === undefined || v === null ? {} : object(v, 'peerProbes')
  known(o, 'peerProbes.', ['port', 'intervalSeconds'])
  return {
    port: optional(o.port, PROBE_DEFAULTS.port, (p) => integer(p, 'peerProbes.port', 1, 65535)),
    // Past 5 s a dead peer is no longer reported within 10 s (src/reach/prober.ts).
    intervalMs: optional(o.intervalSeconds, PROBE_DEFAULTS.intervalMs / 1000, (s) => integer(s, 'peerProbes.intervalSeconds', 1, 300)) * 1000,
  }
}

function tunConfig (v: unknown): { name: string } {
  return optional(v, { name: 'flatnet0' }, (t) => {
    const o = object(t, 'tun')
    known(o, 'tun.', ['name'])
    return { name: optional(o.name, 'flatnet0', (n) => ifname(n, 'tun.name')) }
  })
}

/** Checks a peer list against this node's config; used for the config file and its reloads. */
export function peers (v: unknown, self: Config, path = 'peers'): PeerConfig[] {
  if (!Array.isArray(v)) throw new ConfigError(path, 'must be an array')
  const seen = new Map<string, string>()
  const names = new Map<string, number>()
  const keys = new Map<string, string>()
  return v.map((item, i) => {
    const at = `${path}[${i}]`
    const o = object(item, at)
    known(o, `${at}.`, ['nodeName', 'podCIDR', 'address', 'port', 'vtepMAC', 'wireguardPublicKey', 'wireguardPort'])
    const peer: PeerConfig = {
      nodeName: name(o.nodeName, `${at}.nodeName`),
      podCIDRs: cidrs(o.podCIDR, `${at}.podCIDR`),
      address: address(o.address, `${at}.address`),
      port: optional(o.port, self.underlay.port, (p) => integer(p, `${at}.port`, 1, 65535)),
    }
    if (o.wireguardPublicKey !== undefined && o.wireguardPublicKey !== null) peer.wgKey = wireguardKey(o.wireguardPublicKey, `${at}.wireguardPublicKey`)
    // A node of flannel's wireguard backend has no VTEP: its key alone makes it a peer, of a
    // node that encrypts (any other would send it VXLAN).
    if (o.vtepMAC !== undefined || !peer.wgKey) peer.vtepMAC = mac(o.vtepMAC, `${at}.vtepMAC`)
    else if (self.encryption !== 'wireguard') throw new ConfigError(`${at}.vtepMAC`, 'is required unless "encryption" is "wireguard" (a peer without one speaks WireGuard only)')
    if (o.wireguardPort !== undefined) peer.wgPort = integer(o.wireguardPort, `${at}.wireguardPort`, 1, 65535)
    if (peer.nodeName === self.nodeName) throw new ConfigError(`${at}.nodeName`, `"${peer.nodeName}" is this node`)
    // One entry per node: a second would silently replace the first in the peer table.
    const first = names.get(peer.nodeName)
    if (first !== undefined) throw new ConfigError(`${at}.nodeName`, `"${peer.nodeName}" is also ${path}[${first}]: keep one entry per node`)
    names.set(peer.nodeName, i)
    if (peer.wgKey) {
      // A WireGuard key names one peer (whitepaper 2): a second holder is a copied key file.
      const text = peer.wgKey.toString('base64')
      const holder = keys.get(text)
      if (holder !== undefined) throw new ConfigError(`${at}.wireguardPublicKey`, `is ${holder}'s too: each node has its own key`)
      keys.set(text, peer.nodeName)
    }
    for (const c of peer.podCIDRs) {
      const text = formatCidr(c)
      if (self.podCIDRs.some((own) => overlaps(own, c))) {
        throw new ConfigError(`${at}.podCIDR`, `${text} overlaps this node's podCIDR`)
      }
      // The peer table would refuse it at run time (src/peer-table.ts); in the file it is a typo to name.
      if (!self.clusterCIDRs.some((k) => contains(k, c))) {
        throw new ConfigError(`${at}.podCIDR`, `${text} is outside clusterCIDR (${self.clusterCIDRs.map(formatCidr).join(', ')})`)
      }
      const other = [...seen].find(([k]) => overlaps(parseCidr(k) as Cidr, c))
      if (other) throw new ConfigError(`${at}.podCIDR`, `${text} overlaps ${other[1]}'s ${other[0]}`)
      seen.set(text, peer.nodeName)
    }
    return peer
  })
}

function field (name: string, raw: unknown, i: number): string {
  return Array.isArray(raw) ? `${name}[${i}]` : name
}
