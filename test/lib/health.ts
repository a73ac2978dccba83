// A node's probe and metrics ports read from inside its namespace, as the kubelet's probes
// and a Prometheus scrape on the node reach them.
import { setTimeout as sleep } from 'node:timers/promises'
import { METRICS_RENDER_MS } from '../../src/health.js'
import type { LabNode } from '../../src/lab/cluster.js'

/** GET path on 127.0.0.1:port (the health port by default); status 0 and the error code when nothing answers. */
export async function healthGet (n: LabNode, path: string, port = 9472): Promise<{ status: number, body: string }> {
  const script = `fetch('http://127.0.0.1:${port}${path}').then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })),
    (e) => process.stdout.write(JSON.stringify({ status: 0, body: String(e.cause?.code ?? e.message) })))`
  return JSON.parse(await n.ns.execAsync(process.execPath, ['-e', script], 10_000))
}

/** /metrics on the default metricsPort, rendered after now: a scrape within METRICS_RENDER_MS of another gets its render. */
export async function metricsGet (n: LabNode): Promise<{ status: number, body: string }> {
  await sleep(METRICS_RENDER_MS + 50)
  return await healthGet(n, '/metrics', 9473)
}

/** The value of one Prometheus sample, e.g. sample(text, 'flatnet_drops_total', { reason: 'no_route' }). */
export function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return undefined
}
