// The data planes the benchmark compares, each built as a two-node lab cluster
// (veth underlay, one pod per node; docs/performance.md describes the lab).
import { execFileSync } from 'node:child_process'
import type { ClusterOptions, NodeSpec } from '../src/lab/cluster.js'
import { kernelVxlanUnavailable } from '../src/lab/kernel-vxlan.js'

export interface Mode {
  name: string
  description: string
  node: NodeSpec // both nodes run the same data plane
  cluster?: Pick<ClusterOptions, 'wireguard'> // what the lab sets up beyond the nodes
  userspace?: boolean // a process per node carries the packets: its CPU and memory are measured
  /** Why this mode cannot run on this machine, or undefined. */
  unavailable?: () => Promise<string | undefined> | string | undefined
}

/**
 * Every ratio in the report is taken against one mode's run in the same invocation:
 * kernel VXLAN, what flatnet replaces; where the host cannot run it, plain routes,
 * which every host can.
 */
export const BASELINES = ['kernel-vxlan', 'host-gw']

/** The baseline of a run of these modes, and a line saying why when it is not the first choice. */
export function chooseBaseline (modes: string[], unavailable: ReadonlyMap<string, string>): { baseline?: string, note?: string } {
  const usable = BASELINES.find((b) => modes.includes(b) && !unavailable.has(b))
  const [preferred] = BASELINES
  if (usable === preferred) return { baseline: usable }
  const why = unavailable.has(preferred) ? `${preferred} cannot run here: ${unavailable.get(preferred) as string}` : `${preferred} not in --modes`
  if (!usable) return { note: `no ratios: ${why}, and host-gw not in --modes` }
  return { baseline: usable, note: `ratios to ${usable}, not ${preferred}: ${why}` }
}

/** Why each of these modes cannot run on this machine, for those that cannot. */
export async function unavailableModes (modes: Mode[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const m of modes) {
    const why = await m.unavailable?.()
    if (why) out.set(m.name, why)
  }
  return out
}

// flatnet nodes run without their pod-egress masquerade (ipMasq), like the other
// modes' nodes: its NAT rules switch on conntrack for every packet of the node, and
// alone they cost flatnet ~4 us of round trip (p99 ~18 us) and ~4% of one stream.
function flatnet (offloads: boolean, extra: Record<string, unknown> = {}): NodeSpec {
  return { kind: 'flatnet', offloads, extra: { ipMasq: false, ...extra } }
}

export const MODES: Mode[] = [
  { name: 'host-gw', description: 'plain routes, no encapsulation (the limit)', node: { kind: 'host-gw' } },
  { name: 'kernel-vxlan', description: 'Linux vxlan, flannel-style', node: { kind: 'kernel-vxlan' }, unavailable: kernelVxlanUnavailable },
  {
    name: 'flatnet',
    description: 'flatnet, the defaults: offloads on, workers auto (per-cpu as root: a pinned worker per CPU, flows steered to it)',
    node: flatnet(true),
    userspace: true,
  },
  {
    name: 'flatnet-pipeline',
    description: 'flatnet, offloads on, workers pipeline (a transmit and a receive thread: what auto runs without CAP_BPF)',
    node: flatnet(true, { workers: 'pipeline' }),
    userspace: true,
  },
  {
    name: 'flatnet-busypoll',
    description: 'flatnet, offloads on, workers pipeline, busyPollMicros 200 (the pipeline\'s latency mode)',
    node: flatnet(true, { workers: 'pipeline', busyPollMicros: 200 }),
    userspace: true,
  },
  { name: 'flatnet-nooffload', description: 'flatnet, offloads off', node: flatnet(false), userspace: true },
  {
    name: 'flatnet-wireguard',
    description: 'flatnet, the defaults, encryption "wireguard" (ChaCha20-Poly1305 on the packet threads)',
    node: flatnet(true),
    cluster: { wireguard: true },
    userspace: true,
  },
  {
    name: 'wireguard-go',
    description: 'Debian\'s wireguard-go, configured as flannel\'s wireguard backend (the userspace WireGuard anchor)',
    node: { kind: 'wireguard-go' },
    cluster: { wireguard: true },
    userspace: true,
    unavailable: () => installed('wireguard-go', '--version') && installed('wg', '--version') ? undefined : 'wireguard-go or wg is not installed (apt-get install wireguard-go wireguard-tools)',
  },
  {
    name: 'openvpn',
    description: 'OpenVPN p2p UDP, no crypto',
    node: { kind: 'openvpn' },
    userspace: true,
    unavailable: () => installed('openvpn', '--version') ? undefined : 'openvpn is not installed',
  },
]

export function modeNamed (name: string): Mode {
  const mode = MODES.find((m) => m.name === name)
  if (!mode) throw new Error(`--modes: unknown mode "${name}"; known: ${MODES.map((m) => m.name).join(', ')}`)
  return mode
}

function installed (cmd: string, ...args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch (err) {
    // openvpn --version exits 1 but runs; only a missing binary is "not installed".
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
}
