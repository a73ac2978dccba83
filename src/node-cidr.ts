// Node bring-up in Kubernetes mode, as flannel does it: the pod CIDRs come from the
// node's own Node object (spec.podCIDRs, set by kube-controller-manager; the downward
// API cannot expose them), and once the data plane forwards, the Node's
// NetworkUnavailable condition is set to False so the scheduler may place pods.
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node'
import { readFileSync } from 'node:fs'

const POLL_MS = 1000

/** The API client for a kubeconfig file, else the in-cluster service account, else $KUBECONFIG / ~/.kube/config. */
export function nodeApi (kubeconfig?: string): CoreV1Api {
  const kc = new KubeConfig()
  if (kubeconfig) kc.loadFromFile(kubeconfig)
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster()
  else kc.loadFromDefault()
  return kc.makeApiClient(CoreV1Api)
}

/** The node's pod CIDRs (IPv4 first, as Kubernetes orders them), or [] while none is allocated. */
export function podCIDRsOf (node: V1Node): string[] {
  const spec = node.spec ?? {}
  return spec.podCIDRs?.length ? spec.podCIDRs : spec.podCIDR ? [spec.podCIDR] : []
}

export interface WaitOptions {
  timeoutMs: number
  pollMs?: number
  onWait?: (why: string) => void // called once per distinct reason
}

/**
 * Reads the Node until it has pod CIDRs: a new node gets them from
 * kube-controller-manager shortly after it registers, and the API may be briefly
 * unreachable while the node comes up. Throws, saying why, after timeoutMs.
 */
export async function podCIDRsFromNode (nodeName: string, kubeconfig: string | undefined, o: WaitOptions): Promise<string[]> {
  const api = nodeApi(kubeconfig)
  const deadline = Date.now() + o.timeoutMs
  let last = ''
  for (;;) {
    let why: string
    try {
      const cidrs = podCIDRsOf(await api.readNode({ name: nodeName }))
      if (cidrs.length > 0) return cidrs
      why = `Node ${nodeName} has no spec.podCIDRs yet (kube-controller-manager allocates them with --allocate-node-cidrs)`
    } catch (err) {
      const e = err as { code?: number, message?: string }
      why = `cannot read Node ${nodeName}: ${e.code ? `HTTP ${e.code}` : ''} ${String(e.message ?? err).split('\n')[0]}`.trim()
    }
    if (Date.now() + (o.pollMs ?? POLL_MS) > deadline) throw new Error(`--pod-cidr-from-node: ${why}`)
    if (why !== last) o.onWait?.(why)
    last = why
    await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? POLL_MS))
  }
}

/** Sets NetworkUnavailable=False on the Node's status (conditions merge by type: a strategic merge patch). */
export async function markNetworkAvailable (nodeName: string, kubeconfig: string | undefined, now = new Date()): Promise<void> {
  await nodeApi(kubeconfig).patchNodeStatus({
    name: nodeName,
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
  }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch))
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
