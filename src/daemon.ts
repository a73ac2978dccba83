// `flatnet daemon`: sets the node up around the native data plane, feeds it the
// peer table, reports, and takes it all down again on SIGTERM/SIGINT.
import { type Config, ConfigError } from './config.js'
import type { Logger } from './log.js'
import { addon, type AdoptedDataplane, type Dataplane } from './native.js'
import { configureTun, encapOverhead, enableForwarding, ensureBridge, mtuOfAddress } from './net/link.js'
import { formatAddress, formatCidr } from './net/cidr.js'
import { formatMac } from './net/mac.js'
import { PeerTable } from './peer-table.js'
import { CONTROL_LIMITS, serveControl, socketPathFor } from './control-socket.js'
import { succeed, Succession, type TakenOver } from './handover.js'
import { startSources } from './control/sources.js'
import { dataplaneMetrics, type HealthChecks, serveHealth, serveMetrics } from './health.js'
import { findProblems, startHealer } from './heal.js'
import { applyMasquerade, removeMasquerade } from './net/masquerade.js'
import { dropGrowth, kernelDrops, type KernelDrops } from './net/kernel-drops.js'
import { writeCniFiles } from './cni.js'
import { missingPlugins } from './cni-plugins.js'
import { enforcePolicy } from './policy/enforce.js'
import { CAP_BPF, hasCapability } from './capabilities.js'
import { memoryLimit, packetMemoryBudget } from './memory-limit.js'
import type { Server } from 'node:net'
import { serveCni } from './guard/cni-server.js'
import { PortGuard } from './guard/port-guard.js'
import { trustedPeer } from './peer-credentials.js'
import { COMMIT, VERSION } from './version.js'
import { MAX_PEER_SERIES, PeerHealth } from './reach/peer-health.js'
import { enabledOffloads } from './status.js'
import type { Reachability } from './reach/matrix.js'
import { recentWarnings } from './log.js'
import { constants } from 'node:os'
import { watchLoopStalls } from './loop-stalls.js'
import { slicer } from './slicer.js'
import { loadOrCreateKey, type NodeKey } from './wireguard/key-file.js'
import { formatKey } from './wireguard/keys.js'
import { WireGuardDataPath } from './wireguard/data-path.js'

export interface DaemonOptions {
  configFile: string
  overrides: Record<string, unknown>
}

const { EADDRINUSE, EBUSY } = constants.errno
const SEND_SOCKETS = 16 // outer source ports per node: flow entropy for ECMP/RSS
const BATCH = 32

