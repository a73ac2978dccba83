// NetworkPolicy on this node: the objects (manifests on disk, or the API server's) held
// in a NodeTable (node-table.ts), whose table is applied whole at first and then
// change by change, each in one nft transaction.
// Enforcement that cannot work is refused loudly (readyz fails), never skipped.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { nft, nftAsync, replaceTable, tableReplacing } from '../net/nft.js'
import { loadManifests, type Manifests } from './manifests.js'
import { KubeClient } from '../kube/client.js'
import { POLICY_KINDS, type PolicyObjectSource, type PolicySourceStatus, watchPolicyObjects } from './kubernetes.js'
import type { Logger } from '../log.js'
import { type NodePods, POLICY_TABLE } from './nftables.js'
import { NodeTable } from './node-table.js'
import { DropLog, type DropLogStats, type DropsView } from './drops.js'
import type { Namespace, NetworkPolicy, Pod } from './objects.js'

export interface PolicyState {
  /** Why enforcement is off or failed (readyz reports it), or undefined while it holds. */
  error?: string
  /** Why the API server's objects are not current (a list or watch failing): the table stays as it was. */
  stale?: string
  applies: number
  /** Changes nftables refused, after which the table was replaced whole. */
  rebuilds: number
  /** sha256 of the manifest files the table was built from (manifestsDigest); from the API server, each kind's resourceVersion. */
  digest?: string
  policies: number
  localPods: number
  rules: number
  lastApplyMs: number
  skipped: string[]
  /** The drop log's counts (drops.ts); undefined when drops are counted only. */
  dropLog?: DropLogStats
}

/** sha256 over the manifest files' names and contents, in name order. */
export function manifestsDigest (dir: string): string {
  const h = createHash('sha256')
  for (const f of readdirSync(dir).filter((n) => /\.(ya?ml|json)$/.test(n)).sort()) {
    const path = join(dir, f)
    if (!statSync(path).isFile()) continue
    h.update(`${f}\0`).update(readFileSync(path)).update('\0')
  }
  return h.digest('hex')
}

/**
 * Why bridged pod-to-pod traffic would bypass the table, or undefined. Pods of one
 * node meet on cni0: only br_netfilter hands those frames to the inet forward hook.
 * kubeadm requires the same setting (its preflight checks bridge-nf-call-iptables).
 */
export function bridgedTrafficUnfiltered (families: Set<4 | 6>, read = (f: string) => readFileSync(f, 'utf8')): string | undefined {
  for (const f of [...families].sort()) {
    const sysctl = `net.bridge.bridge-nf-call-${f === 4 ? 'iptables' : 'ip6tables'}`
    let value: string
    try {
      value = read(`/proc/sys/${sysctl.replaceAll('.', '/')}`).trim()
    } catch {
      return `the br_netfilter module is not loaded: load it (modprobe br_netfilter) and set ${sysctl}=1`
    }
    if (value !== '1') return `${sysctl} is ${value}: set it to 1 on the node, or pods of one node are not isolated from each other`
  }
  return undefined
}

export interface PolicyEnforcer {
  state: () => PolicyState
  /** The objects the table was last built from (undefined before the first apply): what `flatnet policy` explains. */
  objects: () => Manifests | undefined
  /** Connections' first packets denied since the start: the table's counters, which each replace resets, carried over. */
  denied: () => { ingress: number, egress: number, readAt?: number }
  /** The denied connections logged lately, named (`flatnet policy drops`); undefined when drops are counted only. */
  drops: () => DropsView | undefined
  /**
   * A pod of this node about to start with these addresses (its CNI ADD): resolves once the
   * table judges them as that pod's, so its first packet meets its policies. The API server
   * learns a pod's IPs only after ADD returns; until it reports them, these stand in.
   */
  admit: (namespace: string, name: string, ips: string[]) => Promise<void>
  stop: () => Promise<void>
}

