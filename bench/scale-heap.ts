// Where the control plane's memory goes at Kubernetes' sizes, without a lab node: the lab's
// API server on loopback serving the generated cluster, and in a child process with the
// DaemonSet's V8 flags the daemon's Kubernetes side (the Node reflector and the policy
// objects into a NodeTable, the whole table rendered once as the first apply does; no nft).
// Prints the live heap after a full collection once synced, RSS and heap peaks during the
// first sync and during a relist after 410 Gone, and optionally writes heap snapshots.
// Run: node dist/bench/scale-heap.js [--sizes 5000x30x10000 --node-options="--max-old-space-size=96" --snapshot DIR]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { writeHeapSnapshot } from 'node:v8'
import { KubernetesSource } from '../src/control/kubernetes.js'
import type { VtepRecord } from '../src/control/vtep.js'
import { KubeClient } from '../src/kube/client.js'
import { createLogger } from '../src/log.js'
import { clusterPod, type ClusterSpec } from '../src/lab/kube-cluster.js'
import { kubeconfigFor } from '../src/lab/kube-api.js'
import { KubeApiProcess } from '../src/lab/kube-api-process.js'
import { watchPolicyObjects } from '../src/policy/kubernetes.js'
import { NodeTable } from '../src/policy/node-table.js'
import type { Namespace, NetworkPolicy, Pod } from '../src/policy/objects.js'
import { daemonSetEnv } from '../test/lib/daemonset.js'

const SELF = { name: 'self-node', podCIDR: '10.250.0.0/24' }
const MiB = 1 << 20

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5000x30x10000' },
    snapshot: { type: 'string' }, // a directory: heap snapshots after the sync and after the relist
    'node-options': { type: 'string' }, // instead of the DaemonSet's NODE_OPTIONS
    child: { type: 'string' }, // internal: the kubeconfig the child reads
  },
})

if (values.child !== undefined) await child(values.child)
else await parent()

async function parent (): Promise<void> {
  for (const size of String(values.sizes).split(',')) {
    const [nodes, podsPerNode, policies] = size.split('x').map(Number)
    const spec: ClusterSpec = { nodes, podsPerNode, policies, namespaces: 100, self: SELF }
    const api = await KubeApiProcess.start({ host: '127.0.0.1', port: 0, nodeArgs: ['--max-old-space-size=16384'] })
    const dir = mkdtempSync(join(tmpdir(), 'flatnet-scale-heap-'))
    try {
      await api.generate(spec)
      const kubeconfig = join(dir, 'kubeconfig')
      writeFileSync(kubeconfig, kubeconfigFor(api.url))
      const env = Object.fromEntries(daemonSetEnv().map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
      const nodeOptions = values['node-options'] ?? env.NODE_OPTIONS ?? ''
      const args = ['--expose-gc', ...nodeOptions.split(' ').filter(Boolean), fileURLToPath(import.meta.url), '--child', kubeconfig]
      if (values.snapshot) args.push('--snapshot', values.snapshot)
      const c = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env, NODE_OPTIONS: '' } })
      const lines = createInterface({ input: c.stdout })
      const exited = new Promise<number | null>((resolve) => c.once('exit', resolve))
      for await (const line of lines) {
        const m = JSON.parse(line) as { phase: string }
        console.log(JSON.stringify({ size, nodeOptions, ...m }))
        if (m.phase === 'synced') {
          // A 410 Gone: history compacted and the watches closed; a marker Pod written after says when the relist is through.
          await api.compact()
          await api.closeWatches()
          const rv = await api.put(clusterPod(spec, 0, 0, { rev: 'after-410' }))
          c.stdin.write(`${rv}\n`)
        }
      }
      const code = await exited
      if (code !== 0) throw new Error(`the measuring process exited with ${code}`)
    } finally {
      await api.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function child (kubeconfig: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc as () => void
  const log = createLogger('error')
  const started = performance.now()
  const peak = { rss: 0, heap: 0 }
  const sample = (): void => {
    const m = process.memoryUsage()
    peak.rss = Math.max(peak.rss, m.rss)
    peak.heap = Math.max(peak.heap, m.heapUsed)
  }
  const sampler = setInterval(sample, 20)
  const say = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(o)}\n`) }
  const mib = (n: number): number => Math.round(n / MiB * 10) / 10

  const self: VtepRecord = { nodeName: SELF.name, cidrs: [SELF.podCIDR], addr: '198.19.0.1', port: 8472, vni: 1, vtepMAC: Buffer.from('02fe00ffffff', 'hex'), version: 1, source: 'kubernetes' } as unknown as VtepRecord
  let peers: VtepRecord[] = []
  const nodes = new KubernetesSource({ kubeconfig, annotate: false } as never, self, log)
  await nodes.start({ update: () => {}, resync: (_, records) => { peers = records } })

  const table = new NodeTable({ podCIDRs: [SELF.podCIDR], nodeName: SELF.name })
  let applied = false
  const source = watchPolicyObjects({
    client: KubeClient.load(kubeconfig),
    log,
    onObject: (kind, next, previous) => {
      if (kind === 'Pod') table.pod(next as Pod | undefined, previous as Pod | undefined)
      else if (kind === 'Namespace') table.namespace(next as Namespace | undefined, previous as Namespace | undefined)
      else table.policy(next as NetworkPolicy | undefined, previous as NetworkPolicy | undefined)
    },
    onChange: () => {
      if (!applied) {
        // The first apply: the whole table rendered, in pieces, as enforce.ts hands them to nft.
        let bytes = 0
        for (const chunk of table.scriptChunks()) bytes += chunk.length
        table.record()
        applied = true
        say({ phase: 'rendered', tableMB: mib(bytes), seconds: Math.round(performance.now() - started) / 1000 })
      }
      table.takeDelta()
    },
    onStatus: () => {},
  })
  const until = async (ok: () => boolean): Promise<void> => { while (!ok()) await new Promise((resolve) => setTimeout(resolve, 20)) }
  const live = (): Record<string, number> => {
    gc()
    const m = process.memoryUsage()
    return { heapUsedMiB: mib(m.heapUsed), rssMiB: mib(m.rss), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) }
  }
  const snapshot = (name: string): void => {
    if (values.snapshot) writeHeapSnapshot(join(values.snapshot, `${name}.heapsnapshot`))
  }

  await until(() => applied && peers.length > 0)
  const syncPeak = { rssMiB: mib(peak.rss), heapMiB: mib(peak.heap) }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const steady = mib(process.memoryUsage().rss)
  say({ phase: 'synced', seconds: Math.round(performance.now() - started) / 1000, peers: peers.length, syncPeak, steadyRssMiB: steady, live: live() })
  snapshot('synced')

  // The relist: wait for the parent's marker resourceVersion in the Pod store's view.
  const lines = createInterface({ input: process.stdin })
  const [marker] = await Promise.all([new Promise<number>((resolve) => lines.once('line', (l) => resolve(Number(l)))), Promise.resolve()])
  Object.assign(peak, { rss: 0, heap: 0 })
  sample()
  const t0 = performance.now()
  await until(() => {
    const s = source.status()
    return Object.values(s).every((k) => k.listed) && Number(s.Pod.resourceVersion ?? 0) >= marker
  })
  say({ phase: 'relisted', seconds: Math.round(performance.now() - t0) / 1000, relistPeak: { rssMiB: mib(peak.rss), heapMiB: mib(peak.heap) }, live: live() })
  snapshot('relisted')
  clearInterval(sampler)
  lines.close()
  await source.stop()
  await nodes.stop()
  process.exit(0)
}
