// The lab's API server on 127.0.0.1 for one test, with a client of the daemon's own kind;
// and what lab nodes need to reach one that runs in a lab namespace.
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KubeClient } from '../../src/kube/client.js'
import { KubeApiServer, kubeconfigFor } from '../../src/lab/kube-api.js'

/** The lab API server's address on the lab's underlay bridge. */
export const LAB_API = { host: '192.168.77.250', port: 6443 }

/** A lab node that runs as the DaemonSet does: peers and NetworkPolicy from the API server at LAB_API, through a kubeconfig removed after the test. */
export function apiPolicyNode (t: Test): { kind: 'flatnet', extra: Record<string, unknown> } {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-kubeconfig-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, kubeconfigFor(`http://${LAB_API.host}:${LAB_API.port}`))
  return { kind: 'flatnet', extra: { networkPolicy: {}, kubernetes: { kubeconfig, annotate: false } } }
}

export async function serveKubeApi (t: Test): Promise<{ api: KubeApiServer, client: KubeClient }> {
  const api = new KubeApiServer()
  const url = await api.start()
  const client = new KubeClient({ server: url, insecure: false, origin: 'test' })
  t.teardown(async () => { client.close(); await api.stop() })
  return { api, client }
}
