// Upstream's 3x3 pods on lab nodes, probed as upstream's e2e suite probes them: each pod
// serves 80 and 81 over TCP and UDP; from every pod, every pod is tried at once; the
// observed table is compared with upstream's expectation and with what `flatnet policy
// matrix` explains from a running daemon's own objects, so enforcement and explanation
// cannot drift apart. Shared by the manifests path (policy.test.ts) and the API path
// (policy-api.test.ts).
import type { Test } from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { Cluster, Pod as LabPod } from '../../src/lab/cluster.js'
import { matrix } from '../../src/policy/cli.js'
import type { Manifests } from '../../src/policy/manifests.js'
import { compare, TruthTable } from './reachability.js'
import { CYCLONUS_CASES, nodeOf, PODS, podIP, type Probe, type Step, UPSTREAM_CASES } from './upstream-cases.js'
import { expected } from './world.js'

/** The cases probed with traffic: all but SCTP's, which Node cannot speak. */
export const PROBED_CASES = [...UPSTREAM_CASES, ...CYCLONUS_CASES].filter((c) => c.steps.every((s) => s.probes.every((p) => p.protocol !== 'SCTP')))

/** The cases' node-N is the lab's nN. */
export const labNode = (node: string): string => node.replace('node-', 'n')

/** Each of upstream's pods on its lab node, serving: TCP servers answering and closing, UDP servers echoing, on 80 and 81. */
export function addPods (cluster: Cluster): Map<string, LabPod> {
  const pods = new Map<string, LabPod>()
  for (const key of PODS) {
    const n = cluster.nodes.find((x) => x.name === labNode(nodeOf(key)))
    if (!n) throw new Error(`no lab node for ${key}`)
    const pod = cluster.addPod(n, podIP(key))
    pod.ns.spawn(process.execPath, ['-e', `for (const port of [80, 81]) {
      require('net').createServer((s) => s.end('ok')).listen(port, '0.0.0.0')
      const u = require('dgram').createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(port, '0.0.0.0')
    }`])
    pods.set(key, pod)
  }
  return pods
}

// Each round of UDP probes sends from its own source port. A UDP flow that an earlier step
// allowed stays in conntrack for up to 120 s, and established flows pass the policy table
// (only a first packet is judged): a probe whose kernel-chosen port happened to repeat an
// earlier one's was let through a policy that denies it. Ports in [UDP_PORT_BASE, +20,000)
// are never reused within one test file's run (a few hundred rounds).
const UDP_PORT_BASE = 20_000
let udpRound = 0

/** From one pod, every other pod on port/protocol at once: a TCP connection or a UDP echo within 1 s. */
async function probeFrom (pod: LabPod, targets: string[], probe: Pick<Probe, 'port' | 'protocol'>, sourcePort: number): Promise<boolean[]> {
  const script = `const targets = ${JSON.stringify(targets)}
    const tcp = (ip) => new Promise((resolve) => { const s = require('net').connect(${probe.port}, ip); const done = (ok) => { s.destroy(); resolve(ok) }
      s.setTimeout(1000, () => done(false)); s.on('data', () => done(true)); s.on('error', () => done(false)) })
    const udp = () => new Promise((resolve) => { const s = require('dgram').createSocket('udp4'); const answered = new Set()
      const send = () => { for (const ip of targets) if (!answered.has(ip)) s.send('probe', ${probe.port}, ip) }
      const done = () => { clearInterval(again); s.close(); resolve(targets.map((ip) => answered.has(ip))) }
      let again
      s.on('message', (m, r) => { answered.add(r.address); if (answered.size === targets.length) { clearTimeout(t); done() } })
      const t = setTimeout(done, 1000)
      s.bind(${sourcePort}, () => { send(); again = setInterval(send, 300) }) })
    ;(${probe.protocol === 'UDP' ? 'udp()' : 'Promise.all(targets.map(tcp))'}).then((r) => process.stdout.write(JSON.stringify(r)))`
  return JSON.parse(await pod.ns.execAsync(process.execPath, ['-e', script], 20_000))
}

/** Every ordered pair of the 9 pods on one port and protocol. */
export async function observe (pods: Map<string, LabPod>, probe: Pick<Probe, 'port' | 'protocol'>): Promise<TruthTable> {
  const observed = new TruthTable(PODS, false)
  const sourcePort = UDP_PORT_BASE + (udpRound++ % 20_000)
  await Promise.all(PODS.map(async (from) => {
    const results = await probeFrom(pods.get(from) as LabPod, PODS.map(podIP), probe, sourcePort)
    PODS.forEach((to, k) => { observed.set(from, to, results[k]) })
  }))
  return observed
}

/** Probes one step: enforced as upstream expects, and as `flatnet policy matrix` on n1 explains it. */
export async function checkStep (t: Test, cluster: Cluster, pods: Map<string, LabPod>, step: Step, label: string): Promise<void> {
  for (const probe of step.probes) {
    const name = `${label}, ${probe.port}/${probe.protocol}`
    const observed = await observe(pods, probe)
    const enforced = compare(expected(probe), observed)
    t.equal(enforced.wrong, 0, `${name}: enforced as upstream expects`, enforced.wrong === 0 ? {} : { diagnostic: true, tables: enforced.text })
    const { objects } = await queryControl(join(cluster.dir, 'n1.sock'), 'policy-objects') as unknown as { objects: Manifests }
    const same = compare(matrixTable(matrix(objects, probe.port, probe.protocol)), observed)
    t.equal(same.wrong, 0, `${name}: and as \`flatnet policy matrix\` explains it`, same.wrong === 0 ? {} : { diagnostic: true, tables: same.text })
  }
}

/** `flatnet policy matrix` output ("-", then the pods; rows of "." and "X") as a table. */
function matrixTable (text: string): TruthTable {
  const [head, ...rows] = text.trim().split('\n').map((l) => l.split('\t'))
  const table = new TruthTable(PODS, false)
  const to = head.slice(1)
  for (const row of rows) row.slice(1).forEach((cell, k) => { table.set(row[0], to[k], cell === '.') })
  return table
}