export async function runDaemon (config: Config, options: DaemonOptions, log: Logger): Promise<void> {
  const mtu = config.mtu ?? mtuOfAddress(config.underlay.address) - encapOverhead(config.underlay.address, config.wireguard !== undefined)
  const limit = memoryLimit()
  const controlPath = config.controlSocket ?? socketPathFor(config.nodeName)
  // Before anything is touched: a key that cannot be used is a config error (exit 2).
  const key = config.wireguard ? nodeKey(config.wireguard.privateKeyFile) : undefined
  if (key?.created) log.info({ file: config.wireguard?.privateKeyFile, publicKey: formatKey(key.publicKey) }, 'generated this node\'s WireGuard key')
  // A daemon already running for this node hands its data plane over (src/handover.ts).
  const handed = await succeed(config, controlPath, log, (adopt) => openDataplane(config, limit, mtu, adopt))
  const takenOver = typeof handed === 'object' ? handed : undefined
  const dataplane = takenOver?.dataplane ?? (handed === 'after'
    ? await openOnceFree(() => openDataplane(config, limit, mtu), log)
    : openDataplane(config, limit, mtu))
  const info = dataplane.info()
  // Until `ready`, a failing step undoes the ones before it, last first: a daemon that
  // cannot start must exit, not stay alive half set up holding the TUN and NAT rules.
  const undo: Array<() => unknown> = [() => dataplane.stop()]
  let node: Awaited<ReturnType<typeof setUp>>
  try {
    node = await setUp(config, options, log, dataplane, mtu, undo, controlPath, takenOver, key)
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        await step()
      } catch { /* the error that stopped the start is the one to report */ }
    }
    throw err
  }
  const { table, healer, sources, control, cniServer, guard, listeners, cni, drops, policy, succession, peerHealth, wireguard } = node
  if (config.sources.kubernetes) {
    // The scheduler keeps pods off a node whose NetworkUnavailable is True (set by some cloud providers).
    const { kubeconfig } = config.sources.kubernetes
    import('./node-cidr.js').then(async ({ markNetworkAvailable }) => await markNetworkAvailable(config.nodeName, kubeconfig)).then(
      () => log.info({ node: config.nodeName }, 'Node condition NetworkUnavailable=False'),
      (err) => log.warn({ err: String((err as Error)?.message ?? err) }, 'cannot set the Node\'s NetworkUnavailable condition'))
  }
  log.info({
    version: VERSION,
    commit: COMMIT,
    node: config.nodeName,
    tun: info.tunName,
    mtu,
    podCIDRs: config.podCIDRs.map(formatCidr),
    vtep: `${formatAddress(config.underlay.address)}:${config.underlay.port}`,
    vni: config.vni,
    vtepMAC: formatMac(config.vtepMAC),
    peers: table.size,
    control: controlPath,
    ipMasq: config.ipMasq,
    cni: cni?.conflist,
    // The layout in brief: `flatnet stats` and `status` have the rest.
    workers: info.workers,
    queues: info.queues,
    offloads: enabledOffloads(info).join(' '),
    ...(key ? { encryption: config.encryption, wireguardPublicKey: formatKey(key.publicKey) } : {}),
  }, 'ready')

  if (info.perCpuErrno) {
    // podman's and containerd's default seccomp profiles (RuntimeDefault) allow bpf() only with CAP_SYS_ADMIN.
    const seccomp = info.perCpuErrno === 1 && hasCapability(CAP_BPF)
    log.info({ perCpuErrno: info.perCpuErrno, seccomp },
      seccomp ? 'workers auto: the pipeline, bpf() refused by seccomp' : 'workers auto: the pipeline, steering program not loaded')
  }
  if (info.workers === 'per-cpu' && info.queues < info.allowedCpus) {
    log.warn({ workers: info.queues, cpus: info.allowedCpus, memoryLimit: limit, packetMemoryPerWorker: info.packetMemoryPerWorker },
      'per-cpu: fewer workers than CPUs (memory limit)')
  }
  if (info.workers === 'per-cpu' && (info.tunSteeringErrno || info.socketSteeringErrno)) {
    log.warn({ tunSteeringErrno: info.tunSteeringErrno, socketSteeringErrno: info.socketSteeringErrno },
      'per-cpu workers without steering programs: flows spread by hash')
  }

  // Offload fallbacks happen in the fast path; say so once when one does.
  let gsoWasOn = info.udpGso
  // So do the kernel's drops around it (every 5 s, a line a minute at most): an overloaded
  // node shows in the log, not only in flatnet_kernel_drops_total.
  const dropsGrown = dropGrowth(drops, 60_000)
  let tick = 0
  const watch = setInterval(() => {
    const now = dataplane.info()
    if (gsoWasOn && !now.udpGso) log.warn({ errno: now.udpGsoErrno }, 'UDP GSO refused by the underlay; sending segment by segment')
    gsoWasOn = now.udpGso
    const grown = ++tick % 5 === 0 ? dropsGrown() : undefined
    if (grown) {
      log.warn({ kernelDrops: nonZero({ ...grown }) }, 'the kernel dropped packets around the data plane')
    }
  }, 1000)

  await new Promise<void>((resolve) => {
    let stopping = false
    let terminated = false
    // SIGTERM with a successor waiting: hand the data plane over; without one, or on a
    // second SIGTERM or SIGINT: clean up. A failed handover leaves this daemon
    // forwarding, and it hands over to the next successor that registers.
    const stop = async (signal: string, handOver: boolean): Promise<void> => {
      if (stopping) return
      stopping = true
      const handedOver = handOver && succession.waiting && await succession.handOver()
      if (handOver && !handedOver && succession.failed) {
        stopping = false
        void succession.arrival().then(() => stop(signal, true))
        return
      }
      clearInterval(watch)
      wireguard?.stop()
      healer.stop()
      peerHealth?.stop()
      control.close()
      cniServer?.close()
      guard?.stop()
      // Handed over: the successor is this node now; nothing is withdrawn or removed.
      await sources.stop(!handedOver) // withdraws this node (channel, etcd) while the data plane still runs
      // The policy table stays: pods stay isolated until the next daemon replaces it.
      await policy?.stop()
      for (const l of listeners) l.close()
      const stats = dataplane.stats()
      const kernel = drops() // the TUN's counters go with it
      if (handedOver) {
        succession.done()
        dataplane.stop() // our copies: the successor holds the TUN and sockets open
        log.info({ signal, tx: stats.tx, rx: stats.rx, drops: nonZero(stats.drops) }, 'stopped, the successor forwards')
        return resolve()
      }
      // Closing the TUN removes it and every route through it.
      dataplane.stop()
      try {
        if (config.ipMasq) removeMasquerade()
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cannot remove the nftables masquerade tables')
      }
      log.info({ signal, tx: stats.tx, rx: stats.rx, drops: nonZero(stats.drops), kernelDrops: nonZero({ ...kernel }) }, 'stopped')
      resolve()
    }
    process.on('SIGTERM', () => { void stop('SIGTERM', !terminated); terminated = true })
    process.on('SIGINT', () => { void stop('SIGINT', false) })
  })
}

