// Tap glue for namespace tests: skip (saying why) where namespaces cannot be made,
// but fail loudly in CI, where they must run; always tear the cluster down.
import type { Test } from 'tap'
import { Cluster, type ClusterOptions, type Pod } from '../../src/lab/cluster.js'
import { labUnavailable, reapOnSignals } from '../../src/lab/netns.js'
import { toolsMissing } from '../../src/lab/tools.js'
import { pingFrom, seenAs, startEcho } from './echo.js'

// tap stops a test file that overruns its timeout with SIGTERM, before any teardown.
reapOnSignals()

/** Why `what` cannot run here (the caller skips, saying so), or undefined; in CI, where it must run, throws instead.
 *  `tools`: the programs it drives beyond iproute2 (src/lab/tools.ts names their packages). */
export function labSkipReason (what: string, tools: readonly string[] = []): string | undefined {
  const why = labUnavailable() ?? toolsMissing(tools)
  if (why && process.env.CI) throw new Error(`${what} must run in CI but cannot: ${why}`)
  return why
}

/** Returns a cluster that is destroyed when the test ends, or undefined if skipped. */
export async function withCluster (test: Test, options: ClusterOptions): Promise<Cluster | undefined> {
  const why = labSkipReason('namespace tests')
  if (why) {
    test.pass(`namespace test skipped: ${why}`, { skip: true })
    return undefined
  }
  const cluster = await Cluster.create(options)
  test.teardown(async () => {
    if (!test.passing()) explainNodes(test, cluster)
    await cluster.destroy()
  })
  return cluster
}

/** After a failure, each daemon's fate and last log lines: CI's output is all there is to go on. */
function explainNodes (test: Test, cluster: Cluster): void {
  for (const n of cluster.nodes) {
    if (!n.daemon) continue
    const d = n.daemon
    const state = d.exitCode === null && d.signalCode === null ? 'running' : `exited (code ${d.exitCode}, signal ${d.signalCode})`
    const tail = cluster.log(n).trimEnd().split('\n').slice(-15).join('\n')
    test.comment(`${n.name}: daemon pid ${d.pid} ${state}; last log lines:\n${tail}`)
  }
}

export async function ping (from: Pod, to: string, count = 2): Promise<boolean> {
  return await pingFrom(from.ns, to, count)
}

/** A TCP server in the pod that answers each connection with the address it sees. */
export function startPeerEcho (pod: Pod): void {
  startEcho(pod.ns)
}

/** Connects from one pod to another's echo server; resolves to the address the server saw. */
export async function tcpSeenAs (from: Pod, to: Pod): Promise<string> {
  return await seenAs(from.ns, to.ip)
}
