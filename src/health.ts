// The node's two HTTP listeners. Probes (/healthz: the data plane runs; /readyz: TUN
// up, routes in place, table loaded) on 127.0.0.1 only, where the kubelet probes a
// hostNetwork pod from and no pod can reach, as Cilium binds its health port; /metrics
// for Prometheus on all addresses, on its own listener with bounded connections and one
// render per second however many scrape, so no pod can slow the probes by scraping.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Counter, Gauge, Registry } from 'prom-client'
import type { Dataplane, DataplaneStats } from './native.js'
import { MAX_PEER_SERIES } from './reach/peer-health.js'
import type { KernelDrops } from './net/kernel-drops.js'
import type { PolicyState } from './policy/enforce.js'
import type { EncryptionState } from './peer-table.js'
import type { WireGuardStats } from './wireguard/data-path.js'
import { COMMIT, VERSION } from './version.js'

export interface HealthChecks {
  live: () => string | undefined // undefined = healthy, else why not
  ready: () => string | undefined
  peers: () => number
  peersRefused: () => number
  sourceHealthy: () => Record<string, boolean>
  kernelDrops: () => KernelDrops
  policy: () => PolicyState | undefined // undefined: NetworkPolicy not configured
  policyDenied: () => { ingress: number, egress: number }
  encryption?: () => Record<EncryptionState, number> | undefined // undefined: encryption "none"
  wireguard?: () => WireGuardStats | undefined // undefined: encryption "none"
}

