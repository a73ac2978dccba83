// Waits for a server started inside a pod to bind its port, so the client's first
// attempt is the measurement, not a connection refused.
import type { Namespace } from '../src/lab/netns.js'

export async function waitListening (ns: Namespace, proto: 'tcp' | 'udp', port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const out = ns.exec('ss', '-Hln', proto === 'tcp' ? '-t' : '-u', `sport = :${port}`)
    if (out.trim() !== '') return
    if (Date.now() > deadline) throw new Error(`nothing listening on ${proto}/${port} in ${ns.name} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
