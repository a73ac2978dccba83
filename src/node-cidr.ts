// Node bring-up in Kubernetes mode, as flannel does it: the pod CIDRs come from the
// node's own Node object (spec.podCIDRs, set by kube-controller-manager; the downward
// API cannot expose them), and once the data plane forwards, the Node's
// NetworkUnavailable condition is set to False so the scheduler may place pods.
import { readFileSync } from 'node:fs'
import { KubeClient, KubeError } from './kube/client.js'
import { KubeConfigError } from './kube/config.js'

const POLL_MS = 1000

// Node's and OpenSSL's words for a server whose certificate does not verify, or that does
// not speak TLS: the CA was read once, so waiting cannot fix it.
const TLS_REFUSED = /certificate|self[- ]signed|altnames|wrong version number|packet length too long/i

/** The node's pod CIDRs (IPv4 first, as Kubernetes orders them), or [] while none is allocated. */
export function podCIDRsOf (node: unknown): string[] {
  const spec = (node as { spec?: { podCIDR?: unknown, podCIDRs?: unknown } } | null)?.spec ?? {}
  if (Array.isArray(spec.podCIDRs) && spec.podCIDRs.length > 0) return spec.podCIDRs.filter((c): c is string => typeof c === 'string')
  return typeof spec.podCIDR === 'string' && spec.podCIDR !== '' ? [spec.podCIDR] : []
}

const nodePath = (name: string): string => `/api/v1/nodes/${encodeURIComponent(name)}`

export interface WaitOptions {
  timeoutMs: number
  pollMs?: number
  onWait?: (why: string) => void // called once per distinct reason
}

/**
 * Reads the Node until it has pod CIDRs: a new node gets them from
 * kube-controller-manager shortly after it registers, and the API may be briefly
 * unreachable while the node comes up. Throws, saying why, after timeoutMs; at once
 * (KubeConfigError) when no API server is configured or its TLS cannot verify.
 */
export async function podCIDRsFromNode (nodeName: string, kubeconfig: string | undefined, o: WaitOptions): Promise<string[]> {
  const client = KubeClient.load(kubeconfig) // no API server configured at all: throws at once, saying so
  const deadline = Date.now() + o.timeoutMs
  let last = ''
  try {
    for (;;) {
      let why: string
      try {
        const cidrs = podCIDRsOf(await client.json('GET', nodePath(nodeName), { idleMs: 10_000 }))
        if (cidrs.length > 0) return cidrs
        why = `Node ${nodeName} has no spec.podCIDRs yet (kube-controller-manager allocates them with --allocate-node-cidrs)`
      } catch (err) {
        const e = err as Error
        if (e instanceof KubeError && e.code === 0 && TLS_REFUSED.test(e.detail)) {
          const { server, origin } = client.endpoint
          throw new KubeConfigError(`${server} (from ${origin}) fails TLS: ${e.detail}; give the right server and CA (kubernetes.kubeconfig in the config)`)
        }
        const detail = e instanceof KubeError && e.code > 0 ? `HTTP ${e.code} ${e.reason}${e.detail ? `: ${e.detail}` : ''}` : e instanceof KubeError ? e.detail : String(e)
        why = `cannot read Node ${nodeName}: ${detail}`
      }
      if (Date.now() + (o.pollMs ?? POLL_MS) > deadline) throw new Error(`--pod-cidr-from-node: ${why}`)
      if (why !== last) o.onWait?.(why)
      last = why
      await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? POLL_MS))
    }
  } finally {
    client.close()
  }
}

/** Sets NetworkUnavailable=False on the Node's status (conditions merge by type: a strategic merge patch). */
export async function markNetworkAvailable (nodeName: string, kubeconfig: string | undefined, now = new Date()): Promise<void> {
  const client = KubeClient.load(kubeconfig)
  await client.json('PATCH', `${nodePath(nodeName)}/status`, {
    contentType: 'application/strategic-merge-patch+json',
    body: {
      status: {
        conditions: [{
          type: 'NetworkUnavailable',
          status: 'False',
          reason: 'FlatnetIsUp',
          message: 'flatnet is running on this node',
          lastTransitionTime: now.toISOString(),
          lastHeartbeatTime: now.toISOString(),
        }],
      },
    },
  }).finally(() => client.close())
}

/**
 * What `--pod-cidr-from-node` needs before the config can be parsed: the node name
 * (the flag, else the file's) and the kubeconfig (the file's `kubernetes.kubeconfig`).
 */
export function nodeIdentity (configFile: string, nodeNameFlag: string | undefined): { nodeName?: string, kubeconfig?: string } {
  let raw: { nodeName?: unknown, kubernetes?: { kubeconfig?: unknown } } = {}
  try {
    raw = JSON.parse(readFileSync(configFile, 'utf8'))
  } catch {
    // loadConfig reports an unreadable or invalid file with the field; nothing to add here.
  }
  const nodeName = nodeNameFlag ?? (typeof raw.nodeName === 'string' ? raw.nodeName : undefined)
  const kubeconfig = typeof raw.kubernetes?.kubeconfig === 'string' ? raw.kubernetes.kubeconfig : undefined
  return { nodeName, kubeconfig }
}
