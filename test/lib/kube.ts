// The lab's API server on 127.0.0.1 for one test, with a client of the daemon's own kind;
// what lab nodes need to reach one that runs in a lab namespace; and a flannel node beside a
// flatnet node that finds its peers through it.
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FLANNEL } from '../../src/control/kube-node.js'
import { KubeClient } from '../../src/kube/client.js'
import { queryControl } from '../../src/control-socket.js'
import type { Cluster, LabNode } from '../../src/lab/cluster.js'
import { KubeApiServer, kubeconfigFor } from '../../src/lab/kube-api.js'
import { KubeApiProcess } from '../../src/lab/kube-api-process.js'
import { realNode } from '../../src/lab/kube-objects.js'
import { until } from '../../src/lab/until.js'
import { withCluster } from './lab.js'

/** The lab API server's address on the lab's underlay bridge. */
export const LAB_API = { host: '192.168.77.250', port: 6443 }

/** A kubeconfig for the API server at LAB_API, removed after the test. */
export function labKubeconfig (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-kubeconfig-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, kubeconfigFor(`http://${LAB_API.host}:${LAB_API.port}`))
  return kubeconfig
}

/** A lab node that runs as the DaemonSet does: peers and NetworkPolicy from the API server at LAB_API. */
export function apiPolicyNode (t: Test): { kind: 'flatnet', extra: Record<string, unknown> } {
  return { kind: 'flatnet', extra: { networkPolicy: {}, kubernetes: { kubeconfig: labKubeconfig(t), annotate: false } } }
}

export async function serveKubeApi (t: Test): Promise<{ api: KubeApiServer, client: KubeClient }> {
  const api = new KubeApiServer()
  const url = await api.start()
  const client = new KubeClient({ server: url, insecure: false, origin: 'test' })
  t.teardown(async () => { client.close(); await api.stop() })
  return { api, client }
}

/** The lab's API server at LAB_API, in its own namespace on the cluster's underlay bridge; stopped after the test. */
export async function labApiServer (t: Test, cluster: Cluster): Promise<KubeApiProcess> {
  const ns = cluster.attachToUnderlay('api', LAB_API.host)
  const api = await KubeApiProcess.start({ netns: ns.name, host: LAB_API.host, port: LAB_API.port })
  t.teardown(async () => await api.stop())
  return api
}

/** A Node's annotations as the API server holds them. */
export async function nodeAnnotations (api: KubeApiProcess, name: string): Promise<Record<string, string>> {
  return ((await api.object('Node', name)) as { metadata: { annotations?: Record<string, string> } } | undefined)?.metadata.annotations ?? {}
}

/** What flannel's kube subnet manager writes on its Node for one backend (pkg/subnet/kube; pkg/backend/*: newSubnetAttrs). */
export function flannelAnnotations (type: 'vxlan' | 'wireguard', publicIP: string, data: Record<string, unknown>): Record<string, string> {
  return { [FLANNEL.managed]: 'true', [FLANNEL.type]: type, [FLANNEL.ip]: publicIP, [FLANNEL.data]: JSON.stringify(data) }
}

/** A row of `flatnet peers`, as far as the flannel tests read it. */
export interface PeerRow { nodeName: string, source: string, encryption?: string, vtepMAC?: string }

/**
 * n1, a flatnet node as the DaemonSet runs it: no static peers, every peer from the lab's API
 * server, its own Node annotated; n2, a node of flannel's wireguard (a wireguard-go node) or
 * vxlan (a kernel vxlan node) backend, whose Node carries what flannel(cluster, n2) says flannel
 * wrote. Resolves once n1 has annotated its Node for flannel's nodes (asserted), with those
 * annotations and n1's peer row for n2 (undefined until it took it).
 */
export async function withFlannelNode (t: Test, o: { kind: 'wireguard-go' | 'kernel-vxlan', tag: string, flannel: (cluster: Cluster, n2: LabNode) => Record<string, string> }) {
  const kubernetes = { kubeconfig: labKubeconfig(t), annotate: true }
  const wireguard = o.kind === 'wireguard-go'
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', extra: { peers: [], kubernetes } }, { kind: o.kind }], wireguard, underlay: 'bridge', tag: o.tag })
  if (!cluster) return undefined
  const [n1, n2] = cluster.nodes
  const api = await labApiServer(t, cluster)
  await api.put(realNode('n1', [n1.podCIDR], n1.underlayIP))
  await api.put(realNode('n2', [n2.podCIDR], n2.underlayIP, o.flannel(cluster, n2)))
  const type = wireguard ? 'wireguard' : 'vxlan'
  t.ok(await until(async () => (await nodeAnnotations(api, 'n1'))[FLANNEL.type] === type, 60_000) >= 0, 'n1 annotated its Node for flannel\'s nodes')
  const sock = join(cluster.dir, 'n1.sock')
  const peerRow = async (): Promise<PeerRow | undefined> => ((await queryControl(sock, 'peers')).peers as PeerRow[]).find((p) => p.nodeName === 'n2')
  return { cluster, n1, n2, annotations: await nodeAnnotations(api, 'n1'), peerRow }
}
