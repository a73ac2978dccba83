// NetworkPolicy on this node: the manifests read, compiled (compile.ts), rendered
// (nftables.ts) and applied in one transaction, again whenever the manifests change.
// Enforcement that cannot work is refused loudly (readyz fails), never skipped.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { nft, nftAsync, replaceTable, tableReplacement } from '../net/nft.js'
import { compile } from './compile.js'
import { loadManifests, type Manifests } from './manifests.js'
import { KubeClient } from '../kube/client.js'
import { POLICY_KINDS, type PolicyObjectSource, type PolicySourceStatus, watchPolicyObjects } from './kubernetes.js'
import type { Logger } from '../log.js'
import { type NodePods, POLICY_TABLE, policyRuleset } from './nftables.js'

export interface PolicyState {
  /** Why enforcement is off or failed (readyz reports it), or undefined while it holds. */
  error?: string
  /** Why the API server's objects are not current (a list or watch failing): the last complete model stays in force. */
  stale?: string
  applies: number
  /** sha256 of the manifest files the table was built from (manifestsDigest); from the API server, each kind's resourceVersion. */
  digest?: string
  policies: number
  localPods: number
  rules: number
  lastApplyMs: number
  skipped: string[]
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
  denied: () => { ingress: number, egress: number }
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
}

/** Applies the objects now and on every change: a directory's within pollMs, the API server's as the watch reports them. */
export function enforcePolicy (o: EnforceOptions): PolicyEnforcer {
  const state: PolicyState = { applies: 0, policies: 0, localPods: 0, rules: 0, lastApplyMs: 0, skipped: [] }
  const refused = bridgedTrafficUnfiltered(o.families)
  if (refused) {
    state.error = `NetworkPolicy not enforced: ${refused}`
    o.onApply(state)
    return { state: () => state, objects: () => undefined, denied: () => ({ ingress: 0, egress: 0 }), stop: async () => {} }
  }
  const counters = new DeniedCounters()
  let applied: Manifests | undefined
  const denied = (): { ingress: number, egress: number } => counters.total()
  // One apply at a time; changes that arrive meanwhile collapse into the latest.
  let queued: { m: Manifests, digest: string, started: number } | undefined
  let running: Promise<void> | undefined
  // The newest digest the applied model holds for: the last apply's, or later versions
  // whose changes could not alter the model (advance).
  let latest: string | undefined
  const applyOnce = async ({ m, digest, started }: { m: Manifests, digest: string, started: number }): Promise<void> => {
    try {
      const ruleset = policyRuleset(compile(m.namespaces, m.pods, m.policies, { node: o.node.nodeName }), o.node)
      await counters.beforeReplace()
      await nftAsync(['-f', '-'], tableReplacement('inet', POLICY_TABLE, ruleset.script))
      applied = m
      Object.assign(state, {
        error: undefined,
        applies: state.applies + 1,
        digest,
        policies: m.policies.length,
        localPods: ruleset.pods,
        rules: ruleset.rules,
        lastApplyMs: performance.now() - started,
        skipped: m.errors,
      })
    } catch (err) {
      state.error = `NetworkPolicy not applied: ${(err as Error).message}`
    }
    o.onApply(state)
  }
  const apply = (m: Manifests, digest: string, started: number): void => {
    queued = { m, digest, started }
    latest = digest
    running ??= (async () => {
      while (queued) {
        const next = queued
        queued = undefined
        await applyOnce(next)
      }
      running = undefined
      if (state.error === undefined && latest !== undefined) state.digest = latest
    })()
  }
  const advance = (digest: string): void => {
    latest = digest
    if (running === undefined && state.error === undefined && state.applies > 0) state.digest = digest
  }
  const stop = async (): Promise<void> => {
    counters.stop()
    queued = undefined
    await running
  }
  if ('kubernetes' in o.source) return enforceFromApi(o, o.source.kubernetes.kubeconfig, state, { apply, advance, objects: () => applied, denied, stop })
  const dir = o.source.manifests
  state.error = `NetworkPolicy not applied yet: reading ${dir}`
  const poll = (): void => {
    if (running) return // the digest moves once the apply in flight is in
    const started = performance.now()
    try {
      const digest = manifestsDigest(dir)
      if (digest !== state.digest || state.error) apply(loadManifests(dir), digest, started)
    } catch (err) {
      state.error = `NetworkPolicy not applied: ${(err as Error).message}`
      o.onApply(state)
    }
  }
  poll()
  const timer = setInterval(poll, o.pollMs ?? 250)
  return { state: () => state, objects: () => applied, denied, stop: async () => { clearInterval(timer); await stop() } }
}

