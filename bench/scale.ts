// The control plane at Kubernetes' sizes: the real `flatnet daemon` (kubernetes source,
// NetworkPolicy on, as the DaemonSet runs it) in a lab node, against the lab's API server
// in its own process and namespace, serving a synthetic cluster of real-size objects
// (Node ~13.8 KB, Pod ~5.9 KB, NetworkPolicy ~2.1 KB) with pagination, bookmarks and
// resourceVersions. Per size: time to the full peer table and to the first policy apply,
// RSS and its peak, CPU per pod change on other nodes (relabels that move no set element,
// then changes that move pods between peer sets), apply latency of a pod change on this
// node and of a policy change, probe latency during churn, a relist after 410 Gone, and the
// requests the daemon made.
// Run: sudo npm run bench:scale [-- --sizes 500x30x100,5000x30x1000 --churn-seconds 60 --node-options="--max-old-space-size=112"]
import { loadavg } from 'node:os'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type ClusterSpec, clusterPod, clusterPolicy } from '../src/lab/kube-cluster.js'
import { labUnavailable, type Namespace, reapOnSignals } from '../src/lab/netns.js'
import { scaleLab } from '../src/lab/scale-lab.js'
import { daemonSetEnv } from '../test/lib/daemonset.js'
import { percentile } from './latency.js'
import { DOWN_INTERVAL_MS } from '../src/reach/prober.js'
import { cpuSecondsWithChildren as cpuSeconds, peakRssMB, resetPeakRss, rssMB } from './process-usage.js'

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '500x30x100,5000x30x1000,5000x30x10000' },
    'churn-seconds': { type: 'string', default: '60' },
    'churn-rate': { type: 'string', default: '100' },
    // Instead of the DaemonSet's NODE_OPTIONS, to try other V8 heap caps.
    'node-options': { type: 'string' },
    // A directory for the daemon's V8 CPU profile (node --cpu-prof), written when it stops:
    // what held the event loop, sample by sample.
    'cpu-prof': { type: 'string' },
  },
})
const NAMESPACES = 100
const IDLE_SECONDS = 20
// From the peer table's fill: three lost probes (in-flight cap: ~15 s for 5,000), then 8, 16, 30 s.
const PROBES_SETTLE_MS = 15_000 + 8000 + 16_000 + DOWN_INTERVAL_MS * 1.25