export interface EnforceOptions {
  /** Where the objects come from: a manifests directory (polled), or the API server. */
  source: { manifests: string } | { kubernetes: { kubeconfig?: string } }
  node: NodePods
  families: Set<4 | 6>
  log: Logger
  onApply: (s: PolicyState) => void
  pollMs?: number
  /** Log denied first packets to an NFLOG group and keep them for `flatnet policy drops` (default true). */
  dropLog?: boolean
}

// An nft run costs a process and its netlink exchange whatever it carries: under churn, one
// run per change would cost more than the changes themselves. So runs draw on a bucket of
// APPLY_BURST that refills at APPLY_PER_SECOND: a few changes after a quiet spell each go at
// once, a stream of them shares 20 runs a second.
const APPLY_PER_SECOND = 20
const APPLY_BURST = 5
// How long a CNI ADD waits for its Pod's watch event (scheduled before the kubelet acts on it).
const ADMIT_WAIT_MS = 5000

/**
 * What the table holds for: which objects (the manifests' digest, or each kind's
 * resourceVersion) and which NodeTable. Applies run one at a time; changes that arrive
 * meanwhile join the next. The first apply, and any after a failure, replaces the table
 * whole; the rest are the NodeTable's commands since the last, one transaction each.
 */
class Applier {
  private table: NodeTable
  private whole = true
  private queued: { digest: () => string, started: number } | undefined
  private running: Promise<void> | undefined

  constructor (private readonly o: EnforceOptions, private readonly state: PolicyState, private readonly counters: DeniedCounters, private readonly skipped: () => string[]) {
    this.table = new NodeTable(o.node)
  }

  /** The table to change (a fresh one replaces it whole at the next apply). */
  current (): NodeTable { return this.table }
  replace (table: NodeTable): void { this.table = table; this.whole = true }

  private tokens = APPLY_BURST
  private refilled = performance.now()

  /**
   * Applies what changed; digest is read when the apply starts, so it names what it carries.
   * When the bucket is empty, the next apply waits for a token and then carries everything
   * that arrived meanwhile.
   */
  apply (digest: () => string, started: number): void {
    this.queued ??= { digest, started }
    this.running ??= (async () => {
      while (this.queued) {
        const now = performance.now()
        this.tokens = Math.min(APPLY_BURST, this.tokens + (now - this.refilled) * APPLY_PER_SECOND / 1000)
        this.refilled = now
        if (this.tokens < 1) await new Promise((resolve) => setTimeout(resolve, (1 - this.tokens) * 1000 / APPLY_PER_SECOND))
        const next = this.queued
        if (!next) break // stopped meanwhile
        this.queued = undefined
        this.tokens -= 1
        await this.applyOnce(next.digest(), next.started)
      }
      this.running = undefined
    })()
  }

  async stop (): Promise<void> {
    this.queued = undefined
    await this.running
  }