/** What the API path drives: the applies (one at a time) and the state they leave. */
interface Applier {
  apply: (m: Manifests, digest: string, started: number) => void
  /** Later versions that hold for the model applied or being applied. */
  advance: (digest: string) => void
  objects: () => Manifests | undefined
  denied: () => { ingress: number, egress: number }
  stop: () => Promise<void>
}

/**
 * The API server path. Until all three kinds are listed nothing is applied: the table a
 * previous daemon left stays in force, and where there is none (a first start, a reboot)
 * one that drops every address of this node's pod CIDRs goes in first, so a pod started
 * meanwhile is isolated rather than open. A kind whose list or watch fails later leaves
 * the last complete model in force, marked stale.
 */
function enforceFromApi (o: EnforceOptions, kubeconfig: string | undefined, state: PolicyState, a: Applier): PolicyEnforcer {
  const { apply, objects, denied, stop: stopApplies } = a
  const off = (why: string): PolicyEnforcer => {
    state.error = `NetworkPolicy not enforced: ${why}`
    o.onApply(state)
    return { state: () => state, objects, denied, stop: stopApplies }
  }
  let source: PolicyObjectSource
  let client: KubeClient
  try {
    closedUntilListed(o.node)
    client = KubeClient.load(kubeconfig)
    state.error = 'NetworkPolicy not applied yet: waiting for the API server\'s Namespaces, Pods and NetworkPolicies'
    source = watchPolicyObjects({
      client,
      log: o.log,
      node: o.node.nodeName,
      onChange: (m, status) => apply(m, versionsOf(status), performance.now()),
      onVersions: (status) => a.advance(versionsOf(status)),
      onStatus: (status) => {
        const failing = POLICY_KINDS.filter((k) => status[k].error !== undefined).map((k) => `${k} ${status[k].error as string}`)
        const unlisted = POLICY_KINDS.filter((k) => !status[k].listed)
        if (state.applies === 0) {
          if (unlisted.length === 0) return // the first apply follows
          state.error = `NetworkPolicy not applied yet: waiting for the API server's ${unlisted.join(', ')}${failing.length > 0 ? ` (${failing.join('; ')})` : ''}`
        } else {
          state.stale = failing.length > 0 ? `NetworkPolicy objects not current (${failing.join('; ')}): the last complete model stays in force` : undefined
        }
        o.onApply(state)
      },
    })
  } catch (err) {
    return off((err as Error).message)
  }
  return { state: () => state, objects, denied, stop: async () => { await source.stop(); client.close(); await stopApplies() } }
}

/** Installs the table of an empty model (every local pod address dropped) unless one is there already. */
function closedUntilListed (node: NodePods): void {
  // The names only: listing the table itself would print every set element, megabytes at scale.
  const tables = nft(['list', 'tables', 'inet']).split('\n').map((l) => l.trim())
  if (tables.includes(`table inet ${POLICY_TABLE}`)) return
  replaceTable('inet', POLICY_TABLE, policyRuleset(compile([], [], [], { node: node.nodeName }), node).script)
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

// How often the counters are read for stats and metrics: read off the request path, so a
// scrape never starts a child process.
const COUNTERS_EVERY_MS = 5000

/**
 * Denied packets since the daemon started: each table replace resets the table's counters,
 * so their last values are carried over just before it.
 */
class DeniedCounters {
  private readonly carried = { ingress: 0, egress: 0 }
  private last = { ingress: 0, egress: 0 }
  private readonly timer = setInterval(() => { this.read().catch(() => {}) }, COUNTERS_EVERY_MS)

  constructor () {
    this.timer.unref()
  }

  total (): { ingress: number, egress: number } {
    return { ingress: this.carried.ingress + this.last.ingress, egress: this.carried.egress + this.last.egress }
  }

  async beforeReplace (): Promise<void> {
    await this.read()
    Object.assign(this.carried, this.total())
    this.last = { ingress: 0, egress: 0 }
    this.table++
  }

  stop (): void {
    clearInterval(this.timer)
  }

  // Which table a read belongs to: a read that started before a replace must not land after it.
  private table = 0

  private async read (): Promise<void> {
    const table = this.table
    const now = await deniedPackets()
    if (table === this.table) this.last = now
  }
}
