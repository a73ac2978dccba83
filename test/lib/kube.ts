// The lab's API server on 127.0.0.1 for one test, with a client of the daemon's own kind.
import type { Test } from 'tap'
import { KubeClient } from '../../src/kube/client.js'
import { KubeApiServer } from '../../src/lab/kube-api.js'

export async function serveKubeApi (t: Test): Promise<{ api: KubeApiServer, client: KubeClient }> {
  const api = new KubeApiServer()
  const url = await api.start()
  const client = new KubeClient({ server: url, insecure: false, origin: 'test' })
  t.teardown(async () => { client.close(); await api.stop() })
  return { api, client }
}
