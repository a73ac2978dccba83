// NetworkPolicy enforced on real nodes: upstream's 3x3 model (namespaces x, y, z; pods
// a, b, c, each serving 80 and 81 over TCP and UDP) on three flatnet nodes, so that
// same-node (bridged on cni0) and cross-node pairs both occur. Each of upstream's cases
// (test/policy/upstream-cases.ts) is written to the manifests directory every node
// enforces; once every node has applied exactly those files, every ordered pair is
// probed and the observed table compared with upstream's expectation and with what
// `flatnet policy matrix` explains from a running daemon's own objects, so enforcement
// and explanation cannot drift apart.
import t from 'tap'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { Pod as LabPod } from '../../src/lab/cluster.js'
import { matrix } from '../../src/policy/cli.js'
import type { Manifests } from '../../src/policy/manifests.js'
import { manifestsDigest, type PolicyState } from '../../src/policy/enforce.js'
import { compare, TruthTable } from '../policy/reachability.js'
import { CYCLONUS_CASES, nodeOf, PODS, podIP, type Probe, type Step, UPSTREAM_CASES } from '../policy/upstream-cases.js'
import { expected, namespaceObjects, podObjects } from '../policy/world.js'
import { withCluster } from '../lib/lab.js'

// ~70 policy changes, each probed pair by pair: minutes on two CPUs, more than tap's default.
t.setTimeout(900_000)

const dir = mkdtempSync(join(tmpdir(), 'flatnet-policy-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const labNode = (node: string): string => node.replace('node-', 'n') // the cases' node-N is the lab's nN

/** Writes one step's objects as the manifests every node reads; its namespaces and pods first, as a cluster has them. */
function writeStep (step: Step): void {
  const pods = podObjects(step.podLabels).map((p) => {
    const pod = p as { spec: { nodeName: string } }
    return { ...pod, spec: { ...pod.spec, nodeName: labNode(pod.spec.nodeName) } }
  })
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ kind: 'List', items: [...namespaceObjects(step.namespaceLabels), ...pods] }))
  writeFileSync(join(dir, 'policies.json'), JSON.stringify({ kind: 'List', items: step.policies }))
}

/** Each pod: TCP servers answering and closing, UDP servers echoing, on 80 and 81. */
function serve (pod: LabPod): void {
  pod.ns.spawn(process.execPath, ['-e', `for (const port of [80, 81]) {
    require('net').createServer((s) => s.end('ok')).listen(port, '0.0.0.0')
    const u = require('dgram').createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(port, '0.0.0.0')
  }`])
}

/** From one pod, every other pod on port/protocol at once: a TCP connection or a UDP echo within 1 s. */
async function probeFrom (pod: LabPod, targets: string[], probe: Probe): Promise<boolean[]> {
  const script = `const targets = ${JSON.stringify(targets)}
    const tcp = (ip) => new Promise((resolve) => { const s = require('net').connect(${probe.port}, ip); const done = (ok) => { s.destroy(); resolve(ok) }
      s.setTimeout(1000, () => done(false)); s.on('data', () => done(true)); s.on('error', () => done(false)) })
    const udp = (ip) => new Promise((resolve) => { const s = require('dgram').createSocket('udp4'); const done = (ok) => { clearInterval(again); clearTimeout(t); s.close(); resolve(ok) }
      const send = () => s.send('probe', ${probe.port}, ip); const again = setInterval(send, 300); const t = setTimeout(() => done(false), 1000); s.on('message', () => done(true)); send() })
    Promise.all(targets.map(${probe.protocol === 'UDP' ? 'udp' : 'tcp'})).then((r) => process.stdout.write(JSON.stringify(r)))`
  return JSON.parse(await pod.ns.execAsync(process.execPath, ['-e', script], 20_000))
}

const cases = [...UPSTREAM_CASES, ...CYCLONUS_CASES]
  .filter((c) => c.steps.every((s) => s.probes.every((p) => p.protocol !== 'SCTP'))) // Node speaks no SCTP

