// What `flatnet uninstall` removes on a node, read from the daemon's own config file: the
// same fields name the same device, tables, files and sockets, so a node set up with a
// custom config is cleaned by that config. The per-node fields the DaemonSet fills in by
// flags (podCIDR, underlay.address) name nothing uninstall removes: stand-ins take their
// place, and the rest goes through the daemon's own checks.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type CniConfig } from '../cni.js'
import { parseConfig } from '../config.js'
import { ConfigError, isObject, type Json } from '../config-fields.js'
import { DEFAULT_SOCKET_DIR, socketPathFor } from '../control-socket.js'
import { defaultStateFile } from '../control/state-file.js'
import { KEY_FILE_NAME } from '../wireguard/config.js'

export const DEFAULT_STATE_DIR = dirname(defaultStateFile('node'))
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/

export interface Targets {
  /** The node's name; undefined: not in the config (the DaemonSet's placeholder) nor given. */
  node?: string
  tun: string
  /** The pod bridge the conflist's bridge plugin made (cni0 by default). */
  bridge: string
  /** undefined: the config writes no CNI files ("cni": false). */
  cni?: CniConfig
  /** The daemon's control socket; the node unknown, a directory each of whose *.sock is a daemon's. */
  control: { socket: string } | { dir: string }
  /** The saved peer table; the node unknown, a directory of `<node>.peers` files; undefined: "stateFile": false. */
  state?: { file: string } | { dir: string }
  /** This node's WireGuard private key: a secret of flatnet's, which must not outlive it on the node. */
  wireguardKey: string
  /** flatnet's own directories with nothing else in them by default: removed once empty. */
  ownDirs: string[]
}

// Documentation addresses (RFC 5737): valid, and never a real node's.
const STAND_INS: Json = {
  clusterCIDR: '192.0.2.0/24',
  podCIDR: '192.0.2.0/24',
  underlay: { address: '192.0.2.1' },
  peers: [],
  // Peer sources and policy read files and servers uninstall has no use for.
  channel: null,
  kubernetes: null,
  etcd: null,
  networkPolicy: null,
}

/** Targets from the daemon's config file (undefined: the defaults) and the node's name if given. Throws ConfigError. */
export function uninstallTargets (file: string | undefined, nodeName?: string): Targets {
  if (nodeName !== undefined && !NODE_NAME.test(nodeName)) {
    throw new ConfigError('nodeName', `--node-name ${JSON.stringify(nodeName)} is not a node name (lower-case DNS name, as Kubernetes uses)`)
  }
  const raw = file === undefined ? {} : readRaw(file)
  // The DaemonSet's ConfigMap holds "set by --node-name": the node is then unknown, not an error.
  const node = nodeName ?? (typeof raw.nodeName === 'string' && NODE_NAME.test(raw.nodeName) ? raw.nodeName : undefined)
  const config = parseConfig({ ...raw, ...STAND_INS, nodeName: node ?? 'unknown' })
  const control = raw.controlSocket !== undefined || node !== undefined
    ? { socket: config.controlSocket ?? socketPathFor(node as string) }
    : { dir: DEFAULT_SOCKET_DIR }
  const state = config.sources.stateFile === undefined
    ? undefined
    : raw.stateFile !== undefined || node !== undefined ? { file: config.sources.stateFile } : { dir: DEFAULT_STATE_DIR }
  const dirOf = (t: { socket: string } | { file: string } | { dir: string }): string => 'dir' in t ? t.dir : dirname('socket' in t ? t.socket : t.file)
  // Where the daemon keeps it (config.ts): wireguard.privateKeyFile, else beside the peer table,
  // whether or not encryption is on now (it may have been).
  const w = isObject(raw.wireguard) ? raw.wireguard : {}
  const wireguardKey = typeof w.privateKeyFile === 'string' && w.privateKeyFile.startsWith('/')
    ? w.privateKeyFile
    : join(dirname(config.sources.stateFile ?? defaultStateFile(node ?? 'unknown')), KEY_FILE_NAME)
  const used = [dirOf(control), ...(state ? [dirOf(state)] : []), ...(config.cni ? [dirname(config.cni.socket), dirname(config.cni.subnetFile)] : [])]
  return {
    node,
    tun: config.tun.name,
    bridge: config.cni?.bridge ?? config.bridge?.name ?? 'cni0',
    cni: config.cni,
    control,
    state,
    wireguardKey,
    ownDirs: [DEFAULT_SOCKET_DIR, DEFAULT_STATE_DIR].filter((d) => used.includes(d)),
  }
}

function readRaw (file: string): Json {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ConfigError('(file)', `${file} is not valid JSON: ${(err as Error).message}`)
  }
  if (!isObject(raw)) throw new ConfigError('(file)', `${file} must hold a JSON object`)
  return raw
}