reapOnSignals()
const why = labUnavailable()
if (why) {
  console.log(`bench:scale skipped: ${why}`)
  process.exit(0)
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const pct = (xs: number[], p: number): number => percentile([...xs].sort((a, b) => a - b), p)

async function measure (spec: ClusterSpec, churnSeconds: number, churnRate: number): Promise<Record<string, string>> {
  const env = daemonSetEnv().map((kv) => values['node-options'] !== undefined && kv.startsWith('NODE_OPTIONS=') ? `NODE_OPTIONS=${values['node-options']}` : kv)
  const prof = values['cpu-prof']
  if (prof !== undefined && !/^\/[\w./-]+$/.test(prof)) throw new Error(`--cpu-prof wants an absolute directory of [A-Za-z0-9_./-], not ${prof}`)
  // The profile flags go on node's command line: NODE_OPTIONS refuses them.
  const profiled = prof !== undefined ? ['sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${prof} "$@"`] : []
  let serverCpu0 = 0
  const lab = await scaleLab(spec, { tag: 'scale', launcher: ['env', ...env, ...profiled], beforeStart: (api) => { serverCpu0 = cpuSeconds(api.pid as number) } }) // the DaemonSet's V8 heap cap
  const started = lab.started
  try {
    const { api, node: n1 } = lab
    const pid = n1.daemon?.pid as number
    let peersMs = 0
    let appliedMs = 0
    let appliedCpu = 0 // the daemon's own share of the first sync; the rest of its wall time is the server's and the wire's
    let serverCpu = 0 // the lab API server's, which shares the daemon's CPUs as no real one would
    for (;;) {
      if (!peersMs && await lab.peers() >= spec.nodes) peersMs = performance.now() - started
      if (!appliedMs && ((await lab.policy())?.applies ?? 0) > 0) {
        appliedMs = performance.now() - started
        appliedCpu = cpuSeconds(pid)
        serverCpu = cpuSeconds(api.pid as number) - serverCpu0
      }
      if (peersMs && appliedMs) break
      if (performance.now() - started > 900_000) throw new Error('no first sync within 15 minutes')
      await sleep(100)
    }
    const syncPeak = peakRssMB(pid)
    await sleep(2000)
    const steadyRss = rssMB(pid)
    // The daemon's CPU with nothing changing: its timers and the node-to-node probes of every
    // peer (here all unreachable: the lab's peers are records without nodes). Measured once the
    // probes have backed off as they do for peers reported unreachable (DOWN_INTERVAL_MS; the
    // churns below run in that state); the churns' CPU per change is counted above it.
    const settle = peersMs + PROBES_SETTLE_MS - (performance.now() - started)
    if (settle > 0) await sleep(settle)
    const idle0 = cpuSeconds(pid)
    const idleStart = performance.now()
    await sleep(IDLE_SECONDS * 1000)
    const idleShare = (cpuSeconds(pid) - idle0) / ((performance.now() - idleStart) / 1000)

    // Pod changes on other nodes: a label each, at churnRate per second for churnSeconds,
    // while the kubelet's probe is played from the node: /healthz every 100 ms. The CPU
    // counted is the daemon's and its nft runs'.
    const cpu0 = cpuSeconds(pid)
    const churnStart = performance.now()
    const churnFromUs = process.hrtime.bigint() / 1000n // CLOCK_MONOTONIC, as the profile's timestamps
    const probes = probeHealth(n1.ns, churnSeconds)
    const churn = await api.churn(spec, churnRate, churnSeconds)
    await lab.applied({ Pod: churn.lastVersion })
    const churnWall = (performance.now() - churnStart) / 1000
    const churnCpu = cpuSeconds(pid) - cpu0
    const health = await probes

    // The same rate of changes that move pods between peer sets (another app each): set
    // elements added and removed, in nft runs shared through the apply bucket.
    const applies0 = (await lab.policy())?.applies ?? 0
    const cpu1 = cpuSeconds(pid)
    const moveStart = performance.now()
    const moves = await api.churn(spec, churnRate, churnSeconds, true)
    await lab.applied({ Pod: moves.lastVersion })
    const moveWall = (performance.now() - moveStart) / 1000
    const moveCpu = cpuSeconds(pid) - cpu1
    const moveApplies = ((await lab.policy())?.applies ?? 0) - applies0
    const churnStall = await lab.stall() // the two churns fill the last two minutes
    if (prof !== undefined) console.log(`churns in the daemon's profile: ${churnFromUs}..${process.hrtime.bigint() / 1000n} us`)
    // The lab's API server and churn share the daemon's CPUs, as no node's would: a stall
    // stretched by them is read against the machine's load.
    const churnLoad = loadavg()[0]

    // A pod of this node relabelled, one change at a time: written -> applied.
    const local: number[] = []
    for (let k = 0; k < 30; k++) {
      const t0 = performance.now()
      const rv = await api.put(clusterPod(spec, -1, k % spec.podsPerNode, { rev: String(k) }))
      await lab.applied({ Pod: rv })
      local.push(performance.now() - t0)
    }
    // A policy changed (another port), one at a time.
    const policy: number[] = []
    for (let k = 0; k < 10 && spec.policies > 0; k++) {
      const p = clusterPolicy(spec, k)
      ;((p.spec as { ingress: Array<{ ports: unknown[] }> }).ingress[0].ports).push({ port: 7000 + k })
      const t0 = performance.now()
      const rv = await api.put(p)
      await lab.applied({ NetworkPolicy: rv })
      policy.push(performance.now() - t0)
    }
    // A 410 Gone, as after an etcd compaction and an API server restart: every kind relisted
    // whole while the old objects are held. RSS before and the peak since.
    const peakBefore = Math.max(syncPeak, peakRssMB(pid))
    const rssBefore = rssMB(pid)
    resetPeakRss(pid)
    const relistFrom = (await api.requestLog()).length
    const relistStart = performance.now()
    await api.compact()
    await api.closeWatches()
    const marker = await api.put(clusterPod(spec, 0, 0, { rev: 'after-410' }))
    await lab.applied({ Pod: marker })
    const relistMs = performance.now() - relistStart
    const relisted = (await api.requestLog(relistFrom)).filter((r) => r.kind === 'Pod' && r.method === 'GET' && !r.watch && r.query.continue === undefined).length

    // What the daemon said went wrong meanwhile (warn and above), so a figure is never read without it.
    const warnings = readFileSync(n1.logFile as string, 'utf8').split('\n').filter((l) => /"level":"(warn|error|fatal)"/.test(l))
    for (const w of warnings.slice(-20)) console.log(`daemon: ${w.slice(0, 400)}`)
    const requests = await api.requestLog(lab.requestsFrom)
    const count = (f: (r: typeof requests[number]) => boolean): number => requests.filter(f).length
    return {
      size: `${spec.nodes} nodes, ${spec.nodes * spec.podsPerNode + spec.podsPerNode} pods, ${spec.policies} policies`,
      'objects served, MB of JSON': (lab.generated.bytes / 1e6).toFixed(0),
      'peer table full, s': (peersMs / 1000).toFixed(1),
      'first policy apply, s (daemon CPU, s; lab API server CPU, s)': `${(appliedMs / 1000).toFixed(1)} (${appliedCpu.toFixed(1)}; ${serverCpu.toFixed(1)})`,
      'RSS steady / peak, MiB': `${steadyRss.toFixed(0)} / ${peakBefore.toFixed(0)}`,
      'idle (timers, probes of every peer, all unreachable): share of one core': `${(idleShare * 100).toFixed(1)}%`,
      [`pod changes elsewhere, ${churnRate}/s for ${churnSeconds} s: CPU per change above idle, ms`]: ((churnCpu - idleShare * churnWall) / churn.changes * 1000).toFixed(2),
      'that churn: share of one core above idle': `${((churnCpu / churnWall - idleShare) * 100).toFixed(0)}%`,
      'changes moving pods between peer sets: CPU per change above idle, ms (share of one core)':
        `${((moveCpu - idleShare * moveWall) / moves.changes * 1000).toFixed(2)} (${((moveCpu / moveWall - idleShare) * 100).toFixed(0)}%)`,
      'nft applies they took': String(moveApplies),
      'longest event-loop stall in the churns\' last 1-2 minutes (longest GC pause), ms; load then': `${churnStall.stallMs.toFixed(0)} (${churnStall.gcMs.toFixed(0)}); ${churnLoad.toFixed(2)}`,
      '/healthz during churn: p99 / max, ms': `${health.p99.toFixed(0)} / ${health.max.toFixed(0)}`,
      'pod change on this node, applied p50 / p99, ms': `${pct(local, 50).toFixed(0)} / ${pct(local, 99).toFixed(0)}`,
      'policy change, applied p50 / max, ms': policy.length ? `${pct(policy, 50).toFixed(0)} / ${Math.max(...policy).toFixed(0)}` : '-',
      'relist after 410 Gone: s; RSS before / peak since, MiB': relisted > 0 ? `${(relistMs / 1000).toFixed(1)}; ${rssBefore.toFixed(0)} / ${peakRssMB(pid).toFixed(0)}` : 'no relist',
      'requests: GETs but pages (pages) / watches / writes': `${count((r) => r.method === 'GET' && !r.watch && !r.query.continue)} (${count((r) => r.method === 'GET' && !r.watch)}) / ${count((r) => r.watch)} / ${count((r) => r.method !== 'GET')}`,
    }
  } finally {
    await lab.destroy()
  }
}

/** /healthz from inside the node every 100 ms for `seconds`, as the kubelet probes it: latency p99 and max, ms. */
async function probeHealth (ns: Namespace, seconds: number): Promise<{ p99: number, max: number }> {
  const script = `const t = []; const end = Date.now() + ${seconds * 1000}
    ;(async () => { while (Date.now() < end) { const s = performance.now(); await fetch('http://127.0.0.1:9472/healthz').then((r) => r.text()).catch(() => {}); t.push(performance.now() - s); await new Promise((r) => setTimeout(r, 100)) }
    t.sort((a, b) => a - b); process.stdout.write(JSON.stringify({ p99: t[Math.floor(t.length * 0.99)] ?? 0, max: t[t.length - 1] ?? 0 })) })()`
  return JSON.parse(await ns.execAsync(process.execPath, ['-e', script], (seconds + 60) * 1000))
}

const rows: Array<Record<string, string>> = []
for (const size of String(values.sizes).split(',')) {
  const [nodes, podsPerNode, policies] = size.split('x').map(Number)
  const spec: ClusterSpec = { nodes, podsPerNode, policies, namespaces: NAMESPACES, self: { name: '', podCIDR: '' } }
  const started = performance.now()
  const row = await measure(spec, Number(values['churn-seconds']), Number(values['churn-rate']))
  rows.push(row)
  console.log(JSON.stringify({ ...row, 'bench minutes': ((performance.now() - started) / 60_000).toFixed(1) }))
}
const keys = Object.keys(rows[0] ?? {})
console.log(`\n| ${['', ...rows.map((r) => r.size)].join(' | ')} |\n|${'---|'.repeat(rows.length + 1)}`)
for (const k of keys.filter((k) => k !== 'size')) console.log(`| ${k} | ${rows.map((r) => r[k]).join(' | ')} |`)
