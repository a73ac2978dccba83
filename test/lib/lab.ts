// Tap glue for namespace tests: skip (saying why) where namespaces cannot be made,
// but fail loudly in CI, where they must run; always tear the cluster down.
import t from 'tap'
import { Cluster, type ClusterOptions, type Pod } from '../../src/lab/cluster.js'
import { labUnavailable } from '../../src/lab/netns.js'

type Test = typeof t

/** Returns a cluster that is destroyed when the test ends, or undefined if skipped. */
export async function withCluster (test: Test, options: ClusterOptions): Promise<Cluster | undefined> {
  const why = labUnavailable()
  if (why) {
    if (process.env.CI) throw new Error(`namespace tests must run in CI but cannot: ${why}`)
    test.skip(`namespace test skipped: ${why}`)
    return undefined
  }
  const cluster = await Cluster.create(options)
  test.teardown(() => cluster.destroy())
  return cluster
}

export async function ping (from: Pod, to: string, count = 2): Promise<boolean> {
  try {
    await from.ns.execAsync('ping', ['-c', String(count), '-i', '0.2', '-W', '2', '-q', to], 15_000)
    return true
  } catch {
    return false
  }
}

const ECHO_PORT = 7000

/** A TCP server in the pod that answers each connection with the address it sees. */
export function startPeerEcho (pod: Pod): void {
  pod.ns.spawn(process.execPath, ['-e', `require('net').createServer((s) => { s.end(s.remoteAddress + '\\n') }).listen(${ECHO_PORT}, '0.0.0.0')`])
}

/** Connects from one pod to another's echo server; resolves to the address the server saw. */
export async function tcpSeenAs (from: Pod, to: Pod): Promise<string> {
  const script = `const s = require('net').connect(${ECHO_PORT}, '${to.ip}'); let d = '';
    s.on('data', (b) => { d += b }); s.on('end', () => process.stdout.write(d.trim()));
    s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) }); s.setTimeout(5000, () => process.exit(2))`
  for (let attempt = 0; ; attempt++) {
    try {
      return (await from.ns.execAsync(process.execPath, ['-e', script], 15_000)).trim()
    } catch (err) {
      // The echo server may still be starting.
      if (attempt >= 20) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
