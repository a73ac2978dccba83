// Node networking through iproute2: the device, addresses, routes and sysctls the
// data plane needs around it. Control-plane work, done at start and on changes;
// every command is idempotent (replace, not add) so a restarted daemon converges.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { type Address, type Cidr, formatAddress, formatCidr, nth } from './cidr.js'
import { ConfigError } from '../config-fields.js'

export function ip (...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`)
  }
}

interface IpAddrJson { ifname: string, mtu: number, addr_info?: Array<{ local: string }> }

/** The MTU of the interface that holds the given local address. */
export function mtuOfAddress (address: Address): number {
  const want = formatAddress(address)
  const links = JSON.parse(ip('-j', 'addr', 'show')) as IpAddrJson[]
  const link = links.find((l) => l.addr_info?.some((a) => a.local === want))
  if (!link) throw new ConfigError('underlay.address', `${want} is on no interface of this node: give one of its addresses (ip -br addr)`)
  return link.mtu
}

/** VXLAN overhead: outer IP + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export function encapOverhead (underlay: Address, wireguard = false): number {
  // VXLAN: UDP, VXLAN header, inner Ethernet. WireGuard: UDP, its 16-byte header and 16-byte
  // tag (whitepaper 5.4.6; padding stays within the MTU). With WireGuard on, peers without a
  // key still get VXLAN: the larger of the two.
  return (underlay.family === 4 ? 20 : 40) + 8 + (wireguard ? 32 : 8 + 14)
}

/** Packets each TUN queue holds (see configureTun). */
export const TUN_QUEUE_LEN = 1000

/**
 * Addresses the TUN like flannel.1 (the pod CIDR's network address, /32 or /128),
 * sets its MTU and queue length, brings it up and routes the cluster CIDRs into it.
 * The local pod CIDR stays with the bridge: its route is more specific.
 */
export function configureTun (name: string, mtu: number, podCIDRs: Cidr[], clusterCIDRs: Cidr[]): void {
  // No IPv6 link-local address: it would only send router solicitations into the overlay.
  // A TUN drops what does not fit its queue (it never stops the qdisc), and its default
  // of 500 packets, a 350 KB burst without offloads, dropped a single stream's packets;
  // 1000 is the length the kernel gives Ethernet devices (docs/performance.md). With
  // offloads a queued packet is up to 64 KB already.
  ip('link', 'set', 'dev', name, 'mtu', String(mtu), 'addrgenmode', 'none', 'txqueuelen', String(TUN_QUEUE_LEN))
  for (const pod of podCIDRs) {
    const host = pod.family === 4 ? 32 : 128
    ip(pod.family === 4 ? '-4' : '-6', 'addr', 'replace', `${formatAddress(pod)}/${host}`, 'dev', name)
  }
  ip('link', 'set', 'dev', name, 'up')
  for (const c of clusterCIDRs) ip(c.family === 4 ? '-4' : '-6', 'route', 'replace', formatCidr(c), 'dev', name)
}

/** Creates (or adopts) the pod bridge with each pod CIDR's gateway, the .1 address. */
export function ensureBridge (name: string, podCIDRs: Cidr[]): void {
  try {
    ip('link', 'add', name, 'type', 'bridge')
  } catch (err) {
    if (!/File exists/.test((err as Error).message)) throw err
  }
  for (const pod of podCIDRs) {
    ip(pod.family === 4 ? '-4' : '-6', 'addr', 'replace', `${formatAddress(nth(pod, 1))}/${pod.length}`, 'dev', name)
  }
  ip('link', 'set', 'dev', name, 'up')
}

const FORWARDING = {
  4: { file: '/proc/sys/net/ipv4/ip_forward', sysctl: 'net.ipv4.ip_forward' },
  6: { file: '/proc/sys/net/ipv6/conf/all/forwarding', sysctl: 'net.ipv6.conf.all.forwarding' },
} as const

/**
 * Pods on other nodes are reached by routing through this node, so forwarding must be
 * on. It is read first and written only when off: containerd, CRI-O and runc mount
 * /proc/sys read-only in every non-privileged container (the DaemonSet's), and flannel
 * likewise leaves forwarding to the node, which kubeadm's preflight requires.
 */
export function enableForwarding (families: Set<4 | 6>, read = (f: string) => readFileSync(f, 'utf8'), write = writeFileSync): void {
  for (const family of [...families].sort()) {
    const { file, sysctl } = FORWARDING[family]
    if (read(file).trim() === '1') continue
    try {
      write(file, '1')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw err
      throw new Error(`${sysctl} is 0 on this node and ${file} is read-only here (${code}, as in a non-privileged container): ` +
        `set ${sysctl}=1 on the node (sysctl -w, and a file in /etc/sysctl.d to keep it)`)
    }
  }
}
