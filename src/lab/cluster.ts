// A small cluster in network namespaces: an underlay joining the nodes, a pod
// bridge (cni0) on each node with pods behind it, and one data plane per node —
// flatnet, the kernel's vxlan configured as flannel does, or plain routes (host-gw).
// Used by the integration tests, `npm run demo` and the benchmarks.
import { once } from 'node:events'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn, type ChildProcess } from 'node:child_process'
import { formatMac, macFromName } from '../net/mac.js'
import { Namespace, readLog, stopProcess, untilTeardown } from './netns.js'
import { startOpenvpn } from './openvpn.js'
import { controlSocketOf, startWireguardGo } from './wireguard-go.js'
import { formatKey, generatePrivateKey, publicKeyOf } from '../wireguard/keys.js'
import { CNI_PLUGIN_DIR, CNI_SHIM } from './tools.js'
import { CNI_PLUGINS } from '../cni-plugins.js'
import { CNI_PLUGIN } from '../guard/cni-server.js'
import { bindScript } from '../guard/port-guard.js'

export type DataplaneKind = 'flatnet' | 'kernel-vxlan' | 'host-gw' | 'openvpn' | 'wireguard-go'

export interface NodeSpec {
  kind: DataplaneKind
  offloads?: boolean // flatnet only; default true
  extra?: Record<string, unknown> // flatnet only: more config fields
  args?: string[] // flatnet only: more `flatnet daemon` flags
  launcher?: string[] // flatnet only: a command the daemon runs under (e.g. setpriv dropping a capability)
  runner?: DaemonRunner // flatnet only: starts the daemon some other way (e.g. as a container)
  wireguard?: false // flatnet only, with options.wireguard: this node has no key and encryption "none"
}

/** Starts a flatnet node's daemon in place of `node bin/flatnet.js daemon --config <file>` in the node's namespace. */
export interface DaemonRunner {
  /** The command that runs the daemon in the foreground, from the root namespace: it must put the daemon in n.ns itself
   *  (a container engine joins it; under `ip netns exec` one would lose /sys/fs/cgroup). Output goes to the node's log. */
  command: (n: LabNode) => string[]
  /** Removes what the command leaves behind (e.g. `podman rm -f`), synchronously: also runs when the process dies first. */
  cleanup: (n: LabNode) => void
}

export interface ClusterOptions {
  nodes: NodeSpec[]
  podsPerNode?: number // default 1
  underlay?: 'bridge' | 'veth' // veth: two nodes joined directly (the benchmark topology)
  underlayMTU?: number // default 1500
  vni?: number
  port?: number
  tag?: string // namespace names: flatnet-<tag>-...
  cniPods?: boolean // no lab pods and no daemon-made bridge: the test adds pods with the CNI plugins
  dualStack?: boolean // flatnet nodes only: IPv6 pod CIDRs (fd00:10:244:N::/64) beside the IPv4 ones
  ipv6Underlay?: boolean // flatnet and wireguard-go nodes only: the underlay (and the VTEPs) on fd00:77::N
  // Every node has a WireGuard key (made by the lab): flatnet nodes run encryption "wireguard"
  // with their peers' keys in the config; wireguard-go nodes need it.
  wireguard?: boolean
}

export interface Pod {
  ns: Namespace
  ip: string
  ip6?: string // dual-stack clusters
}

export interface LabNode {
  name: string
  index: number
  spec: NodeSpec
  ns: Namespace
  underlayIP: string
  podCIDR: string
  podCIDR6?: string // dual-stack clusters
  cniDir: string // this node's CNI conf dir, subnet file and host-local data, inside the cluster's temp dir
  vtepMAC: string
  pods: Pod[]
  daemon?: ChildProcess
  configFile?: string
  logFile?: string
}

