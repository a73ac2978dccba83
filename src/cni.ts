// The kubelet's side of the node: a CNI network config that hands each pod a veth
// on the pod bridge (reference `bridge` + `host-local` IPAM + `portmap`), and a
// subnet file like flannel's subnet.env. Written only once the data plane is ready,
// because the kubelet marks the node's network ready as soon as a conflist appears.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type Cidr, formatAddress, formatCidr, nth } from './net/cidr.js'
import { DEFAULT_CNI_BIN_DIR } from './cni-plugins.js'
import { CNI_PLUGIN, DEFAULT_CNI_SOCKET } from './guard/cni-server.js'

export const CNI_VERSION = '1.0.0' // Debian bookworm's plugins (1.1.1) speak 0.1.0..1.0.0
export const CONFLIST_NAME = '10-flatnet.conflist'

export interface CniConfig {
  confDir: string // where the kubelet (or containerd) looks: /etc/cni/net.d
  subnetFile: string // FLATNET_NETWORK, FLATNET_SUBNET, FLATNET_MTU, FLATNET_IPMASQ
  ipamDataDir?: string // host-local's reservations; undefined: its default, /var/lib/cni/networks
  bridge: string // the pod bridge the `bridge` plugin creates or adopts
  binDir: string // the kubelet's CNI binary directory, checked for the plugins the conflist needs
  socket: string // where flatnet-cni reaches the daemon
}

export const DEFAULT_CNI: CniConfig = {
  confDir: '/etc/cni/net.d',
  subnetFile: '/run/flatnet/subnet.env',
  bridge: 'cni0',
  binDir: DEFAULT_CNI_BIN_DIR,
  socket: DEFAULT_CNI_SOCKET,
}

export interface NodeNetwork {
  clusterCIDRs: Cidr[]
  podCIDRs: Cidr[]
  mtu: number // the TUN's: pods must not send more than the overlay carries
  ipMasq: boolean
}

/**
 * The conflist libcni reads: a bridge with the gateway (.1) on the node, hairpin
 * for a pod reaching itself through a Service, one host-local range per pod CIDR
 * (dual-stack: one IPv4 and one IPv6 address per pod) and a default route per
 * family. The bridge plugin's own ipMasq stays off: flatnet masquerades in its
 * own nftables table, so the rules exist once per node, not once per pod. Last,
 * flatnet-cni hands the result to the daemon, which binds the pod's addresses to its
 * port and refuses the pod while it cannot isolate it (src/guard/).
 */
export function conflist (net: NodeNetwork, cni: CniConfig): Record<string, unknown> {
  const ipam: Record<string, unknown> = {
    type: 'host-local',
    ranges: net.podCIDRs.map((c) => [{ subnet: formatCidr(c), gateway: formatAddress(nth(c, 1)) }]),
    routes: net.podCIDRs.map((c) => ({ dst: c.family === 4 ? '0.0.0.0/0' : '::/0' })),
  }
  if (cni.ipamDataDir) ipam.dataDir = cni.ipamDataDir
  return {
    cniVersion: CNI_VERSION,
    name: 'flatnet',
    plugins: [
      {
        type: 'bridge',
        bridge: cni.bridge,
        isGateway: true,
        isDefaultGateway: false, // the routes come from ipam, one per family
        hairpinMode: true,
        ipMasq: false,
        mtu: net.mtu,
        ipam,
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: CNI_PLUGIN, socket: cni.socket },
    ],
  }
}

/** flannel's subnet.env, renamed: what other node tooling reads to learn the node's network. */
export function subnetEnv (net: NodeNetwork): string {
  const list = (cidrs: Cidr[]): string => cidrs.map(formatCidr).join(',')
  return [
    `FLATNET_NETWORK=${list(net.clusterCIDRs)}`,
    `FLATNET_SUBNET=${list(net.podCIDRs.map((c) => ({ ...nth(c, 1), length: c.length })))}`,
    `FLATNET_MTU=${net.mtu}`,
    `FLATNET_IPMASQ=${String(net.ipMasq)}`,
    '',
  ].join('\n')
}

/** Writes both files, each to a temporary name then renamed: a reader never sees half a file. */
export function writeCniFiles (net: NodeNetwork, cni: CniConfig): { conflist: string, subnetFile: string } {
  const conflistFile = join(cni.confDir, CONFLIST_NAME)
  writeAtomic(cni.subnetFile, subnetEnv(net))
  // The conflist last: its appearance is what tells the kubelet the node is ready for pods.
  writeAtomic(conflistFile, `${JSON.stringify(conflist(net, cni), null, 2)}\n`)
  return { conflist: conflistFile, subnetFile: cni.subnetFile }
}

function writeAtomic (file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp` // same directory: rename is atomic
  writeFileSync(tmp, text, { mode: 0o644 })
  renameSync(tmp, file)
}
