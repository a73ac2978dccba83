// A node of flannel's wireguard backend as a lab data plane, with Debian's wireguard-go: a device
// (flannel's is flannel-wg; the lab names each its own, since wireguard-go's control socket,
// /var/run/wireguard/<device>.sock, is shared by all namespaces) holding the node's key, listening on 51820, the subnet's first address (/32) on it,
// the cluster CIDR routed into it, and one peer per other node (its public key, allowed IPs its
// pod CIDR, endpoint its underlay address). What flatnet's "wireguard" encryption interoperates
// with, and the userspace WireGuard the benchmark compares it with.
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { formatKey } from '../wireguard/keys.js'
import { readLog } from './netns.js'
import type { LabNode } from './cluster.js'

export const WG_PORT = 51820

const hostPort = (address: string): string => address.includes(':') ? `[${address}]:${WG_PORT}` : `${address}:${WG_PORT}`

/** The control socket wireguard-go leaves behind when it is killed. */
export const controlSocketOf = (device: string): string => `/var/run/wireguard/${device}.sock`

/**
 * Starts wireguard-go in n's namespace and configures device as flannel would, with peers by
 * public key. The process is the namespace's child: destroying the namespace stops it.
 */
export async function startWireguardGo (n: LabNode, device: string, privateKey: Buffer, peers: Array<{ node: LabNode, publicKey: Buffer }>,
  clusterCIDR: string, mtu: number, dir: string, timeoutMs = 10_000): Promise<ChildProcess> {
  const log = join(dir, `${n.name}-wireguard-go.log`)
  const child = n.ns.spawn('env', ['WG_PROCESS_FOREGROUND=1', 'wireguard-go', '-f', device], log)
  const deadline = Date.now() + timeoutMs
  while (!deviceUp(n, device)) {
    if (child.exitCode !== null) throw new Error(`${n.name}: wireguard-go exited (${child.exitCode}):\n${readLog(log)}`)
    if (Date.now() > deadline) throw new Error(`${n.name}: wireguard-go made no ${device} within ${timeoutMs} ms:\n${readLog(log)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const keyFile = join(dir, `${n.name}-wg.key`)
  writeFileSync(keyFile, formatKey(privateKey) + '\n', { mode: 0o600 })
  const args = ['set', device, 'listen-port', String(WG_PORT), 'private-key', keyFile]
  for (const p of peers) args.push('peer', formatKey(p.publicKey), 'allowed-ips', p.node.podCIDR, 'endpoint', hostPort(p.node.underlayIP))
  n.ns.exec('wg', ...args)
  n.ns.ip('addr', 'add', `${n.podCIDR.replace('/24', '')}/32`, 'dev', device)
  n.ns.ip('link', 'set', device, 'mtu', String(mtu), 'up')
  n.ns.ip('route', 'add', clusterCIDR, 'dev', device) // flannel routes the cluster CIDR into the device
  return child
}

function deviceUp (n: LabNode, device: string): boolean {
  try {
    n.ns.ip('link', 'show', device)
    return existsSync(controlSocketOf(device))
  } catch {
    return false
  }
}

/** wireguard-go's view of its peers (`wg show dump`): per public key, the latest handshake (s since the epoch, 0: none) and bytes. */
export function wireguardGoPeers (n: LabNode, device: string): Map<string, { latestHandshake: number, rx: number, tx: number }> {
  const out = new Map<string, { latestHandshake: number, rx: number, tx: number }>()
  for (const line of n.ns.exec('wg', 'show', device, 'dump').trim().split('\n').slice(1)) {
    const f = line.split('\t')
    out.set(f[0], { latestHandshake: Number(f[4] ?? 0), rx: Number(f[5] ?? 0), tx: Number(f[6] ?? 0) })
  }
  return out
}
