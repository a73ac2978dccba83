// Each pod's addresses bound to its bridge port: NetworkPolicy judges a packet by its
// source address, so a pod must not choose it. In the bridge family, where the port a
// frame came in on is known (iifname; the inet hooks see only the bridge), a frame from
// a port of the pod bridge passes only with a source its pod was given: IPv4 and the ARP
// sender address, IPv6 (its link-local addresses and DAD's unspecified source aside) and
// the target of its neighbour advertisements. Router advertisements and redirects from
// pods are dropped whatever their source (CVE-2020-10749). Calico and Cilium check the
// same per workload interface. Every pod port is bound before the pod runs: flatnet-cni's
// ADD binds it or fails. Ports nobody bound (other bridges' on the node) are not judged
// here: which bridge a port belongs to (meta ibrname) needs nft_meta_bridge, which not
// every kernel builds. The table outlives the daemon, as the policy table does: a
// restart or an update keeps every pod bound.
import { readdirSync } from 'node:fs'
import type { Logger } from '../log.js'
import { parseAddress } from '../net/cidr.js'
import { nftAsync } from '../net/nft.js'

export const GUARD_TABLE = 'flatnet-guard'

export interface Binding {
  port: string // the host side of the pod's veth, a port of the bridge
  v4: string[]
  v6: string[]
}

/** The table: sets declared (kept when they exist), the chain's rules replaced. */
export function guardScript (): string {
  const t = `bridge ${GUARD_TABLE}`
  return [
    `table ${t} {`,
    '  set ports { type ifname; }',
    '  set addrs4 { type ifname . ipv4_addr; }',
    '  set addrs6 { type ifname . ipv6_addr; }',
    // The same addresses as 128-bit integers: nft types a raw payload (the target below) as one.
    '  set targets6 { typeof iifname . @th,64,128; }',
    '  counter spoofed { }',
    '  counter router { }',
    // Before br_netfilter (priority 0) hands the frame to the inet hooks.
    '  chain prerouting { type filter hook prerouting priority filter; policy accept; }',
    '}',
    `flush chain ${t} prerouting`,
    ...[
      'iifname != @ports accept',
      // ARP probes (RFC 5227) carry the unspecified sender address.
      'ether type arp arp saddr ip 0.0.0.0 accept',
      'ether type arp iifname . arp saddr ip @addrs4 accept',
      'ether type ip iifname . ip saddr @addrs4 accept',
      'ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } counter name router drop',
      // A neighbour advertisement's target (RFC 4861 4.4, at byte 8 of the ICMPv6 header)
      // is what a neighbour cache learns: another pod's address there would take its traffic.
      'ether type ip6 icmpv6 type nd-neighbor-advert @th,64,16 != 0xfe80 iifname . @th,64,128 != @targets6 counter name spoofed drop',
      'ether type ip6 ip6 saddr { ::, fe80::/10 } accept',
      'ether type ip6 iifname . ip6 saddr @addrs6 accept',
      // Anything else: a forged source, or a frame type pods have no use for (VLAN tags).
      'counter name spoofed drop',
    ].map((r) => `add rule ${t} prerouting ${r}`),
    '',
  ].join('\n')
}

/** The commands that bind b's addresses to its port (an nft script). */
export function bindScript (b: Binding): string {
  return elements(b).map((e) => `add element ${e}`).join('\n') + '\n'
}

function elements (b: Binding): string[] {
  const port = JSON.stringify(b.port)
  return [
    `bridge ${GUARD_TABLE} ports { ${port} }`,
    ...(b.v4.length ? [`bridge ${GUARD_TABLE} addrs4 { ${b.v4.map((a) => `${port} . ${a}`).join(', ')} }`] : []),
    ...(b.v6.length ? [`bridge ${GUARD_TABLE} addrs6 { ${b.v6.map((a) => `${port} . ${a}`).join(', ')} }`] : []),
    ...(b.v6.length ? [`bridge ${GUARD_TABLE} targets6 { ${b.v6.map((a) => `${port} . ${hex(a)}`).join(', ')} }`] : []),
  ]
}

