// NetworkPolicy on this node: the manifests read, compiled (compile.ts), rendered
// (nftables.ts) and applied in one transaction, again whenever the manifests change.
// Enforcement that cannot work is refused loudly (readyz fails), never skipped.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { nft, replaceTable } from '../net/nft.js'
import { compile } from './compile.js'
import { loadManifests, type Manifests } from './manifests.js'
import type { PolicyObjectSource } from './kubernetes.js'
import type { Logger } from '../log.js'
import { type NodePods, POLICY_TABLE, policyRuleset } from './nftables.js'

export interface PolicyState {
  /** Why enforcement is off or failed (readyz reports it), or undefined while it holds. */
  error?: string
  applies: number
  /** sha256 of the manifest files the table was built from (manifestsDigest). */
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
  const carried = { ingress: 0, egress: 0 }
  let applied: Manifests | undefined
  const denied = (): { ingress: number, egress: number } => {
    const now = deniedPackets()
    return { ingress: carried.ingress + now.ingress, egress: carried.egress + now.egress }
  }
  const apply = (m: Manifests, digest: string, started: number): void => {
    try {
      const ruleset = policyRuleset(compile(m.namespaces, m.pods, m.policies, { node: o.node.nodeName }), o.node)
      Object.assign(carried, denied())
      replaceTable('inet', POLICY_TABLE, ruleset.script)
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
  if ('kubernetes' in o.source) {
    // Loaded only here: the Kubernetes client alone adds ~80 MB to the daemon's RSS.
    const { kubeconfig } = o.source.kubernetes
    const watch: Promise<PolicyObjectSource> = import('./kubernetes.js').then(({ watchPolicyObjects }) =>
      watchPolicyObjects(kubeconfig, o.log, (m, digest) => apply(m, digest, performance.now())))
      .catch((err: Error) => {
        state.error = `NetworkPolicy not enforced: cannot watch the API server: ${err.message}`
        o.onApply(state)
        return { stop: async () => {} }
      })
    state.error = 'NetworkPolicy not applied yet: waiting for the API server\'s Namespaces, Pods and NetworkPolicies'
    return { state: () => state, objects: () => applied, denied, stop: async () => await (await watch).stop() }
  }
  const dir = o.source.manifests
  const poll = (): void => {
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
  return { state: () => state, objects: () => applied, denied, stop: async () => { clearInterval(timer) } }
}

/** The table's named counters, from `nft -j list counters table inet flatnet-policy`. */
function deniedFromCounters (json: string): { ingress: number, egress: number } {
  const j = JSON.parse(json) as { nftables: Array<{ counter?: { name: string, packets: number } }> }
  const count = (name: string): number => j.nftables.find((o) => o.counter?.name === name)?.counter?.packets ?? 0
  return { ingress: count('ingress_denied'), egress: count('egress_denied') }
}

/** Packets the table dropped, by direction; zeros when it is not there. */
export function deniedPackets (): { ingress: number, egress: number } {
  try {
    return deniedFromCounters(nft(['-j', 'list', 'counters', 'table', 'inet', POLICY_TABLE]))
  } catch {
    return { ingress: 0, egress: 0 }
  }
}