  /** Resolves when every change made before the call is applied (or its apply failed). */
  async settled (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  private async applyOnce (digest: string, started: number): Promise<void> {
    const state = this.state
    try {
      if (!this.whole) {
        const delta = this.table.takeDelta()
        try {
          if (delta !== undefined) await nftAsync(['-f', '-'], delta)
        } catch (err) {
          // The table is not what this NodeTable believes (changed by hand, or a bug): rebuild it whole.
          this.o.log.warn({ err: (err as Error).message }, 'network policy change not applied; replacing the table whole')
          state.rebuilds++
          this.whole = true
        }
      }
      if (this.whole) {
        await this.counters.beforeReplace()
        // Rendered now, whole (in pieces, none near V8's string limit): changes that arrive while
        // nft reads them are the next delta's, which must not find the table half older, half newer.
        // Each piece is held as bytes, its string left to die young: the V8 heap (capped in the
        // DaemonSet) does not grow by the table's size, which follows the cluster's pods.
        const chunks = [Buffer.from(tableReplacing('inet', POLICY_TABLE))]
        for (const piece of this.table.scriptChunks()) chunks.push(Buffer.from(piece))
        this.table.record()
        await nftAsync(['-f', '-'], chunks)
        this.whole = false
      }
      Object.assign(state, {
        error: undefined,
        applies: state.applies + 1,
        digest,
        ...this.table.counts(),
        lastApplyMs: performance.now() - started,
        skipped: this.skipped(),
      })
    } catch (err) {
      this.whole = true
      state.error = `NetworkPolicy not applied: ${(err as Error).message}`
    }
    this.o.onApply(state)
  }
}

/** Applies the objects now and on every change: a directory's within pollMs, the API server's as the watch reports them. */
export function enforcePolicy (o: EnforceOptions): PolicyEnforcer {
  const state: PolicyState = { applies: 0, rebuilds: 0, policies: 0, localPods: 0, rules: 0, lastApplyMs: 0, skipped: [] }
  const refused = bridgedTrafficUnfiltered(o.families)
  if (refused) {
    state.error = `NetworkPolicy not enforced: ${refused}`
    o.onApply(state)
    return { state: () => state, objects: () => undefined, denied: () => ({ ingress: 0, egress: 0 }), drops: () => undefined, admit: async () => {}, stop: async () => {} }
  }
  // Opened before the first render: the deny chains log only where the kernel has NFLOG,
  // since nft refuses a `log group` statement without it and the whole table with it.
  let tableNow: (() => NodeTable) | undefined
  const drops = o.dropLog === false ? undefined : new DropLog({ log: o.log, namer: () => tableNow?.() })
  if (drops?.open() === true) o = { ...o, node: { ...o.node, dropLog: { group: drops.group } } }
  const withDrops = <T extends PolicyEnforcer>(e: T): T => ({
    ...e,
    state: () => { const s = e.state(); if (drops) s.dropLog = drops.stats(); return s },
    drops: () => drops?.view(),
    stop: async () => { drops?.stop(); await e.stop() },
  })
  const counters = new DeniedCounters()
  const denied = (): { ingress: number, egress: number } => counters.total()
  if ('kubernetes' in o.source) {
    const enforcer = enforceFromApi(o, o.source.kubernetes.kubeconfig, state, counters)
    tableNow = enforcer.table
    return withDrops(enforcer)
  }
  const dir = o.source.manifests
  let manifests: Manifests | undefined
  const applier = new Applier(o, state, counters, () => manifests?.errors ?? [])
  tableNow = () => applier.current()
  state.error = `NetworkPolicy not applied yet: reading ${dir}`
  let seen: string | undefined
  const poll = (): void => {
    const started = performance.now()
    try {
      const digest = manifestsDigest(dir)
      if (digest === seen && state.error === undefined) return
      seen = digest
      // Manifests are a handful of objects: each change rebuilds the table from all of them.
      manifests = loadManifests(dir)
      applier.replace(tableOf(o.node, manifests))
      applier.apply(() => digest, started)
    } catch (err) {
      state.error = `NetworkPolicy not applied: ${(err as Error).message}`
      o.onApply(state)
    }
  }
  poll()
  const timer = setInterval(poll, o.pollMs ?? 250)
  return withDrops({
    state: () => state,
    objects: () => manifests,
    denied,
    drops: () => undefined,
    admit: async () => {}, // manifests name each pod's IPs themselves
    stop: async () => { clearInterval(timer); counters.stop(); await applier.stop() },
  })
}

/** A NodeTable holding these objects. */
export function tableOf (node: NodePods, m: Pick<Manifests, 'namespaces' | 'pods' | 'policies'>): NodeTable {
  const table = new NodeTable(node)
  for (const n of m.namespaces) table.namespace(n, undefined)
  for (const p of m.pods) table.pod(p, undefined)
  for (const p of m.policies) table.policy(p, undefined)
  return table
}

/**
 * The API server path. Until all three kinds are listed nothing is applied: the table a
 * previous daemon left stays in force, and where there is none (a first start, a reboot)
 * one that drops every address of this node's pod CIDRs goes in first, so a pod started
 * meanwhile is isolated rather than open. Every change then goes into the NodeTable as it
 * arrives and reaches nftables as the commands it makes. A kind whose list or watch fails
 * later leaves the table as it was, marked stale.
 */
function enforceFromApi (o: EnforceOptions, kubeconfig: string | undefined, state: PolicyState, counters: DeniedCounters): PolicyEnforcer & { table: () => NodeTable } {
  let source: PolicyObjectSource | undefined
  const applier = new Applier(o, state, counters, () => source?.refused() ?? [])
  // Pods admitted by CNI ADD whose IPs the API server has not reported yet: the table holds
  // the store's object with these IPs in its place (held) until it does.
  const provisional = new Map<string, string[]>()
  const held = new Map<string, Pod>()
  const podKey = (p: Pod): string => `${p.namespace}/${p.name}`
  const podChanged = (table: NodeTable, next: Pod | undefined, previous: Pod | undefined): void => {
    const k = podKey((next ?? previous) as Pod)
    const ips = provisional.get(k)
    let shown = next
    if (next !== undefined && ips !== undefined) {
      if (next.ips.length > 0 || next.nodeName !== o.node.nodeName) provisional.delete(k) // reported (or moved): the API's word
      else shown = { ...next, ips }
    }
    if (next === undefined) provisional.delete(k)
    table.pod(shown, held.get(k) ?? previous)
    if (shown !== next && shown !== undefined) held.set(k, shown)
    else held.delete(k)
  }
  const admit = async (namespace: string, name: string, ips: string[]): Promise<void> => {
    const k = `${namespace}/${name}`
    // The Pod is bound to this node before its kubelet creates the sandbox; its watch event may
    // still be on its way. Waited for a while, then refused: the kubelet retries ADD.
    let pod: Pod | undefined
    for (const deadline = performance.now() + ADMIT_WAIT_MS; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
      pod = source?.pod(k)
      if ((pod !== undefined && state.applies > 0) || performance.now() > deadline) break
    }
    if (pod === undefined) throw new Error(`the Pod ${k} is not known to this node yet`)
    if (pod.nodeName !== o.node.nodeName) throw new Error(`the Pod ${k} is bound to ${pod.nodeName ?? 'no node'}, not ${o.node.nodeName}`)
    if (pod.ips.length === 0 || pod.ips.join() !== ips.join()) {
      provisional.set(k, ips)
      podChanged(applier.current(), pod, pod)
      applier.apply(() => versionsOf((source as PolicyObjectSource).status()), performance.now())
    }
    await applier.settled()
    if (state.error !== undefined) throw new Error(state.error)
  }
  const base = { state: () => state, objects: () => source?.objects(), denied: () => counters.total(), drops: () => undefined, admit, table: () => applier.current() }
  let client: KubeClient
  try {
    closedUntilListed(o.node)
    client = KubeClient.load(kubeconfig)
    state.error = 'NetworkPolicy not applied yet: waiting for the API server\'s Namespaces, Pods and NetworkPolicies'
    const table = applier.current()
    const s = source = watchPolicyObjects({
      client,
      log: o.log,
      onObject: (kind, next, previous) => {
        if (kind === 'Pod') podChanged(table, next as Pod | undefined, previous as Pod | undefined)
        else if (kind === 'Namespace') table.namespace(next as Namespace | undefined, previous as Namespace | undefined)
        else table.policy(next as NetworkPolicy | undefined, previous as NetworkPolicy | undefined)
      },
      onChange: () => applier.apply(() => versionsOf(s.status()), performance.now()),
      onStatus: (status) => {
        const failing = POLICY_KINDS.filter((k) => status[k].error !== undefined).map((k) => `${k} ${status[k].error as string}`)
        const unlisted = POLICY_KINDS.filter((k) => !status[k].listed)
        if (state.applies === 0) {
          if (unlisted.length === 0) return // the first apply follows
          state.error = `NetworkPolicy not applied yet: waiting for the API server's ${unlisted.join(', ')}${failing.length > 0 ? ` (${failing.join('; ')})` : ''}`
        } else {
          state.stale = failing.length > 0 ? `NetworkPolicy objects not current (${failing.join('; ')}): the table stays as it was` : undefined
        }
        o.onApply(state)
      },
    })
  } catch (err) {
    state.error = `NetworkPolicy not enforced: ${(err as Error).message}`
    o.onApply(state)
    return { ...base, stop: async () => { counters.stop(); await applier.stop() } }
  }
  return { ...base, stop: async () => { await source?.stop(); client.close(); counters.stop(); await applier.stop() } }
}

/** Installs the table of an empty model (every local pod address dropped) unless one is there already. */
function closedUntilListed (node: NodePods): void {
  // The names only: listing the table itself would print every set element, megabytes at scale.
  const tables = nft(['list', 'tables', 'inet']).split('\n').map((l) => l.trim())
  if (tables.includes(`table inet ${POLICY_TABLE}`)) return
  replaceTable('inet', POLICY_TABLE, new NodeTable(node).script())
}

/** The API path's digest: the resourceVersion each kind's applied objects reflect. */
function versionsOf (status: PolicySourceStatus): string {
  return POLICY_KINDS.map((k) => `${k}=${status[k].resourceVersion ?? ''}`).join(',')
}

/** The table's named counters, from `nft -j list counters table inet flatnet-policy`. */
function deniedFromCounters (json: string): { ingress: number, egress: number } {
  const j = JSON.parse(json) as { nftables: Array<{ counter?: { name: string, packets: number } }> }
  const count = (name: string): number => j.nftables.find((o) => o.counter?.name === name)?.counter?.packets ?? 0
  return { ingress: count('ingress_denied'), egress: count('egress_denied') }
}

/** Packets the table dropped, by direction; zeros when it is not there. */
export async function deniedPackets (): Promise<{ ingress: number, egress: number }> {
  try {
    return deniedFromCounters(await nftAsync(['-j', 'list', 'counters', 'table', 'inet', POLICY_TABLE]))
  } catch {
    return { ingress: 0, egress: 0 }
  }
}

// How often the counters are read for stats and metrics: off the request path, so a scrape
// never starts a child process. nft lists a counter only after fetching the whole table,
// set elements included, which at a large cluster's size costs a noticeable fraction of a
// second; reads are spaced so that they take at most 1% of the time.
const COUNTERS_EVERY_MS = 5000
const COUNTERS_SHARE = 0.01

/**
 * Denied packets since the daemon started: each table replace resets the table's counters,
 * so their last values are carried over just before it.
 */
class DeniedCounters {
  private readonly carried = { ingress: 0, egress: 0 }
  private last = { ingress: 0, egress: 0 }
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor () {
    this.schedule(COUNTERS_EVERY_MS)
  }

  private schedule (ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      const started = performance.now()
      this.read().catch(() => {}).finally(() => this.schedule(Math.max(COUNTERS_EVERY_MS, (performance.now() - started) / COUNTERS_SHARE)))
    }, ms)
    this.timer.unref()
  }

  /** readAt: when the kernel's counters were last read (ms epoch): a status shows how old the counts are. */
  total (): { ingress: number, egress: number, readAt?: number } {
    return { ingress: this.carried.ingress + this.last.ingress, egress: this.carried.egress + this.last.egress, readAt: this.readAt }
  }

  private readAt: number | undefined

  async beforeReplace (): Promise<void> {
    await this.read()
    const { ingress, egress } = this.total()
    Object.assign(this.carried, { ingress, egress })
    this.last = { ingress: 0, egress: 0 }
    this.table++
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  // Which table a read belongs to: a read that started before a replace must not land after it.
  private table = 0

  private async read (): Promise<void> {
    const table = this.table
    const now = await deniedPackets()
    if (table === this.table) {
      this.last = now
      this.readAt = Date.now()
    }
  }
}