/** Prometheus metrics read from the native counters at scrape time. */
export function dataplaneMetrics (dataplane: Dataplane, checks: HealthChecks): Registry {
  const registry = new Registry()
  // One read of the native counters per render, not one per metric, with the busiest peers
  // only: a node of a 5,000-node cluster has 5,000 peers, and a pair of series per peer and
  // direction would be 20,000 series per node for Prometheus to keep. A render collects every
  // metric in one task (prom-client starts each collect() synchronously), so the read is kept
  // until that task ends.
  let read: DataplaneStats | undefined
  const stats = (): DataplaneStats => {
    if (read === undefined) {
      read = dataplane.stats(MAX_PEER_SERIES)
      setImmediate(() => { read = undefined })
    }
    return read
  }
  const absolute = (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void => {
    // Native counters are absolute totals: set them on scrape.
    registry.registerMetric(new Counter({
      name,
      help,
      labelNames,
      registers: [],
      collect () { fill(this, labelNames, read(), (labels, v) => this.inc(labels, v)) },
    }))
  }
  const gauge = (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void => {
    registry.registerMetric(new Gauge({
      name,
      help,
      labelNames,
      registers: [],
      collect () { fill(this, labelNames, read(), (labels, v) => this.set(labels, v)) },
    }))
  }
  absolute('flatnet_packets_total', 'Inner packets forwarded, by direction (tx: TUN to underlay, rx: underlay to TUN).', ['direction'],
    () => { const s = stats(); return [[{ direction: 'tx' }, s.tx.packets], [{ direction: 'rx' }, s.rx.packets]] })
  absolute('flatnet_bytes_total', 'Inner bytes forwarded, by direction.', ['direction'],
    () => { const s = stats(); return [[{ direction: 'tx' }, s.tx.bytes], [{ direction: 'rx' }, s.rx.bytes]] })
  absolute('flatnet_coalesced_segments_total', 'Received TCP segments and UDP datagrams merged into an earlier one before the TUN write.', [],
    () => [[{}, stats().rx.coalesced]])
  absolute('flatnet_gso_joined_packets_total', 'Small packets sent as a further segment of an earlier one\'s UDP GSO train.', [],
    () => [[{}, stats().tx.coalesced]])
  absolute('flatnet_partial_checksums_total', 'Received inner packets whose sender left the TCP/UDP checksum for an offload to finish ' +
    '(a kernel vxlan peer on a veth or virtio-net underlay), finished by flatnet or the kernel.', [],
  () => [[{}, stats().rx.partialChecksums]])
  const policy = (read: (s: PolicyState) => number) => (): Array<[Record<string, string>, number]> => {
    const s = checks.policy()
    return s ? [[{}, read(s)]] : []
  }
  gauge('flatnet_policy_policies', 'NetworkPolicies in the last applied model.', [], policy((s) => s.policies))
  gauge('flatnet_policy_local_pods', 'Pods of this node in the last applied model.', [], policy((s) => s.localPods))
  gauge('flatnet_policy_rules', 'Rules in the chains of this node\'s pods.', [], policy((s) => s.rules))
  gauge('flatnet_policy_apply_seconds', 'How long the last apply took, from the change that started it to nft\'s commit.', [], policy((s) => s.lastApplyMs / 1000))
  absolute('flatnet_policy_rebuilds_total', 'Changes nftables refused, after which the table was replaced whole (it was changed by hand, or flatnet has a bug).', [], policy((s) => s.rebuilds))
  gauge('flatnet_policy_enforced', '1 while the policies are enforced, 0 when enforcement is refused or failed; absent when NetworkPolicy is not configured.',
    [], policy((s) => s.error ? 0 : 1))
  gauge('flatnet_policy_objects_refused', 'Namespaces, Pods and NetworkPolicies refused by validation: each keeps its last good version; a NetworkPolicy without one isolates what it would select.', [], policy((s) => s.skipped.length))
  gauge('flatnet_policy_objects_stale', '1 while the API server\'s policy objects cannot be read; the table stays as it was.', [], policy((s) => s.stale ? 1 : 0))
  absolute('flatnet_policy_denied_packets_total', 'Connections\' first packets dropped by NetworkPolicy, by direction.', ['direction'], () => {
    if (!checks.policy()) return []
    const d = checks.policyDenied()
    return [[{ direction: 'ingress' }, d.ingress], [{ direction: 'egress' }, d.egress]]
  })
  // Counts only: the flows themselves are `flatnet policy drops`, never series.
  absolute('flatnet_policy_drop_log_records_total', 'Denied first packets the policy table logged (at most 100 a second) and the daemon read, for `flatnet policy drops`.', [],
    policy((s) => s.dropLog?.records ?? 0))
  absolute('flatnet_policy_drop_log_lost_total', 'Logged denied packets the kernel could not deliver to the daemon (its socket buffer was full).', [],
    policy((s) => s.dropLog?.lost ?? 0))
  absolute('flatnet_drops_total', 'Packets dropped, by reason.', ['reason'],
    () => Object.entries(stats().drops).map(([reason, n]) => [{ reason }, n]))
  absolute('flatnet_kernel_drops_total', 'Packets the kernel dropped before they reached the data plane or after it: tun_queue (routed into the TUN ' +
    'while its queue was full: the workers did not read them in time), tun_write (written to the TUN, dropped by the kernel), ' +
    'underlay_socket (datagrams for the VTEP port, socket receive buffer full).', ['where'], () => {
    const d = checks.kernelDrops()
    return [[{ where: 'tun_queue' }, d.tunQueue], [{ where: 'tun_write' }, d.tunWrite], [{ where: 'underlay_socket' }, d.underlaySocket]]
  })
  absolute('flatnet_peer_packets_total', `Inner packets to/from each peer, the ${MAX_PEER_SERIES} busiest by bytes (\`flatnet peers\` has every peer).`, ['peer', 'direction'],
    () => stats().peers.flatMap((p) => [[{ peer: p.name, direction: 'tx' }, p.txPackets], [{ peer: p.name, direction: 'rx' }, p.rxPackets]] as Array<[Record<string, string>, number]>))
  absolute('flatnet_peer_bytes_total', `Inner bytes to/from each peer, the ${MAX_PEER_SERIES} busiest.`, ['peer', 'direction'],
    () => stats().peers.flatMap((p) => [[{ peer: p.name, direction: 'tx' }, p.txBytes], [{ peer: p.name, direction: 'rx' }, p.rxBytes]] as Array<[Record<string, string>, number]>))
  gauge('flatnet_offload_enabled', 'Offloads in use (1) or not (0): tun_tso, tun_uso, tun_csum, udp_gso, udp_gro.', ['feature'], () => {
    const i = dataplane.info()
    return [['tun_csum', i.tunCsum], ['tun_tso', i.tunTso], ['tun_uso', i.tunUso], ['udp_gso', i.udpGso], ['udp_gro', i.udpGro]]
      .map(([feature, on]) => [{ feature: feature as string }, on ? 1 : 0])
  })
  // A fleet under workers auto mixes layouts: which nodes fell back to the pipeline.
  gauge('flatnet_dataplane_info', 'The data plane\'s layout: workers (per-cpu or pipeline), TUN queues, how received flows are steered (flow, cpu, hash or none).',
    ['workers', 'queues', 'socket_steering'], () => {
      const i = dataplane.info()
      return [[{ workers: i.workers, queues: String(i.queues), socket_steering: i.socketSteering }, 1]]
    })
  gauge('flatnet_peers', 'Peer VTEPs in the forwarding table.', [], () => [[{}, checks.peers()]])
  absolute('flatnet_peer_records_refused_total', 'Peer records refused: another VNI, or a pod CIDR outside the cluster\'s, overlapping this node\'s or another peer\'s (the first claimant keeps it).', [],
    () => [[{}, checks.peersRefused()]])
  // Absent with encryption "none", as the policy metrics are without NetworkPolicy.
  gauge('flatnet_peers_encryption', 'Peers by how traffic to them goes with encryption on: wireguard (they publish a key), ' +
    'plain (no key: VXLAN unencrypted, wireguard.strict off), blocked (no key, wireguard.strict on: dropped).', ['state'],
  () => Object.entries(checks.encryption?.() ?? {}).map(([state, n]) => [{ state }, n]))
  const wg = (read: (s: WireGuardStats) => Array<[Record<string, string>, number]>) => () => {
    const s = checks.wireguard?.()
    return s ? read(s) : []
  }
  absolute('flatnet_wireguard_handshakes_total', 'WireGuard handshakes completed, either side.', [], wg((s) => [[{}, s.sessions]]))
  gauge('flatnet_wireguard_peers_established', 'WireGuard peers with a session that has not expired (an idle peer\'s lapses after 180 s).', [],
    wg((s) => [[{}, s.established]]))
  absolute('flatnet_wireguard_handshake_drops_total', 'WireGuard handshake messages dropped, by reason (rate: past 20 a second from one address; ' +
    'mac1, decrypt, timestamp, index, peer, length, type: see docs/encryption.md).', ['reason'],
  wg((s) => Object.entries(s.drops).map(([reason, n]) => [{ reason }, n as number])))
  gauge('flatnet_source_up', 'Whether each peer source is connected and in sync (1) or not (0).', ['source'],
    () => Object.entries(checks.sourceHealthy()).map(([source, up]) => [{ source }, up ? 1 : 0]))
  gauge('flatnet_ready', 'Whether the node is ready (TUN up, routes in place, table loaded).', [], () => [[{}, checks.ready() ? 0 : 1]])
  gauge('flatnet_build_info', 'Always 1: the running daemon\'s version and the commit it was built from.', ['version', 'commit'],
    () => [[{ version: VERSION, commit: COMMIT }, 1]])
  return registry
}

/**
 * Sets a metric's samples to rows. None is no sample: absent, not the 0 an unlabelled
 * metric shows by default, so an alert on `flatnet_policy_enforced == 0` fires only where
 * enforcement failed, not where NetworkPolicy is off.
 */
function fill (metric: Counter | Gauge, labelNames: string[], rows: Array<[Record<string, string>, number]>,
  put: (labels: Record<string, string>, v: number) => void): void {
  metric.reset()
  for (const [labels, v] of rows) put(labels, v)
  if (rows.length === 0 && labelNames.length === 0) metric.remove() // a labelled one has no sample after reset
}

/** What one listener admits: connections in all and per client address, and how long a request may take. */
export interface ListenerLimits { connections: number, perClient: number, requestMs: number }

/** Probes: the kubelet opens one at a time per probe. */
export const HEALTH_LIMITS: ListenerLimits = { connections: 16, perClient: 16, requestMs: 5000 }
/** Prometheus scrapes with one connection per target; a few servers may scrape each node. */
export const METRICS_LIMITS: ListenerLimits = { connections: 64, perClient: 4, requestMs: 10_000 }
/** A scrape within this long of the last render gets that render. */
export const METRICS_RENDER_MS = 1000

/** The probes, on 127.0.0.1:port. */
export async function serveHealth (port: number, checks: Pick<HealthChecks, 'live' | 'ready'>, limits = HEALTH_LIMITS): Promise<Server> {
  return await listen(port, '127.0.0.1', limits, (req, res) => {
    const reply = (why: string | undefined): void => {
      res.writeHead(why ? 503 : 200, { 'content-type': 'text/plain' }).end(why ? `not ok: ${why}\n` : 'ok\n')
    }
    if (req.url === '/healthz') return reply(checks.live())
    if (req.url === '/readyz') return reply(checks.ready())
    res.writeHead(404).end('try /healthz or /readyz\n')
  })
}

/**
 * /metrics on all addresses (IPv6 and IPv4), rendered at most once per METRICS_RENDER_MS;
 * and json: small JSON documents by path (e.g. /reachability, which `flatnet status --all`
 * reads from every peer through the overlay), under the same limits.
 */
export async function serveMetrics (port: number, registry: Registry, limits = METRICS_LIMITS, now = () => performance.now(),
  json: Record<string, () => unknown> = {}): Promise<Server> {
  let last: { at: number, text: Promise<string> } | undefined
  const render = (): Promise<string> => {
    if (last === undefined || now() - last.at >= METRICS_RENDER_MS) last = { at: now(), text: registry.metrics() }
    return last.text
  }
  // No host: all addresses, IPv6 and IPv4 where the node has IPv6 (Node falls back to 0.0.0.0).
  return await listen(port, undefined, limits, (req, res) => {
    const doc = req.url === undefined ? undefined : json[req.url]
    if (doc) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc()))
      return
    }
    if (req.url !== '/metrics') {
      res.writeHead(404).end('try /metrics\n')
      return
    }
    render().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`))
  })
}

async function listen (port: number, host: string | undefined, limits: ListenerLimits, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer({ requestTimeout: limits.requestMs, headersTimeout: limits.requestMs, keepAliveTimeout: limits.requestMs }, handle)
  // Past the cap Node closes new connections at once (net.Server maxConnections); per
  // client, so one pod cannot take every slot from the scrapers.
  server.maxConnections = limits.connections
  server.setTimeout(limits.requestMs) // idle sockets too, not only slow requests
  const perClient = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? ''
    const n = (perClient.get(client) ?? 0) + 1
    if (n > limits.perClient) {
      socket.destroy()
      return
    }
    perClient.set(client, n)
    socket.once('close', () => {
      const left = (perClient.get(client) ?? 1) - 1
      if (left === 0) perClient.delete(client)
      else perClient.set(client, left)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port, host }, () => { server.off('error', reject); resolve() })
  })
  return server
}