t.test('upstream\'s NetworkPolicy cases on three nodes: enforced as expected, as explained', async (t) => {
  writeStep({ policies: [], probes: [] })
  const node = { kind: 'flatnet' as const, extra: { networkPolicy: { manifests: dir } } }
  const cluster = await withCluster(t, { nodes: [node, node, node], podsPerNode: 0 })
  if (!cluster) return
  const pods = new Map<string, LabPod>()
  for (const key of PODS) {
    const n = cluster.nodes.find((x) => x.name === labNode(nodeOf(key)))
    if (!n) throw new Error(`no lab node for ${key}`)
    const pod = cluster.addPod(n, podIP(key))
    serve(pod)
    pods.set(key, pod)
  }
  const policyOf = async (name: string): Promise<PolicyState> =>
    ((await queryControl(join(cluster.dir, `${name}.sock`), 'stats')) as unknown as { policy: PolicyState }).policy
  const latencies: number[] = []
  /** Until every node has applied exactly the files on disk; returns how long that took. */
  const applied = async (): Promise<void> => {
    const want = manifestsDigest(dir)
    const start = Date.now()
    for (;;) {
      const states = await Promise.all(cluster.nodes.map(async (n) => await policyOf(n.name)))
      const failed = states.find((s) => s.error)
      if (failed) throw new Error(failed.error)
      if (states.every((s) => s.digest === want)) break
      if (Date.now() - start > 30_000) throw new Error('the nodes did not apply the manifests within 30 s')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    latencies.push(Date.now() - start)
  }
  for (const c of cases) {
    for (const [i, step] of c.steps.entries()) {
      writeStep(step)
      await applied()
      for (const probe of step.probes) {
        const label = `${c.name}, step ${i + 1}${step.by ? ` (${step.by})` : ''}, ${probe.port}/${probe.protocol}`
        const observed = new TruthTable(PODS, false)
        await Promise.all(PODS.map(async (from) => {
          const results = await probeFrom(pods.get(from) as LabPod, PODS.map(podIP), probe)
          PODS.forEach((to, k) => { observed.set(from, to, results[k]) })
        }))
        const enforced = compare(expected(probe), observed)
        t.equal(enforced.wrong, 0, `${label}: enforced as upstream expects`, enforced.wrong === 0 ? {} : { diagnostic: true, tables: enforced.text })
        // flatnet policy matrix --node n1: the running daemon's own objects, explained by the same model.
        const { objects } = await queryControl(join(cluster.dir, 'n1.sock'), 'policy-objects') as unknown as { objects: Manifests }
        const explained = matrixTable(matrix(objects, probe.port, probe.protocol))
        const same = compare(explained, observed)
        t.equal(same.wrong, 0, `${label}: and as \`flatnet policy matrix\` explains it`, same.wrong === 0 ? {} : { diagnostic: true, tables: same.text })
      }
    }
  }
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]
  t.comment(`manifests written -> applied on all 3 nodes, ${latencies.length} changes: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${latencies[latencies.length - 1]} ms`)
  const { denied } = (await queryControl(join(cluster.dir, 'n1.sock'), 'stats') as unknown as { policy: { denied: { ingress: number, egress: number } } }).policy
  t.ok(denied.ingress > 0 && denied.egress > 0, `n1 counted the first packets it denied: ingress ${denied.ingress}, egress ${denied.egress}`)
})

/** `flatnet policy matrix` output ("-", then the pods; rows of "." and "X") as a table. */
function matrixTable (text: string): TruthTable {
  const [head, ...rows] = text.trim().split('\n').map((l) => l.split('\t'))
  const table = new TruthTable(PODS, false)
  const to = head.slice(1)
  for (const row of rows) row.slice(1).forEach((cell, k) => { table.set(row[0], to[k], cell === '.') })
  return table
}

// Where bridged pod-to-pod traffic would bypass the table (br_netfilter off), the node must
// not look protected: the daemon says so, /readyz fails and no conflist lets a pod start.
t.test('br_netfilter off: enforcement refused, readyz fails, no conflist', async (t) => {
  writeStep({ policies: [], probes: [] })
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', extra: { networkPolicy: { manifests: dir } } }], podsPerNode: 0, tag: 'polbr' })
  if (!cluster) return
  const [n1] = cluster.nodes
  await cluster.stopDaemon(n1)
  rmSync(join(n1.cniDir, 'net.d'), { recursive: true, force: true })
  n1.ns.sysctl('net.bridge.bridge-nf-call-iptables', '0')
  await cluster.startDaemon(n1)
  t.match(cluster.log(n1), /"msg":"network policy not enforced"/, 'logged')
  t.match(cluster.log(n1), /net\.bridge\.bridge-nf-call-iptables is 0: set it to 1 on the node/, 'with the sysctl to set')
  const ready = JSON.parse(await n1.ns.execAsync(process.execPath, ['-e',
    "fetch('http://127.0.0.1:9472/readyz').then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))"]))
  t.equal(ready.status, 503, `/readyz 503: ${String(ready.body).trim()}`)
  t.notOk(existsSync(join(n1.cniDir, 'net.d', '10-flatnet.conflist')), 'no CNI conflist: no pod starts unprotected')
})