export const CLUSTER_CIDR = '10.244.0.0/16'
export const CLUSTER_CIDR6 = 'fd00:10:244::/48'
const UNDERLAY_PREFIX = '192.168.77.'
const UNDERLAY_PREFIX6 = 'fd00:77::'
const REPO = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url))
export const CLI = join(REPO, 'bin/flatnet.js')

export class Cluster {
  readonly nodes: LabNode[] = []
  readonly dir = mkdtempSync(join(tmpdir(), 'flatnet-lab-'))
  private readonly namespaces: Namespace[] = []
  private underlay?: Namespace
  private readonly runnerUndos = new Map<LabNode, () => void>()
  private readonly wgKeys = new Map<LabNode, Buffer>() // with options.wireguard
  private readonly wgDevices: string[] = []
  // Registered before any namespace, so it is undone after them all.
  private readonly dropDir = untilTeardown(() => rmSync(this.dir, { recursive: true, force: true }))

  private constructor (readonly tag: string, readonly options: ClusterOptions) {}

  static async create (options: ClusterOptions): Promise<Cluster> {
    const tag = options.tag ?? Math.random().toString(36).slice(2, 7)
    const cluster = new Cluster(tag, options)
    try {
      await cluster.build()
    } catch (err) {
      await cluster.destroy()
      throw err
    }
    return cluster
  }

  /** A namespace flatnet-<tag>-<suffix>, destroyed with the cluster (e.g. a pod the CNI plugins wire up). */
  ns (suffix: string): Namespace {
    const ns = Namespace.create(`flatnet-${this.tag}-${suffix}`)
    this.namespaces.push(ns)
    return ns
  }

