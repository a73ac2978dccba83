// A synthetic cluster of real-size objects for the scale benchmark: Nodes running
// flatnet (annotated, each with a /24 of 10.0.0.0/8), Pods spread over them as
// Deployments leave them, Namespaces and NetworkPolicies of the usual shapes. One node,
// `self`, is the lab node under test. Generated where it is served (the API server's own
// process), so hundreds of MB of objects never cross a pipe.
import { realNamespace, realNetworkPolicy, realNode, realPod } from './kube-objects.js'
import type { KubeObject } from './kube-api.js'

export interface ClusterSpec {
  nodes: number
  podsPerNode: number
  namespaces: number
  policies: number
  /** The node under test: its pods get addresses of its pod CIDR (a /24, .10 upwards). */
  self: { name: string, podCIDR: string }
}

// Deployments per namespace: pods of one share their app label, as a ReplicaSet's do.
export const APPS = 50

/** Node i's name, pod CIDR and InternalIP: 198.18.0.0/15 is the benchmarking range (RFC 2544), never routed. */
export function peerNode (i: number): { name: string, podCIDR: string, internalIP: string } {
  return { name: `node-${i}`, podCIDR: `10.${1 + (i >> 8)}.${i & 255}.0/24`, internalIP: `198.18.${i >> 8}.${i & 255}` }
}

const mac = (i: number): string => `02:fe:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`

/** Pod j of node i (i = -1: self). */
export function clusterPod (spec: ClusterSpec, i: number, j: number, extraLabels: Record<string, string> = {}): KubeObject {
  const n = i < 0 ? spec.podsPerNode * spec.nodes + j : i * spec.podsPerNode + j
  const namespace = `ns-${n % spec.namespaces}`
  // Offset by the namespace round, so that the node's own pods (consecutive n) carry different apps and are selected by different policies.
  const app = `app-${(n + Math.floor(n / spec.namespaces)) % APPS}`
  const base = i < 0 ? spec.self.podCIDR.replace(/\.0\/24$/, '') : peerNode(i).podCIDR.replace(/\.0\/24$/, '')
  return realPod({
    namespace,
    name: `${app}-7d9f8c6b5d-${n.toString(36).padStart(5, '0')}`,
    labels: { app, 'pod-template-hash': '7d9f8c6b5d', ...extraLabels },
    nodeName: i < 0 ? spec.self.name : peerNode(i).name,
    ips: [`${base}.${10 + j}`],
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' }],
  })
}

export function clusterPolicy (spec: ClusterSpec, k: number): KubeObject {
  const namespace = `ns-${k % spec.namespaces}`
  return realNetworkPolicy(namespace, `policy-${k}`, {
    podSelector: { matchLabels: { app: `app-${k % APPS}` } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{
      from: [{ podSelector: { matchLabels: { app: `app-${(k + 1) % APPS}` } } }, { namespaceSelector: { matchLabels: { team: `t${k % 10}` } } }],
      ports: [{ port: 'http' }, { port: 9000, endPort: 9100, protocol: 'TCP' }],
    }],
    egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.${1 + (k % 20)}.0.0/16`] } }], ports: [{ port: 53, protocol: 'UDP' }, { port: 443 }] }],
  })
}

/** Every object of the cluster, one at a time: namespaces, nodes, pods (self's last), policies. */
export function * clusterObjects (spec: ClusterSpec): Generator<KubeObject> {
  for (let n = 0; n < spec.namespaces; n++) yield realNamespace(`ns-${n}`, { team: `t${n % 10}` })
  for (let i = 0; i < spec.nodes; i++) {
    const p = peerNode(i)
    yield realNode(p.name, [p.podCIDR], p.internalIP, { 'flatnet.io/vtep-mac': mac(i + 1), 'flatnet.io/vtep-port': '8472', 'flatnet.io/vni': '1' })
  }
  for (let i = 0; i < spec.nodes; i++) for (let j = 0; j < spec.podsPerNode; j++) yield clusterPod(spec, i, j)
  for (let j = 0; j < spec.podsPerNode; j++) yield clusterPod(spec, -1, j)
  for (let k = 0; k < spec.policies; k++) yield clusterPolicy(spec, k)
}
