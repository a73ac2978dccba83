// OpenVPN as a lab data plane: the classic userspace tunnel flatnet is compared with.
// Point-to-point over UDP with no TLS and no cipher, so what is measured
// is the TUN <-> UDP path of one single-threaded process per node, not cryptography.
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { LabNode } from './cluster.js'
import { readLog } from './netns.js'

const PORT = 1194
const DEV = 'ovpn0'
// Same inner MTU as flannel.1 over a 1500-byte underlay, so the outer datagrams are
// not fragmented (openvpn's own overhead without crypto is well under 50 bytes).
const TUN_MTU = 1450

/**
 * Starts openvpn in node `n`'s namespace towards its single peer, waits until the
 * tunnel is up, and routes the peer's pod CIDR through it. The process is spawned
 * with the namespace, so destroying the namespace stops it.
 */
export async function startOpenvpn (n: LabNode, peers: LabNode[], dir: string, timeoutMs = 10_000): Promise<ChildProcess> {
  if (peers.length !== 1) throw new Error(`${n.name}: the openvpn data plane is point-to-point; got ${peers.length} peers, use two nodes`)
  const [peer] = peers
  const logFile = join(dir, `${n.name}-openvpn.log`)
  // Tunnel addresses: 10.8.0.<node index>, peer to peer.
  const child = n.ns.spawn('openvpn', [
    '--dev', DEV, '--dev-type', 'tun', '--tun-mtu', String(TUN_MTU),
    '--proto', 'udp', '--local', n.underlayIP, '--lport', String(PORT), '--remote', peer.underlayIP, '--rport', String(PORT),
    '--ifconfig', `10.8.0.${n.index}`, `10.8.0.${peer.index}`,
    // Without --secret or TLS, openvpn 2.6 runs in clear text (it warns; 2.7 drops this mode).
    '--cipher', 'none', '--auth', 'none',
    '--disable-dco', // the kernel data-channel offload would not be a userspace tunnel
    '--verb', '3',
  ], logFile)
  const deadline = Date.now() + timeoutMs
  // The TUN device exists once openvpn has configured it; the peer may not be up yet,
  // which is fine: datagrams to it are simply dropped until it is.
  while (!readLog(logFile).includes(`net_addr_ptp_v4_add: 10.8.0.${n.index}`)) {
    if (child.exitCode !== null) throw new Error(`${n.name}: openvpn exited (${child.exitCode}):\n${readLog(logFile)}`)
    if (Date.now() > deadline) throw new Error(`${n.name}: openvpn tunnel not up after ${timeoutMs} ms:\n${readLog(logFile)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  n.ns.ip('route', 'replace', peer.podCIDR, 'dev', DEV)
  return child
}
