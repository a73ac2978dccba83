// Tap glue for namespace tests: skip (saying why) where namespaces cannot be made,
// but fail loudly in CI, where they must run; always tear the cluster down.
import type { Test } from 'tap'
import { Cluster, type ClusterOptions, type Pod } from '../../src/lab/cluster.js'
import { labUnavailable, reapOnSignals } from '../../src/lab/netns.js'
import { toolsMissing } from '../../src/lab/tools.js'
import { pingFrom } from './echo.js'
import { seenAs, startEcho } from '../../src/lab/traffic.js'

// tap stops a test file that overruns its timeout with SIGTERM, before any teardown.
reapOnSignals()

/** Why `what` cannot run here — no namespaces, or a missing tool of `tools` (the caller skips,
 *  saying so and what to install), or undefined; in CI, where it must run, throws instead. */
export function labSkipReason (what: string, tools: readonly string[] = []): string | undefined {
  const why = labUnavailable() ?? toolsMissing(tools)
  if (why && process.env.CI) throw new Error(`${what} must run in CI but cannot: ${why}`)
  return why
}

// The tools this test file's clusters need beyond what their nodes imply (labTools).
const fileTools: string[] = []

/** Declares, once at the top of a test file, the tools its namespace tests drive (ping, iperf3, ...). */
export function labTools (...tools: string[]): void {
  fileTools.push(...tools)
}

/** What a cluster's nodes need: nft for a flatnet node's NAT outgoing (ipMasq, on by default), openvpn for an OpenVPN node, wireguard-go and wg for a wireguard-go node. */
function nodeTools (options: ClusterOptions): string[] {
  return options.nodes.flatMap((n) => n.kind === 'openvpn'
    ? ['openvpn']
    : n.kind === 'wireguard-go' ? ['wireguard-go', 'wg'] : n.kind === 'flatnet' && n.extra?.ipMasq !== false ? ['nft'] : [])
}

/** Returns a cluster that is destroyed when the test ends, or undefined if skipped (no namespaces, or a tool missing). */
export async function withCluster (test: Test, options: ClusterOptions, tools: readonly string[] = []): Promise<Cluster | undefined> {
  const why = labSkipReason('namespace tests', [...fileTools, ...nodeTools(options), ...tools])
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
