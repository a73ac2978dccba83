// Namespaces, Pods and NetworkPolicies from the API server: one reflector each, every
// object run through the same parser as manifests (objects.ts) straight from the API's
// JSON, whatever path it came by (list page, watch event, relist after 410), and kept
// only in that parsed form. Each change is handed on as it arrives; that the view is
// complete is said only once all three kinds have been listed: enforcement on a partial
// view would treat unlisted pods and policies as absent.
import type { Logger } from '../log.js'
import type { KubeClient } from '../kube/client.js'
import { Reflector } from '../kube/reflector.js'
import type { Manifests } from './manifests.js'
import { type Namespace, type NetworkPolicy, type Pod, isolatingStandIn, parseNamespace, parseNetworkPolicy, parsePod } from './objects.js'

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

export type PolicyObject = Namespace | Pod | NetworkPolicy

export interface PolicyObjectOptions {
  client: KubeClient
  log: Logger
  /** Every change as it arrives (list page, watch event, relist), in order: previous is what the store held. */
  onObject: (kind: PolicyKind, next: PolicyObject | undefined, previous: PolicyObject | undefined) => void
  /** All three kinds are listed, and again after changes (coalesced). */
  onChange: (status: PolicySourceStatus) => void
  /** A kind's list or watch failed or recovered. */
  onStatus: (status: PolicySourceStatus) => void
  /** Coalescing window for changes. */
  coalesceMs?: number
  /** Test hooks passed to each reflector. */
  reflector?: { pageSize?: number, sleep?: (ms: number, signal: AbortSignal) => Promise<void> }
}

export interface PolicyObjectSource {
  status: () => PolicySourceStatus
  /** The objects held, as arrays: for `flatnet policy` on a live daemon, never on a change's path. */
  objects: () => Manifests
  /** The objects refused, each naming its field. */
  refused: () => string[]
  /** The Pod held under "namespace/name", if any. */
  pod: (key: string) => Pod | undefined
  stop: () => Promise<void>
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
  const emit = (): void => {
    pending = undefined
    if (stopped || !POLICY_KINDS.every((k) => reflectors[k].listed)) return
    o.onChange(status())
  }
  const changed = (): void => { pending ??= setTimeout(emit, o.coalesceMs ?? 10) }
  const reflectorFor = <T extends PolicyObject>(kind: PolicyKind, project: (raw: unknown) => T, standIn?: (raw: unknown) => T | undefined): Reflector<T> => new Reflector<T>({
    client: o.client,
    kind,
    path: PATHS[kind],
    project,
    standIn,
    log: o.log,
    pageSize: o.reflector?.pageSize,
    sleep: o.reflector?.sleep,
    sink: {
      set: (_, next, previous) => { o.onObject(kind, next, previous); changed() },
      delete: (_, previous) => { o.onObject(kind, undefined, previous); changed() },
      unchanged: changed, // the view is current at a later resourceVersion: the digest moves on
      refused: changed,
      synced: () => { changed(); o.onStatus(status()) },
      failed: () => o.onStatus(status()),
      recovered: () => o.onStatus(status()),
    },
  })
  const reflectors = {
    Namespace: reflectorFor('Namespace', parseNamespace),
    Pod: reflectorFor('Pod', parsePod),
    // A policy refused with no last good version isolates what it would select: never more open.
    NetworkPolicy: reflectorFor('NetworkPolicy', parseNetworkPolicy, isolatingStandIn),
  }
  const refused = (): string[] => POLICY_KINDS.flatMap((k) => [...reflectors[k].refused.values()]) // each names its object and field
  for (const k of POLICY_KINDS) reflectors[k].start()
  return {
    status,
    objects: () => ({
      namespaces: [...reflectors.Namespace.store.values()],
      pods: [...reflectors.Pod.store.values()],
      policies: [...reflectors.NetworkPolicy.store.values()],
      errors: refused(),
    }),
    refused,
    pod: (key) => reflectors.Pod.store.get(key),
    stop: async () => {
      stopped = true
      clearTimeout(pending)
      await Promise.all(POLICY_KINDS.map(async (k) => await reflectors[k].stop()))
    },
  }
}