/** This node's WireGuard key, read or created; whatever keeps it from being used is a ConfigError naming the field. */
function nodeKey (file: string): NodeKey {
  try {
    return loadOrCreateKey(file)
  } catch (err) {
    throw new ConfigError('wireguard.privateKeyFile', (err as Error).message)
  }
}

/** Opens the data plane once the daemon that holds the port and TUN has released them. */
async function openOnceFree (open: () => Dataplane, log: Logger): Promise<Dataplane> {
  for (let said = false; ; said = true) {
    try {
      return open()
    } catch (err) {
      // Only another daemon still holding the port or the TUN is waited for.
      const errno = (err as { errno?: number }).errno
      if (errno !== EADDRINUSE && errno !== EBUSY) throw err
      if (!said) log.info({ err: (err as Error).message }, 'waiting for the running daemon to stop')
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Opens the data plane (or adopts a predecessor's); a port or TUN held by someone else says who to look for. */
function openDataplane (config: Config, limit: number | undefined, mtu: number, adopt?: AdoptedDataplane): Dataplane {
  try {
    return new addon.Dataplane({
      tunName: config.tun.name,
      offloads: config.offloads,
      underlayAddress: config.underlay.address.bytes,
      port: config.underlay.port,
      vni: config.vni,
      vtepMAC: config.vtepMAC,
      sendSockets: SEND_SOCKETS,
      batch: BATCH,
      busyPollMicros: config.busyPollMicros,
      workers: config.workers,
      memoryBudget: packetMemoryBudget(limit),
      mtu,
      adopt,
      ...(config.wireguard ? { wgPort: config.wireguard.port } : {}),
    })
  } catch (err) {
    const e = err as Error & { errno?: number }
    // The errno stays on the error: a successor waiting for its predecessor to exit retries on it.
    if (e.errno === EADDRINUSE) {
      throw Object.assign(new Error(`${e.message}: UDP port ${config.underlay.port} on ${formatAddress(config.underlay.address)} is taken; ` +
        'is another flatnet daemon, or a kernel vxlan device, running on this node? Stop it, or set underlay.port'), { errno: e.errno })
    }
    if (e.errno === EBUSY) {
      throw Object.assign(new Error(`${e.message}: TUN ${config.tun.name} is open in another process (another flatnet daemon?); stop it, or set tun.name`),
        { errno: e.errno })
    }
    throw err
  }
}

/** Everything from the TUN's addresses to the CNI files; each step pushes its undo. */
async function setUp (config: Config, options: DaemonOptions, log: Logger, dataplane: Dataplane, mtu: number,
  undo: Array<() => unknown>, controlPath: string, takenOver: TakenOver | undefined, key: NodeKey | undefined) {
  const info = dataplane.info()
  const families = new Set(config.podCIDRs.map((c) => c.family))
  const table = new PeerTable(dataplane, config.podCIDRs, {
    self: config.nodeName,
    vni: config.vni,
    clusterCIDRs: config.clusterCIDRs,
    onReject: (node, why) => log.warn({ peer: node, why }, 'peer refused'),
    encryption: config.wireguard && key ? { strict: config.wireguard.strict, publicKey: key.publicKey, port: config.wireguard.port } : undefined,
  })
  const wireguard = config.wireguard && key
    ? new WireGuardDataPath({ dataplane, table, privateKey: key.privateKey, presharedKey: config.wireguard.presharedKey, port: config.wireguard.port, rekeyAfterMs: config.wireguard.rekeyAfterMs })
    : undefined
  let handedSessions: ReturnType<WireGuardDataPath['hand']> = []
  if (takenOver) {
    // Forwarding first, with the predecessor's table; the rest below only confirms what
    // it had set up (each step replaces, none removes) and takes over its sockets. Its
    // WireGuard sessions are made known natively before the threads start, and installed
    // with their counters once its threads have stopped (the baton): no new handshake.
    table.restore(takenOver.peers)
    if (wireguard) handedSessions = wireguard.hand(takenOver.wireguard)
    await takenOver.run(() => dataplane.start())
  }
  configureTun(info.tunName, mtu, config.podCIDRs, config.clusterCIDRs)
  if (config.bridge) ensureBridge(config.bridge.name, config.podCIDRs)
  enableForwarding(families)
  // NAT outgoing before anything runs: a missing nft fails the start here.
  if (config.ipMasq) {
    applyMasquerade(config.podCIDRs, config.clusterCIDRs)
    undo.push(removeMasquerade)
  }
  // The peers known at once (the saved table, static ones) before the packet threads run: a
  // datagram from a peer that started first is not dropped as from an unknown one.
  const sources = await startSources(config, options.configFile, options.overrides, table, log, key?.publicKey)
  undo.push(async () => await sources.stop())
  if (!takenOver) dataplane.start()
  // Sessions come from handshakes this daemon runs, or from its predecessor (a restart starts anew).
  wireguard?.start()
  if (wireguard && takenOver?.wireguard !== undefined) {
    log.info({ sessions: wireguard.adoptHanded(handedSessions) }, 'took over the predecessor\'s WireGuard sessions')
  }
  if (wireguard) undo.push(() => wireguard.stop())
  // Someone deleting the TUN or a route is noticed and repaired (src/heal.ts).
  const healer = startHealer({ dataplane, tunName: info.tunName, mtu, podCIDRs: config.podCIDRs, clusterCIDRs: config.clusterCIDRs, log })
  undo.push(() => healer.stop())
  const drops = (): KernelDrops => kernelDrops(info.tunName, config.underlay.port)
  // Every peer probed through the overlay and on the underlay (src/reach/).
  const peerHealth = config.peerProbes
    ? new PeerHealth({ table, podCIDRs: config.podCIDRs, underlay: config.underlay.address, ...config.peerProbes, log })
    : undefined
  if (peerHealth) undo.push(() => peerHealth.stop())
  const started = Date.now()
  // NetworkPolicy before the conflist: a pod must be isolated before its first packet.
  let cniFiles: ReturnType<typeof writeCniFiles> | undefined
  const writeCni = (): void => {
    if (!config.cni || cniFiles) return
    cniFiles = writeCniFiles({ clusterCIDRs: config.clusterCIDRs, podCIDRs: config.podCIDRs, mtu, ipMasq: config.ipMasq }, config.cni)
  }
  let lastPolicyError: string | undefined
  let lastPolicyStale: string | undefined
  let lastPolicyApplies = 0
  let lastPolicySummary = ''
  let policySkipped = new Set<string>()
  let ready = false // set once setup is done: the first policy apply comes before it
  const policy = config.networkPolicy
    ? enforcePolicy({
      source: config.networkPolicy.manifests !== undefined
        ? { manifests: config.networkPolicy.manifests }
        : { kubernetes: { kubeconfig: config.sources.kubernetes?.kubeconfig } },
      log,
      node: { nodeName: config.nodeName, podCIDRs: config.podCIDRs.map(formatCidr) },
      families,
      onApply: (s) => {
        if (s.stale !== lastPolicyStale) {
          if (s.stale) log.warn({ err: s.stale }, 'network policy objects stale')
          else if (lastPolicyStale) log.info('network policy objects current again')
          lastPolicyStale = s.stale
        }
        if (s.error) {
          if (s.error !== lastPolicyError) log.error({ err: s.error }, 'network policy not enforced')
          lastPolicyError = s.error
          return
        }
        lastPolicyError = undefined
        if (s.applies === lastPolicyApplies) return
        lastPolicyApplies = s.applies
        // Once per object and per change of what the table holds: under churn elsewhere in the
        // cluster applies come many a second, and each would otherwise repeat the same lines.
        for (const object of s.skipped) if (!policySkipped.has(object)) log.warn({ object }, 'network policy object skipped')
        policySkipped = new Set(s.skipped)
        const summary = `${s.policies}/${s.localPods}/${s.rules}/${s.rebuilds}`
        if (s.applies === 1 || summary !== lastPolicySummary) {
          log.info({ policies: s.policies, localPods: s.localPods, rules: s.rules, rebuilds: s.rebuilds, ms: Math.round(s.lastApplyMs) }, 'network policy applied')
        }
        lastPolicySummary = summary
        if (s.applies === 1 && ready) writeCni()
      },
    })
    : undefined
  if (policy) undo.push(async () => await policy.stop())
  const loop = watchLoopStalls()
  undo.push(loop.stop)
  // A row per peer (5,000 at scale), built in slices so that the probes are not kept waiting.
  const peersReply = async (): Promise<unknown> => {
    const counts = new Map(dataplane.stats().peers.map((p) => [p.name, p]))
    const rows: unknown[] = []
    const turn = slicer()
    for (const p of table.list()) {
      rows.push({
        nodeName: p.nodeName,
        podCIDRs: p.podCIDRs.map(formatCidr),
        vtep: `${formatAddress(p.address)}:${p.port}`,
        vtepMAC: p.vtepMAC && formatMac(p.vtepMAC),
        source: p.restored ? `${p.source} (restored)` : p.source,
        version: p.version,
        ageSeconds: Math.round((Date.now() - p.since) / 1000),
        ...counts.get(p.nodeName),
        health: peerHealth?.health(p.nodeName),
        ...(key ? { encryption: table.encryptionOf(p), wireguardPublicKey: p.wgKey && formatKey(p.wgKey) } : {}),
      })
      await turn()
    }
    return { node: config.nodeName, peers: rows }
  }
  const succession = new Succession(config, controlPath, dataplane, table, log, wireguard)
  const control = await serveControl(controlPath, (cmd) => {
    if (cmd === 'stats') {
      return {
        node: config.nodeName,
        // The busiest peers' counters, as the metrics have them; `peers` has every one.
        stats: dataplane.stats(MAX_PEER_SERIES),
        kernelDrops: drops(),
        info: dataplane.info(),
        sources: sources.stats(),
        policy: policy ? { ...policy.state(), denied: policy.denied() } : undefined,
        wireguard: wireguard?.stats(),
        heapUsed: process.memoryUsage().heapUsed,
        memory: process.memoryUsage(),
        eventLoop: loop.stalls(),
      }
    }
    if (cmd === 'status') {
      const s = dataplane.info()
      return {
        node: config.nodeName,
        version: VERSION,
        commit: COMMIT,
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        ready: tunProblem() ?? policy?.state().error ?? policy?.state().stale ?? null,
        dataplane: {
          tun: s.tunName,
          mtu,
          workers: s.workers,
          queues: s.queues,
          socketSteering: s.socketSteering,
          offloads: { tunCsum: s.tunCsum, tunTso: s.tunTso, tunUso: s.tunUso, udpGso: s.udpGso, udpGro: s.udpGro },
          vtep: `${formatAddress(config.underlay.address)}:${config.underlay.port}`,
          vni: config.vni,
        },
        metricsPort: config.metricsPort,
        sources: sources.up(),
        peers: { total: table.size, refused: table.refused, probes: boundedSummary(peerHealth) },
        ...(config.wireguard && key
          ? { encryption: { mode: config.encryption, publicKey: formatKey(key.publicKey), port: config.wireguard.port, strict: config.wireguard.strict, peers: table.encryptionCounts() } }
          : {}),
        policy: policy ? { ...policy.state(), denied: policy.denied() } : null,
        warnings: recentWarnings(),
      }
    }
    if (cmd === 'peers') return peersReply()
    // The policy state alone: what a waiter polls, without stats' per-peer counters (5,000 rows at scale).
    if (cmd === 'policy') return { node: config.nodeName, policy: policy?.state() }
    if (cmd === 'policy-objects') return { objects: policy?.objects() ?? null }
    // Denied connections lately, named (src/policy/drops.ts): at most a thousand flows.
    if (cmd === 'policy-drops') return { node: config.nodeName, drops: policy?.drops() ?? null }
    throw new Error(`unknown command "${cmd}" (known: status, stats, peers, policy, policy-objects, policy-drops, successor)`)
  }, CONTROL_LIMITS, { successor: succession.accept }, trustedPeer)
  undo.push(() => control.close())
  // From sysfs and /proc/net, as the healer reads them: no child process per probe.
  const tunProblem = (): string | undefined => {
    try {
      return findProblems({ dataplane, tunName: info.tunName, clusterCIDRs: config.clusterCIDRs })[0]
    } catch (err) {
      return `cannot read the TUN device's state: ${(err as Error).message}`
    }
  }
  // Before the conflist: the runtime's ADD reaches flatnet-cni, which asks here (src/guard/).
  let guard: PortGuard | undefined
  let cniServer: Server | undefined
  if (config.cni) {
    const g = guard = new PortGuard(config.cni.bridge, log)
    await g.start()
    undo.push(async () => await g.undo())
    const s = cniServer = await serveCni({
      path: config.cni.socket,
      guard: g,
      podCIDRs: config.podCIDRs,
      notReady: () => tunProblem() ?? policy?.state().error,
      admit: policy ? async (namespace, name, ips) => await policy.admit(namespace, name, ips) : undefined,
      trusted: trustedPeer,
      log,
    })
    undo.push(() => s.close())
  }
  const checks: HealthChecks = {
    live: () => {
      const err = dataplane.info().tunError
      return err ? `TUN read failed (errno ${err}): the device is gone` : undefined
    },
    ready: () => tunProblem() ?? policy?.state().error ?? policy?.state().stale,
    peers: () => table.list().length,
    peersRefused: () => table.refused,
    policy: () => policy?.state(),
    policyDenied: () => policy?.denied() ?? { ingress: 0, egress: 0 },
    sourceHealthy: () => sources.up(),
    kernelDrops: drops,
    encryption: () => table.encryptionCounts(),
    wireguard: () => wireguard?.stats(),
  }
  const listeners: Server[] = []
  undo.push(() => { for (const l of listeners) l.close() })
  if (config.healthPort) listeners.push(await serveHealth(config.healthPort, checks))
  if (config.metricsPort) {
    const registry = dataplaneMetrics(dataplane, checks)
    peerHealth?.register(registry)
    listeners.push(await serveMetrics(config.metricsPort, registry, undefined, undefined, {
      '/reachability': () => reachability(config.nodeName, table.size, peerHealth),
    }))
  }
  // The kubelet starts pods once a conflist appears: only after the data plane can carry them.
  const notReady = tunProblem()
  if (notReady) throw new Error(`data plane not ready after setup: ${notReady}`)
  ready = true
  // Without enforcement where it is asked for, no pod may start: the conflist waits for it.
  if (!policy?.state().error) writeCni()
  const cni = cniFiles
  peerHealth?.start()
  const plugins = config.cni ? missingPlugins(config.cni.binDir) : []
  if (plugins.length) log.warn({ binDir: config.cni?.binDir, missing: plugins }, 'CNI plugins missing')
  return { table, healer, sources, control, cniServer, guard, listeners, cni, drops, policy, succession, peerHealth, wireguard }
}

/** This node's view of its peers, as `flatnet status --all` asks each node for it: counts, and the unreachable by name (bounded). */
function reachability (node: string, total: number, health: PeerHealth | undefined): Reachability {
  const s = health?.summary()
  const path = (p: 'overlay' | 'underlay'): Reachability['overlay'] => s
    ? { reachable: s[p].reachable, unreachable: s[p].unreachable, unknown: s[p].unknown, down: s[p].down.slice(0, MAX_PEER_SERIES).map((d) => d.peer) }
    : null
  return { node, version: VERSION, peers: total, overlay: path('overlay'), underlay: path('underlay') }
}

/** The probe summary with the unreachable named up to MAX_PEER_SERIES per path (the counts are whole): a node cut off from 5,000 peers answers in kilobytes. */
function boundedSummary (health: PeerHealth | undefined): ReturnType<PeerHealth['summary']> | null {
  const s = health?.summary()
  if (!s) return null
  return { overlay: { ...s.overlay, down: s.overlay.down.slice(0, MAX_PEER_SERIES) }, underlay: { ...s.underlay, down: s.underlay.down.slice(0, MAX_PEER_SERIES) } }
}

function nonZero (counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0))
}
