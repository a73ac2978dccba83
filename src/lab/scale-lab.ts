// One flatnet node as the DaemonSet runs it (peers and NetworkPolicy from the API
// server) against the lab's API server in its own process and namespace on the underlay,
// serving a generated cluster of real-size objects: what bench:scale measures and the
// mid-size test checks.
import type { LoopStalls } from '../loop-stalls.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { queryControl } from '../control-socket.js'
import type { PolicyState } from '../policy/enforce.js'
import { Cluster, type LabNode } from './cluster.js'
import { kubeconfigFor } from './kube-api.js'
import { KubeApiProcess } from './kube-api-process.js'
import type { ClusterSpec } from './kube-cluster.js'

const API = { host: '192.168.77.250', port: 6443 } // on the lab's underlay bridge

export interface ScaleLab {
  cluster: Cluster
  node: LabNode
  api: KubeApiProcess
  generated: { objects: number, bytes: number, resourceVersion: number }
  /** Where the daemon's fresh start begins in the server's request log, and when (performance.now()). */
  requestsFrom: number
  started: number
  policy: () => Promise<PolicyState | undefined>
  peers: () => Promise<number>
  /** The longest event-loop stall of the daemon's current and last minute, and its longest collector pause then, ms. */
  stall: () => Promise<{ stallMs: number, gcMs: number }>
  /** Until the applied model reflects at least these resourceVersions (kind -> rv). */
  applied: (versions: Record<string, number>, timeoutMs?: number) => Promise<void>
  destroy: () => Promise<void>
}

/** The cluster of `spec` generated (spec.self filled in with the lab node), and the node's daemon started against it afresh. */
export async function scaleLab (spec: ClusterSpec, o: { tag: string, apiHeapMB?: number, startTimeoutMs?: number, launcher?: string[], beforeStart?: (api: KubeApiProcess) => void }): Promise<ScaleLab> {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-scale-'))
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, kubeconfigFor(`http://${API.host}:${API.port}`))
  const spec0 = {
    kind: 'flatnet' as const,
    // The DaemonSet's configuration: peers and policies from the API server; a cluster CIDR with room for 5,000 /24s.
    extra: { clusterCIDR: '10.0.0.0/8', peers: [], ipMasq: false, networkPolicy: {}, kubernetes: { kubeconfig, annotate: false } },
    launcher: o.launcher, // e.g. the DaemonSet's environment
  }
  const cluster = await Cluster.create({ nodes: [spec0], podsPerNode: 0, tag: o.tag })
  let api: KubeApiProcess | undefined
  const destroy = async (): Promise<void> => {
    await api?.stop()
    await cluster.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const [node] = cluster.nodes
    spec.self = { name: node.name, podCIDR: node.podCIDR }
    const apiNs = cluster.attachToUnderlay('api', API.host)
    api = await KubeApiProcess.start({ netns: apiNs.name, host: API.host, port: API.port, nodeArgs: [`--max-old-space-size=${o.apiHeapMB ?? 16384}`] })
    const generated = await api.generate(spec)
    // A fresh start against the populated server, as after a node reboot.
    await cluster.stopDaemon(node)
    const requestsFrom = (await api.requestLog()).length
    o.beforeStart?.(api)
    const started = performance.now()
    await cluster.startDaemon(node, o.startTimeoutMs ?? 120_000)
    const socket = join(cluster.dir, `${node.name}.sock`)
    // Long timeouts: at scale a rebuild holds the daemon's event loop for seconds, which is what the benchmark measures.
    const policy = async (): Promise<PolicyState | undefined> => ((await queryControl(socket, 'policy', 120_000)) as unknown as { policy?: PolicyState }).policy
    // 5,000 peers with their health are more than a default frame.
    const peers = async (): Promise<number> => ((await queryControl(socket, 'peers', 120_000, 16 << 20)) as unknown as { peers: unknown[] }).peers.length
    // The daemon's event-loop delay: the longest in this minute and in the last.
    const stall = async (): Promise<{ stallMs: number, gcMs: number }> => {
      const { eventLoop: e } = (await queryControl(socket, 'stats', 120_000)) as unknown as { eventLoop: LoopStalls }
      return { stallMs: Math.max(e.maxMs, e.lastMinuteMaxMs), gcMs: Math.max(e.gcMaxMs, e.lastMinuteGcMaxMs) }
    }
    const applied = async (versions: Record<string, number>, timeoutMs = 600_000): Promise<void> => {
      const start = performance.now()
      for (;;) {
        const s = await policy()
        const have = Object.fromEntries((s?.digest ?? '').split(',').map((kv) => kv.split('=')).map(([k, x]) => [k, Number(x || 0)]))
        if (s?.error === undefined && Object.entries(versions).every(([k, rv]) => have[k] >= rv)) return
        if (performance.now() - start > timeoutMs) throw new Error(`not applied within ${timeoutMs} ms: ${JSON.stringify({ want: versions, digest: s?.digest, error: s?.error })}`)
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
    }
    return { cluster, node, api, generated, requestsFrom, started, policy, peers, stall, applied, destroy }
  } catch (err) {
    await destroy()
    throw err
  }
}