  private async build (): Promise<void> {
    const { nodes, underlay = nodes.length === 2 ? 'veth' : 'bridge', underlayMTU = 1500 } = this.options
    if (underlay === 'veth' && nodes.length !== 2) throw new Error('a veth underlay joins exactly two nodes')
    const v6 = this.options.ipv6Underlay === true
    // wireguard-go carries a pod's IPv4 packet over an IPv6 underlay as flannel's backend does;
    // the other kinds' lab set-ups are IPv4 only.
    if (this.options.dualStack && nodes.some((s) => s.kind !== 'flatnet')) throw new Error('dual-stack lab clusters run flatnet nodes only')
    if (v6 && nodes.some((s) => s.kind !== 'flatnet' && s.kind !== 'wireguard-go')) throw new Error('IPv6-underlay lab clusters run flatnet and wireguard-go nodes only')
    nodes.forEach((spec, i) => {
      const index = i + 1
      const name = `n${index}`
      this.nodes.push({
        name,
        index,
        spec,
        ns: this.ns(name),
        underlayIP: v6 ? `${UNDERLAY_PREFIX6}${index}` : `${UNDERLAY_PREFIX}${index}`,
        podCIDR: `10.244.${index}.0/24`,
        podCIDR6: this.options.dualStack ? `fd00:10:244:${index}::/64` : undefined,
        cniDir: join(this.dir, name),
        vtepMAC: formatMac(macFromName(name)),
        pods: [],
      })
    })
    if (underlay === 'veth') {
      const [a, b] = this.nodes
      a.ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b.ns.name)
    } else {
      this.underlay = this.ns('ul')
      this.underlay.ip('link', 'add', 'br0', 'type', 'bridge')
      this.underlay.ip('link', 'set', 'br0', 'up')
      for (const n of this.nodes) {
        this.underlay.ip('link', 'add', `u${n.index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.ns.name)
        this.underlay.ip('link', 'set', `u${n.index}`, 'master', 'br0', 'mtu', String(underlayMTU), 'up')
      }
    }
    for (const n of this.nodes) {
      n.ns.ip('link', 'set', 'eth0', 'mtu', String(underlayMTU), 'up')
      if (v6) n.ns.ip('-6', 'addr', 'add', `${n.underlayIP}/64`, 'dev', 'eth0', 'nodad')
      else n.ns.ip('addr', 'add', `${n.underlayIP}/24`, 'dev', 'eth0')
      n.ns.sysctl('net.ipv4.ip_forward', '1')
      if (v6 || this.options.dualStack) {
        n.ns.sysctl('net.ipv6.conf.all.forwarding', '1')
        // No duplicate address detection on the bridge: its gateway would stay tentative for a second.
        n.ns.sysctl('net.ipv6.conf.default.accept_dad', '0')
      }
    }
    if (!this.options.wireguard && nodes.some((s) => s.kind === 'wireguard-go')) throw new Error('wireguard-go nodes need options.wireguard')
    for (const n of this.options.wireguard ? this.nodes : []) {
      if (n.spec.wireguard === false) continue
      const key = generatePrivateKey()
      this.wgKeys.set(n, key)
      writeFileSync(this.wgKeyFile(n), formatKey(key) + '\n', { mode: 0o600 })
    }
    for (const n of this.nodes) await this.startDataplane(n)
    for (const n of this.nodes) {
      if (this.options.cniPods) continue
      for (let j = 0; j < (this.options.podsPerNode ?? 1); j++) this.addPod(n)
    }
  }

  private peersOf (n: LabNode): LabNode[] {
    return this.nodes.filter((p) => p !== n)
  }

  private async startDataplane (n: LabNode): Promise<void> {
    const vni = this.options.vni ?? 1
    const port = this.options.port ?? 8472
    if (n.spec.kind === 'flatnet') {
      n.configFile = join(this.dir, `${n.name}.json`)
      n.logFile = join(this.dir, `${n.name}.log`)
      writeFileSync(n.configFile, JSON.stringify(this.flatnetConfig(n), null, 2))
      await this.startDaemon(n)
      return
    }
    ensureBridge(n)
    if (n.spec.kind === 'openvpn') { n.daemon = await startOpenvpn(n, this.peersOf(n), this.dir); return }
    if (n.spec.kind === 'wireguard-go') {
      const device = this.wgDevice(n)
      this.wgDevices.push(device)
      const peers = this.peersOf(n).map((p) => ({ node: p, publicKey: publicKeyOf(this.wgKeys.get(p) as Buffer) }))
      // 20 (IPv4) or 40 (IPv6) + 8 + 32 bytes of WireGuard around each packet, as flatnet's TUN allows.
      const overhead = this.options.ipv6Underlay === true ? 80 : 60
      n.daemon = await startWireguardGo(n, device, this.wgKeys.get(n) as Buffer, peers, CLUSTER_CIDR, (this.options.underlayMTU ?? 1500) - overhead, this.dir)
      return
    }
    if (n.spec.kind === 'host-gw') {
      for (const p of this.peersOf(n)) n.ns.ip('route', 'replace', p.podCIDR, 'via', p.underlayIP, 'dev', 'eth0')
      return
    }
    // flannel's vxlan backend: flannel.1 with the subnet's .0/32, then per peer a
    // permanent neighbour (.0 -> VTEP MAC), an FDB entry (MAC -> node) and a route.
    // The underlay keeps its default offloads, so this node sends inner checksums
    // partial, as on a veth or virtio-net underlay: flatnet peers must finish them.
    const dev = 'flannel.1'
    n.ns.ip('link', 'add', dev, 'type', 'vxlan', 'id', String(vni), 'dstport', String(port),
      'local', n.underlayIP, 'dev', 'eth0', 'nolearning')
    n.ns.ip('link', 'set', dev, 'address', n.vtepMAC, 'mtu', String((this.options.underlayMTU ?? 1500) - 50), 'up')
    n.ns.ip('addr', 'add', `${n.podCIDR.replace('/24', '')}/32`, 'dev', dev)
    for (const p of this.peersOf(n)) {
      const gw = p.podCIDR.replace('/24', '')
      n.ns.ip('neigh', 'replace', gw, 'lladdr', p.vtepMAC, 'dev', dev, 'nud', 'permanent')
      n.ns.exec('bridge', 'fdb', 'append', p.vtepMAC, 'dev', dev, 'dst', p.underlayIP)
      n.ns.ip('route', 'replace', p.podCIDR, 'via', gw, 'dev', dev, 'onlink')
    }
  }

  flatnetConfig (n: LabNode): Record<string, unknown> {
    const both = (v4: string, v6: string | undefined): string | string[] => v6 ? [v4, v6] : v4
    return {
      nodeName: n.name,
      clusterCIDR: both(CLUSTER_CIDR, this.options.dualStack ? CLUSTER_CIDR6 : undefined),
      podCIDR: both(n.podCIDR, n.podCIDR6),
      underlay: { address: n.underlayIP, port: this.options.port ?? 8472 },
      vni: this.options.vni ?? 1,
      vtepMAC: n.vtepMAC,
      bridge: this.options.cniPods ? undefined : { name: 'cni0' },
      // All namespaces share one filesystem: never /etc/cni/net.d or /var/lib/cni.
      cni: { confDir: join(n.cniDir, 'net.d'), subnetFile: join(n.cniDir, 'subnet.env'), ipamDataDir: join(n.cniDir, 'ipam'), binDir: this.cniBinDir, socket: join(this.dir, `${n.name}-cni.sock`) },
      // Per cluster, not /var/lib/flatnet: node names repeat across clusters.
      stateFile: join(this.dir, `${n.name}.peers`),
      controlSocket: join(this.dir, `${n.name}.sock`),
      offloads: n.spec.offloads ?? true,
      peers: this.peersOf(n).filter((p) => p.spec.kind !== 'host-gw').map((p) => ({
        nodeName: p.name,
        podCIDR: both(p.podCIDR, p.podCIDR6),
        address: p.underlayIP,
        // A wireguard-go node is one of flannel's wireguard backend: no VTEP, a key alone (a node
        // that does not encrypt could not name it at all).
        ...(p.spec.kind === 'wireguard-go' && this.wgKeys.has(n) ? {} : { vtepMAC: p.vtepMAC }),
        ...(this.wgKeys.has(p) ? { wireguardPublicKey: formatKey(publicKeyOf(this.wgKeys.get(p) as Buffer)) } : {}),
      })),
      ...n.spec.extra,
      ...(this.wgKeys.has(n)
        ? { encryption: 'wireguard', wireguard: { privateKeyFile: this.wgKeyFile(n), ...n.spec.extra?.wireguard as Record<string, unknown> | undefined } }
        : {}),
    }
  }

  private wgKeyFile (n: LabNode): string {
    return join(this.dir, `${n.name}.wireguard.key`)
  }

  /** A wireguard-go node's device: its own name, as wireguard-go's control socket is shared by all namespaces. */
  wgDevice (n: LabNode): string {
    return `fwg${n.index}-${this.tag}`.slice(0, 15)
  }

  /** A node's WireGuard public key (options.wireguard). */
  wgPublicKey (n: LabNode): Buffer | undefined {
    const k = this.wgKeys.get(n)
    return k && publicKeyOf(k)
  }

  /** Starts (or restarts) a flatnet node's daemon and waits for its `ready` line. */
  async startDaemon (n: LabNode, timeoutMs = 10_000): Promise<void> {
    const logFile = n.logFile as string
    const before = readLog(logFile).length
    const runner = n.spec.runner
    if (runner) {
      runner.cleanup(n) // a previous run's leftovers
      const [cmd, ...args] = runner.command(n)
      const out = openSync(logFile, 'a')
      n.daemon = spawn(cmd, args, { stdio: ['ignore', out, out] })
      if (!this.runnerUndos.has(n)) this.runnerUndos.set(n, untilTeardown(() => runner.cleanup(n)))
    } else {
      const [cmd, ...args] = [...(n.spec.launcher ?? []), process.execPath, CLI, 'daemon', '--config', n.configFile as string, ...(n.spec.args ?? [])]
      n.daemon = n.ns.spawn(cmd, args, logFile)
    }
    await this.untilLogged(n, before, '"msg":"ready"', n.daemon, timeoutMs)
  }

  /**
   * Starts a successor beside a flatnet node's running daemon, as a DaemonSet's surge pod
   * is (spec: how it differs, e.g. its launcher), and waits until the running one has
   * registered it. The successor takes over at the running daemon's SIGTERM.
   */
  async startSuccessor (n: LabNode, spec: Partial<NodeSpec> = {}, timeoutMs = 10_000): Promise<ChildProcess> {
    const logFile = n.logFile as string
    const before = readLog(logFile).length
    const { launcher, args } = { ...n.spec, ...spec }
    const [cmd, ...rest] = [...(launcher ?? []), process.execPath, CLI, 'daemon', '--config', n.configFile as string, ...(args ?? [])]
    const successor = n.ns.spawn(cmd, rest, logFile)
    await this.untilLogged(n, before, '"msg":"a successor waits', successor, timeoutMs)
    return successor
  }

  /**
   * Updates a flatnet node's daemon as a DaemonSet's rolling update does: a successor
   * beside it (startSuccessor), then the SIGTERM to the old one, which hands the data
   * plane over. Resolves to the old daemon's exit code and the time from its SIGTERM to
   * the successor's `ready`.
   */
  async handOver (n: LabNode, spec: Partial<NodeSpec> = {}, timeoutMs = 10_000): Promise<{ code: number | null, ms: number }> {
    const old = n.daemon
    if (!old || old.exitCode !== null) throw new Error(`${n.name}: no daemon running to hand over`)
    const exited = once(old, 'exit') as Promise<[number | null]>
    const successor = await this.startSuccessor(n, spec, timeoutMs)
    const before = readLog(n.logFile as string).length
    const start = Date.now()
    old.kill('SIGTERM')
    n.daemon = successor
    await this.untilLogged(n, before, '"msg":"ready"', successor, timeoutMs)
    const ms = Date.now() - start
    const [code] = await exited
    return { code, ms }
  }

  /** Resolves once `text` is in n's log past offset `from`; throws if `daemon` exits first, or after timeoutMs. */
  async untilLogged (n: LabNode, from: number, text: string, daemon?: ChildProcess, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!readLog(n.logFile as string).slice(from).includes(text)) {
      if (daemon && daemon.exitCode !== null) throw new Error(`${n.name}: daemon exited (${daemon.exitCode}):\n${readLog(n.logFile as string).slice(from)}`)
      if (Date.now() > deadline) throw new Error(`${n.name}: no ${text} after ${timeoutMs} ms:\n${readLog(n.logFile as string).slice(from)}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Stops a node's daemon with SIGTERM; resolves to its exit code and how long it took. */
  async stopDaemon (n: LabNode): Promise<{ code: number | null, ms: number }> {
    const d = n.daemon
    // Gone already (exited, or killed by a signal such as a crash): no 'exit' is coming.
    if (!d || d.exitCode !== null || d.signalCode !== null) return { code: d?.exitCode ?? null, ms: 0 }
    const start = Date.now()
    d.kill('SIGTERM')
    const [code] = await once(d, 'exit') as [number | null]
    return { code, ms: Date.now() - start }
  }

  /** The kubelet's CNI binary directory for this cluster: Debian's reference plugins and the flatnet-cni this tree built. */
  get cniBinDir (): string {
    const dir = join(this.dir, 'cni-bin')
    if (this.binDirMade) return dir
    mkdirSync(dir, { recursive: true })
    for (const p of CNI_PLUGINS) symlinkSync(p === CNI_PLUGIN ? CNI_SHIM : join(CNI_PLUGIN_DIR, p), join(dir, p))
    this.binDirMade = true
    return dir
  }

  private binDirMade = false

  /**
   * The lab's pods are wired by hand, not by the conflist, so their ports are bound by hand
   * too, as a flatnet-cni ADD would have bound them (src/guard/): every frame they send
   * passes the node's pod port rules. Pods through the conflist go through flatnet-cni itself.
   */
  private bindPod (n: LabNode, port: string, pod: Pod): void {
    execFileSync('ip', ['netns', 'exec', n.ns.name, 'nft', '-f', '-'], { input: bindScript({ port, v4: [pod.ip], v6: pod.ip6 ? [pod.ip6] : [] }), stdio: ['pipe', 'ignore', 'pipe'] })
  }

  /** A pod behind the node's cni0: its own namespace, a veth, an address of the node's pod CIDR (the next free one, or ip). */
  addPod (n: LabNode, ip = `10.244.${n.index}.${10 + n.pods.length}`): Pod {
    const j = n.pods.length + 1
    const ns = this.ns(`${n.name}p${j}`)
    ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `vp${j}`, 'netns', n.ns.name)
    n.ns.ip('link', 'set', `vp${j}`, 'master', 'cni0', 'up')
    ns.ip('addr', 'add', `${ip}/24`, 'dev', 'eth0')
    ns.ip('link', 'set', 'eth0', 'up')
    ns.ip('route', 'add', 'default', 'via', `10.244.${n.index}.1`)
    let ip6: string | undefined
    if (n.podCIDR6) {
      ip6 = n.podCIDR6.replace('::/64', `::${(9 + j).toString(16)}`)
      ns.ip('-6', 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad')
      ns.ip('-6', 'route', 'add', 'default', 'via', n.podCIDR6.replace('::/64', '::1'))
    }
    const pod = { ns, ip, ip6 }
    if (n.spec.kind === 'flatnet' && n.spec.extra?.cni !== false) this.bindPod(n, `vp${j}`, pod)
    n.pods.push(pod)
    return pod
  }

  /** A host outside the cluster on the underlay bridge (e.g. for NAT tests): never a real address. */
  attachToUnderlay (suffix: string, address: string): Namespace {
    if (!this.underlay) throw new Error('attachToUnderlay needs a bridge underlay')
    const ns = this.ns(suffix)
    const port = `o-${suffix}`.slice(0, 15)
    this.underlay.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name)
    this.underlay.ip('link', 'set', port, 'master', 'br0', 'up')
    const v6 = address.includes(':')
    ns.ip(v6 ? '-6' : '-4', 'addr', 'add', `${address}/${v6 ? 64 : 24}`, 'dev', 'eth0', ...(v6 ? ['nodad'] : []))
    ns.ip('link', 'set', 'eth0', 'up')
    return ns
  }

  log (n: LabNode): string {
    return n.logFile ? readLog(n.logFile) : ''
  }

  async destroy (): Promise<void> {
    // Daemons started by a runner are no namespace's children: stopped and cleaned up first.
    for (const [n, drop] of this.runnerUndos) {
      if (n.daemon) await stopProcess(n.daemon)
      n.spec.runner?.cleanup(n)
      drop()
    }
    this.runnerUndos.clear()
    // Pods and nodes first (their processes), the underlay last.
    for (const ns of [...this.namespaces].reverse()) await ns.destroy()
    for (const d of this.wgDevices) rmSync(controlSocketOf(d), { force: true })
    rmSync(this.dir, { recursive: true, force: true })
    this.dropDir()
  }
}

function ensureBridge (n: LabNode): void {
  n.ns.ip('link', 'add', 'cni0', 'type', 'bridge')
  n.ns.ip('addr', 'add', n.podCIDR.replace('.0/24', '.1/24'), 'dev', 'cni0')
  n.ns.ip('link', 'set', 'cni0', 'up')
}
