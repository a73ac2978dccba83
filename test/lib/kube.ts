// The lab's API server on 127.0.0.1 for one test, with a client of the daemon's own kind;
// and what lab nodes need to reach one that runs in a lab namespace.
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FLANNEL } from '../../src/control/kube-node.js'
import { KubeClient } from '../../src/kube/client.js'
import type { Cluster } from '../../src/lab/cluster.js'
import { KubeApiServer, kubeconfigFor } from '../../src/lab/kube-api.js'
import { KubeApiProcess } from '../../src/lab/kube-api-process.js'

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
