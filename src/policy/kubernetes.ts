// Namespaces, Pods and NetworkPolicies from the API server: one reflector each, every
// object run through the same parser as manifests (objects.ts) straight from the API's
// JSON, whatever path it came by (list page, watch event, relist after 410), and kept
// only in that parsed form. The model is handed on only once all three kinds have been
// listed: enforcement on a partial view would treat unlisted pods and policies as absent.
import type { Logger } from '../log.js'
import type { KubeClient } from '../kube/client.js'
import { Reflector } from '../kube/reflector.js'
import type { Manifests } from './manifests.js'
import { type Namespace, type NetworkPolicy, type Pod, parseNamespace, parseNetworkPolicy, parsePod } from './objects.js'
import { type PodRelevance, podRelevance } from './relevance.js'

export const POLICY_KINDS = ['Namespace', 'Pod', 'NetworkPolicy'] as const
export type PolicyKind = typeof POLICY_KINDS[number]

export interface KindStatus {
  listed: boolean
  /** The current failure of its list or watch, while it lasts. */
  error?: string
  /** The resourceVersion its objects reflect. */
  resourceVersion?: string
  objects: number
  refused: number
}

export type PolicySourceStatus = Record<PolicyKind, KindStatus>

export interface PolicyObjectSource {
  status: () => PolicySourceStatus
  stop: () => Promise<void>
}

export interface PolicyObjectOptions {
  client: KubeClient
  log: Logger
  /** The complete view, once all three kinds are listed and again after changes (coalesced). */
  onChange: (m: Manifests, status: PolicySourceStatus) => void
  /** A kind's list or watch failed or recovered. */
  onStatus: (status: PolicySourceStatus) => void
  /**
   * The node whose model is built: a Pod change that cannot alter it (relevance.ts)
   * hands on no model, only onVersions, so that a change elsewhere costs no recompile.
   */
  node?: string
  /** Only changes that leave the model as it is arrived since the last onChange: these versions hold for it too. */
  onVersions?: (status: PolicySourceStatus) => void
  /** Coalescing window for changes. */
  coalesceMs?: number
  /** Test hooks passed to each reflector. */
  reflector?: { pageSize?: number, sleep?: (ms: number, signal: AbortSignal) => Promise<void> }
}

const PATHS: Record<PolicyKind, string> = {
  Namespace: '/api/v1/namespaces',
  Pod: '/api/v1/pods',
  NetworkPolicy: '/apis/networking.k8s.io/v1/networkpolicies',
}

export function watchPolicyObjects (o: PolicyObjectOptions): PolicyObjectSource {
  let pending: NodeJS.Timeout | undefined
  let stopped = false
  const status = (): PolicySourceStatus => Object.fromEntries(POLICY_KINDS.map((k) => {
    const r = reflectors[k]
    return [k, { listed: r.listed, error: r.error, resourceVersion: r.resourceVersion, objects: r.store.size, refused: r.refused.size }]
  })) as PolicySourceStatus
  // Which pod changes matter to the model last handed on; undefined until then.
  let relevant: PodRelevance | undefined
  const emit = (): void => {
    pending = undefined
    if (stopped || !POLICY_KINDS.every((k) => reflectors[k].listed)) return
    const errors = POLICY_KINDS.flatMap((k) => [...reflectors[k].refused.values()]) // each names its object and field
    const m: Manifests = {
      namespaces: [...reflectors.Namespace.store.values()] as Namespace[],
      pods: [...reflectors.Pod.store.values()] as Pod[],
      policies: [...reflectors.NetworkPolicy.store.values()] as NetworkPolicy[],
      errors,
    }
    if (o.node !== undefined) relevant = podRelevance(m.namespaces, m.pods, m.policies, o.node)
    o.onChange(m, status())
  }
  const changed = (): void => { pending ??= setTimeout(emit, o.coalesceMs ?? 50) }
  // A pod change is judged against the model last handed on; while another is due, it joins that one.
  const podChanged = (next: Pod | undefined, previous: Pod | undefined): void => {
    if (pending !== undefined || relevant === undefined || o.onVersions === undefined ||
      (next !== undefined && relevant(next)) || (previous !== undefined && relevant(previous))) changed()
    else o.onVersions(status())
  }
  const reflectorFor = <T>(kind: PolicyKind, project: (raw: unknown) => T): Reflector<T> => new Reflector<T>({
    client: o.client,
    kind,
    path: PATHS[kind],
    project,
    log: o.log,
    pageSize: o.reflector?.pageSize,
    sleep: o.reflector?.sleep,
    sink: {
      set: kind === 'Pod' ? (_, next, previous) => podChanged(next as Pod, previous as Pod | undefined) : changed,
      delete: kind === 'Pod' ? (_, previous) => podChanged(undefined, previous as Pod | undefined) : changed,
      refused: changed,
      synced: () => { changed(); o.onStatus(status()) },
      failed: () => o.onStatus(status()),
      recovered: () => o.onStatus(status()),
    },
  })
  const reflectors = {
    Namespace: reflectorFor('Namespace', parseNamespace),
    Pod: reflectorFor('Pod', parsePod),
    NetworkPolicy: reflectorFor('NetworkPolicy', parseNetworkPolicy),
  }
  for (const k of POLICY_KINDS) reflectors[k].start()
  return {
    status,
    stop: async () => {
      stopped = true
      clearTimeout(pending)
      await Promise.all(POLICY_KINDS.map(async (k) => await reflectors[k].stop()))
    },
  }
}
