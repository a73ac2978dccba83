// Namespaces, Pods and NetworkPolicies from the API server: one informer each (the
// official client's list and watch; it relists by itself after 410 Gone), their
// caches turned into the objects compile.ts reads whenever any of them changes.
import { createHash } from 'node:crypto'
import { CoreV1Api, KubeConfig, makeInformer, NetworkingV1Api } from '@kubernetes/client-node'
import type { Logger } from '../log.js'
import { Backoff } from '../control/backoff.js'
import type { Manifests } from './manifests.js'
import { parseNamespace, parseNetworkPolicy, parsePod, PolicyObjectError } from './objects.js'

export interface PolicyObjectSource { stop: () => Promise<void> }

type Informer = ReturnType<typeof makeInformer<object>>

/** Calls onChange with every object, once all three lists are in and again after each change (coalesced for 50 ms). */
export function watchPolicyObjects (kubeconfig: string | undefined, log: Logger, onChange: (m: Manifests, digest: string) => void): PolicyObjectSource {
  const kc = new KubeConfig()
  if (kubeconfig) kc.loadFromFile(kubeconfig)
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster()
  else kc.loadFromDefault()
  const core = kc.makeApiClient(CoreV1Api)
  const net = kc.makeApiClient(NetworkingV1Api)
  const informers: Record<'Namespace' | 'Pod' | 'NetworkPolicy', Informer> = {
    Namespace: makeInformer<object>(kc, '/api/v1/namespaces', async () => await core.listNamespace()),
    Pod: makeInformer<object>(kc, '/api/v1/pods', async () => await core.listPodForAllNamespaces()),
    NetworkPolicy: makeInformer<object>(kc, '/apis/networking.k8s.io/v1/networkpolicies', async () => await net.listNetworkPolicyForAllNamespaces()),
  }
  const synced = new Set<string>()
  let stopped = false
  let pending: NodeJS.Timeout | undefined
  const emit = (): void => {
    pending = undefined
    if (synced.size < 3) return
    const m: Manifests = { namespaces: [], pods: [], policies: [], errors: [] }
    const h = createHash('sha256')
    for (const [kind, informer] of Object.entries(informers)) {
      for (const o of informer.list()) {
        h.update(JSON.stringify(o))
        try {
          if (kind === 'Namespace') m.namespaces.push(parseNamespace(o))
          else if (kind === 'Pod') m.pods.push(parsePod(o))
          else m.policies.push(parseNetworkPolicy(o))
        } catch (err) {
          if (!(err instanceof PolicyObjectError)) throw err
          m.errors.push(err.message) // names the object and the field
        }
      }
    }
    onChange(m, h.digest('hex'))
  }
  const changed = (): void => { pending ??= setTimeout(emit, 50) }
  for (const [kind, informer] of Object.entries(informers)) {
    const backoff = new Backoff(1000, 30_000)
    for (const event of ['add', 'update', 'delete'] as const) informer.on(event, changed)
    informer.on('connect', () => backoff.reset())
    informer.on('error', (err) => {
      // The informer stops on any error but 410 (which it relists itself): start it again.
      if (stopped) return
      log.warn({ kind, err: String((err as Error)?.message ?? err) }, 'policy object watch failed; keeping the last policies')
      setTimeout(() => { if (!stopped) informer.start().catch(() => {}) }, backoff.next())
    })
    informer.start().then(() => { synced.add(kind); changed() }, () => {}) // errors arrive on 'error'
  }
  return {
    stop: async () => {
      stopped = true
      clearTimeout(pending)
      await Promise.all(Object.values(informers).map(async (i) => await i.stop()))
    },
  }
}