function hex (v6: string): string {
  const a = parseAddress(v6)
  if (a === undefined || a.family !== 6) throw new Error(`${v6} is not an IPv6 address`)
  return `0x${Buffer.from(a.bytes).toString('hex')}`
}

interface NftSetJson { nftables: Array<{ set?: { name: string, elem?: unknown[] } }> }

/** The bindings a table holds (`nft -j list table bridge flatnet-guard`). */
export function bindingsOf (json: string): Map<string, Binding> {
  const out = new Map<string, Binding>()
  const get = (port: string): Binding => {
    let b = out.get(port)
    if (b === undefined) out.set(port, b = { port, v4: [], v6: [] })
    return b
  }
  for (const item of (JSON.parse(json) as NftSetJson).nftables) {
    const set = item.set
    if (set === undefined) continue
    for (const e of set.elem ?? []) {
      if (set.name === 'ports' && typeof e === 'string') get(e)
      const concat = (e as { concat?: unknown[] }).concat
      if (!Array.isArray(concat) || typeof concat[0] !== 'string' || typeof concat[1] !== 'string') continue
      if (set.name === 'addrs4') get(concat[0]).v4.push(concat[1])
      if (set.name === 'addrs6') get(concat[0]).v6.push(concat[1])
    }
  }
  return out
}

/** The bridge's ports now (/sys/class/net/<bridge>/brif); none when it does not exist yet. */
export function bridgePorts (bridge: string): Set<string> {
  try {
    return new Set(readdirSync(`/sys/class/net/${bridge}/brif`))
  } catch {
    return new Set()
  }
}

export class PortGuard {
  private readonly bindings = new Map<string, Binding>()
  private queue: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private created = false

  constructor (readonly bridge: string, private readonly log: Logger, private readonly gcEveryMs = 10_000) {}

  /** Reads what a predecessor bound, then puts the rules in: no bound port is ever unbound meanwhile. */
  async start (): Promise<void> {
    try {
      for (const [port, b] of bindingsOf(await nftAsync(['-j', 'list', 'table', 'bridge', GUARD_TABLE]))) this.bindings.set(port, b)
    } catch {
      this.created = true // no table yet
    }
    await nftAsync(['-f', '-'], guardScript())
    await this.gc()
    this.timer = setInterval(() => { this.gc().catch((err: Error) => this.log.warn({ err: err.message }, 'pod port guard: cleanup failed')) }, this.gcEveryMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** A start that failed: the table goes if this daemon made it and bound nothing in it. */
  async undo (): Promise<void> {
    this.stop()
    if (this.created && this.bindings.size === 0) await nftAsync(['delete', 'table', 'bridge', GUARD_TABLE]).catch(() => {})
  }

  get (port: string): Binding | undefined {
    return this.bindings.get(port)
  }

  get size (): number {
    return this.bindings.size
  }

  /** The port's addresses, replacing any it had (a veth name reused by a later pod). */
  async bind (b: Binding): Promise<void> {
    await this.serial(async () => {
      const old = this.bindings.get(b.port)
      const script = [...(old ? elements(old).map((e) => `delete element ${e}`) : []), ...elements(b).map((e) => `add element ${e}`)]
      await nftAsync(['-f', '-'], script.join('\n') + '\n')
      this.bindings.set(b.port, b)
    })
  }

  async unbind (port: string): Promise<void> {
    await this.serial(async () => await this.remove(port))
  }

  /** Drops the bindings of ports gone from the bridge (a DEL that never reached this daemon). */
  async gc (): Promise<void> {
    await this.serial(async () => {
      // Read in turn with bind: a port bound after this read is not taken for gone.
      const present = bridgePorts(this.bridge)
      for (const port of [...this.bindings.keys()]) if (!present.has(port)) await this.remove(port)
    })
  }

  private async remove (port: string): Promise<void> {
    const old = this.bindings.get(port)
    if (old === undefined) return
    await nftAsync(['-f', '-'], elements(old).map((e) => `delete element ${e}`).join('\n') + '\n')
    this.bindings.delete(port)
  }

  private async serial (fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn)
    this.queue = run.catch(() => {})
    await run
  }
}
