// The operator's WireGuard settings: `"encryption": "wireguard"` and the `wireguard`
// object. Checked field by field like the rest of the config, so a mistake (a pre-shared
// key file that holds no key, a port the VTEP already uses) exits 2 naming the field.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { boolean, ConfigError, integer, type Json, known, object, oneOf, optional } from '../config-fields.js'
import { parseKey } from './keys.js'
import { REKEY_AFTER_MS, REKEY_TIMEOUT_MS } from './timers.js'

export const DEFAULT_WIREGUARD_PORT = 51820 // wg-quick's and flannel's wireguard backend's
export const KEY_FILE_NAME = 'wireguard.key'

export type Encryption = 'none' | 'wireguard'

export interface WireguardConfig {
  port: number // UDP, on the underlay address
  // Peers that publish no key: false, plain VXLAN to them (a mixed cluster during a rollout,
  // as Calico allows); true, traffic to them is dropped.
  strict: boolean
  privateKeyFile: string // created on first start (src/wireguard/key-file.ts)
  presharedKey?: Buffer // the whitepaper's optional Q, mixed into every handshake (5.4.2)
  presharedKeyFile?: string
  // A session's sender starts the next handshake this long after the last (whitepaper 6.2's
  // Rekey-After-Time, 120 s); shorter rotates keys more often, a handshake per peer each time.
  rekeyAfterMs: number
}

/**
 * `encryption` and `wireguard` of the raw config. The `wireguard` object is checked even while
 * encryption is "none", so an operator preparing a rollout learns of a mistake before flipping
 * it on; it is returned only when encryption is "wireguard".
 * stateDir: where the private key lives unless privateKeyFile says otherwise: the peer table's
 * directory, a host mount in the DaemonSet, so the key survives a pod restart and a handover.
 */
export function parseEncryption (raw: Json, stateDir: string, underlayPort: number): { encryption: Encryption, wireguard?: WireguardConfig } {
  const encryption = optional(raw.encryption, 'none', (v) => oneOf(v, 'encryption', ['none', 'wireguard'])) as Encryption
  const w: Json = optional(raw.wireguard, {}, (v) => object(v, 'wireguard'))
  known(w, 'wireguard.', ['port', 'strict', 'presharedKeyFile', 'privateKeyFile', 'rekeyAfterSeconds'])
  const port = optional(w.port, DEFAULT_WIREGUARD_PORT, (v) => integer(v, 'wireguard.port', 1, 65535))
  // Both are UDP sockets on the underlay address: the second bind would fail at start.
  if (encryption === 'wireguard' && port === underlayPort) {
    throw new ConfigError('wireguard.port', `${port} is underlay.port too (VXLAN): give WireGuard its own port (default ${DEFAULT_WIREGUARD_PORT})`)
  }
  const wireguard: WireguardConfig = {
    port,
    strict: optional(w.strict, false, (v) => boolean(v, 'wireguard.strict')),
    privateKeyFile: optional(w.privateKeyFile, join(stateDir, KEY_FILE_NAME), (v) => absPath(v, 'wireguard.privateKeyFile')),
    // At least Rekey-Timeout: a handshake is not started more often than that (6.4). At most
    // the protocol's own: a peer rejects a session past 180 s whatever this says.
    rekeyAfterMs: optional(w.rekeyAfterSeconds, REKEY_AFTER_MS / 1000, (v) => integer(v, 'wireguard.rekeyAfterSeconds', REKEY_TIMEOUT_MS / 1000, REKEY_AFTER_MS / 1000)) * 1000,
  }
  if (w.presharedKeyFile !== undefined && w.presharedKeyFile !== null) {
    const file = absPath(w.presharedKeyFile, 'wireguard.presharedKeyFile')
    wireguard.presharedKeyFile = file
    wireguard.presharedKey = readPresharedKey(file)
  }
  return encryption === 'wireguard' ? { encryption, wireguard } : { encryption }
}

function readPresharedKey (file: string): Buffer {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('wireguard.presharedKeyFile', `cannot read ${file}: ${(err as Error).message}`)
  }
  const key = parseKey(text)
  if (!key) throw new ConfigError('wireguard.presharedKeyFile', `${file} does not hold a pre-shared key (32 bytes in base64, as \`wg genpsk\` writes)`)
  return key
}

function absPath (v: unknown, at: string): string {
  if (typeof v !== 'string' || !v.startsWith('/')) throw new ConfigError(at, 'must be an absolute path')
  return v
}
