// Field checks shared by the daemon's config (config.ts) and the peer sources' part of
// it (control/config.ts): each throws a ConfigError naming the field and the problem.
import { type Address, type Cidr, parseAddress, parseCidr } from './net/cidr.js'
import { parseMac } from './net/mac.js'
import { parseKey } from './wireguard/keys.js'

export class ConfigError extends Error {
  /** where: what the message names first: the field, or what the user typed instead (a flag, FILE:LINE:COLUMN). */
  constructor (readonly field: string, readonly problem: string, where = `config.${field}`) {
    super(`${where}: ${problem}`)
  }
}

export type Json = Record<string, unknown>

export function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function object (v: unknown, at: string): Json {
  if (v === undefined) throw new ConfigError(at, 'is required')
  if (!isObject(v)) throw new ConfigError(at, 'must be an object')
  return v
}

export function known (o: Json, prefix: string, fields: string[]): void {
  for (const k of Object.keys(o)) {
    if (!fields.includes(k)) throw new ConfigError(`${prefix}${k}`, `unknown field (known: ${fields.join(', ')})`)
  }
}

export function optional<T, D> (v: unknown, fallback: D, parse: (v: unknown) => T): T | D {
  return v === undefined || v === null ? fallback : parse(v)
}

export function name (v: unknown, at: string): string {
  if (typeof v !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v)) {
    throw new ConfigError(at, `${JSON.stringify(v)} is not a node name (lower-case DNS name, as Kubernetes uses)`)
  }
  return v
}

export function ifname (v: unknown, at: string): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(v)) {
    throw new ConfigError(at, `${JSON.stringify(v)} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`)
  }
  return v
}

export function cidrs (v: unknown, at: string): Cidr[] {
  if (v === undefined) throw new ConfigError(at, 'is required')
  const list = Array.isArray(v) ? v : [v]
  if (list.length === 0 || list.length > 2) throw new ConfigError(at, 'must be one CIDR, or two (IPv4 and IPv6)')
  const out = list.map((item, i) => {
    const where = Array.isArray(v) ? `${at}[${i}]` : at
    if (typeof item !== 'string') throw new ConfigError(where, 'must be a CIDR string like "10.244.1.0/24"')
    const c = parseCidr(item)
    if (typeof c === 'string') throw new ConfigError(where, `"${item}" ${c}`)
    return c
  })
  if (out.length === 2 && out[0].family === out[1].family) throw new ConfigError(at, 'two CIDRs must be one IPv4 and one IPv6')
  return out
}

export function address (v: unknown, at: string): Address {
  if (v === undefined) throw new ConfigError(at, 'is required')
  const a = typeof v === 'string' ? parseAddress(v) : undefined
  if (!a) throw new ConfigError(at, `${JSON.stringify(v)} is not an IP address`)
  return a
}

export function mac (v: unknown, at: string): Buffer {
  if (v === undefined) throw new ConfigError(at, 'is required')
  const m = typeof v === 'string' ? parseMac(v) : undefined
  if (!m) throw new ConfigError(at, `${JSON.stringify(v)} is not a MAC address like "02:00:00:00:00:01"`)
  if (m[0] & 1) throw new ConfigError(at, `${JSON.stringify(v)} is a multicast MAC; a VTEP needs a unicast one`)
  return m
}

/** A WireGuard public key as `wg pubkey` prints it: 32 bytes in base64 (44 characters). */
export function wireguardKey (v: unknown, at: string): Buffer {
  const key = typeof v === 'string' ? parseKey(v) : undefined
  if (!key) throw new ConfigError(at, `${JSON.stringify(v)} is not a WireGuard public key (32 bytes in base64, as \`wg pubkey\` prints)`)
  return key
}

export function integer (v: unknown, at: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(at, `${JSON.stringify(v)} must be an integer from ${min} to ${max}`)
  }
  return v
}

export function boolean (v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(at, `${JSON.stringify(v)} must be true or false`)
  return v
}

export function oneOf (v: unknown, at: string, values: string[]): string {
  if (typeof v !== 'string' || !values.includes(v)) throw new ConfigError(at, `must be one of ${values.join(', ')}`)
  return v
}
