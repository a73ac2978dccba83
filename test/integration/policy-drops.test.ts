// Denied connections made visible (`flatnet policy drops`, src/policy/drops.ts): on two lab
// nodes, x/a (n1) isolated for ingress and x/c (n1) for egress; y/b (n2) tries x/a over TCP,
// x/c tries y/b over UDP and x/a (on its own node, bridged) over TCP. The CLI, run against n1's control socket, names both pods of
// each, the direction, the port and the policy behind the drop; then a flood of denied
// datagrams to thousands of ports leaves the flows kept at the bound and the heap flat.
// All traffic stays inside the lab's namespaces (flatnet-drop*).
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { queryControl } from '../../src/control-socket.js'
import { CLI, type Cluster, type Pod } from '../../src/lab/cluster.js'
import type { DeniedFlow, DropsView } from '../../src/policy/drops.js'
import { MAX_FLOWS } from '../../src/policy/drops.js'
import { withCluster } from '../lib/lab.js'

t.setTimeout(300_000)
const run = promisify(execFile)

const dir = mkdtempSync(join(tmpdir(), 'flatnet-drop-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const pod = (ns: string, name: string, node: string, ip: string): unknown =>
  ({ kind: 'Pod', metadata: { namespace: ns, name, labels: { pod: name } }, spec: { nodeName: node, containers: [] }, status: { podIPs: [{ ip }] } })
writeFileSync(join(dir, 'cluster.json'), JSON.stringify({
  kind: 'List',
  items: [
    { kind: 'Namespace', metadata: { name: 'x' } }, { kind: 'Namespace', metadata: { name: 'y' } },
    pod('x', 'a', 'n1', '10.244.1.10'), pod('x', 'c', 'n1', '10.244.1.11'), pod('y', 'b', 'n2', '10.244.2.10'),
    { kind: 'NetworkPolicy', metadata: { namespace: 'x', name: 'deny-a' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'] } },
    { kind: 'NetworkPolicy', metadata: { namespace: 'x', name: 'deny-c-out' }, spec: { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Egress'] } },
  ],
}))

/** `flatnet policy drops` against a node's control socket, as an operator runs it. */
async function cli (cluster: Cluster, ...args: string[]): Promise<string> {
  return (await run(process.execPath, [CLI, 'policy', 'drops', '--socket', join(cluster.dir, 'n1.sock'), ...args], { timeout: 30_000 })).stdout
}

async function dropsOf (cluster: Cluster): Promise<DropsView> {
  return ((await queryControl(join(cluster.dir, 'n1.sock'), 'policy-drops')) as unknown as { drops: DropsView }).drops
}

/** Polls until check passes (the kernel batches NFLOG records for up to a second; the daemon reads every half second). */
async function until<T> (what: string, read: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await read()
    if (check(v)) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s; last ${JSON.stringify(v).slice(0, 2000)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** One TCP connection attempt and one UDP datagram from a pod (both dropped here), inside its namespace. */
async function attempt (from: Pod, to: string, protocol: 'tcp' | 'udp', port: number): Promise<void> {
  const script = protocol === 'tcp'
    ? `const s = require('net').connect(${port}, '${to}'); s.on('error', () => {}); setTimeout(() => process.exit(0), 1500)`
    : `const s = require('dgram').createSocket('udp4'); s.send('x', ${port}, '${to}', () => s.close())`
  await from.ns.execAsync(process.execPath, ['-e', script])
}

t.test('a denied connection is listed with both pods, direction, port and policy; a flood stays bounded', async (t) => {
  const node = { kind: 'flatnet' as const, extra: { networkPolicy: { manifests: dir } } }
  const cluster = await withCluster(t, { nodes: [node, node], podsPerNode: 0, tag: `drop${process.pid % 10000}` })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const a = cluster.addPod(n1, '10.244.1.10')
  const c = cluster.addPod(n1, '10.244.1.11')
  const b = cluster.addPod(n2, '10.244.2.10')
  a.ns.spawn(process.execPath, ['-e', 'require("net").createServer((s) => s.end("ok")).listen(80)'])
  await until('n1 applies the policies', async () => ((await queryControl(join(cluster.dir, 'n1.sock'), 'policy')) as { policy?: { applies: number, localPods: number } }).policy,
    (p) => (p?.applies ?? 0) > 0 && p?.localPods === 2)

  await attempt(b, a.ip, 'tcp', 80)
  await attempt(c, b.ip, 'udp', 5353)
  await attempt(c, a.ip, 'tcp', 80) // same node: bridged on cni0, judged through br_netfilter
  const listed = await until('the drops listed', async () => await cli(cluster), (out) => /TCP\/80/.test(out) && /UDP\/5353/.test(out) && /x\/c .* x\/a /.test(out))
  t.comment(listed)
  const lines = listed.trim().split('\n')
  t.match(lines[0], /^AGE +DIRECTION +FROM +TO +PROTO\/PORT +COUNT +REASON$/, 'a table')
  t.ok(lines.some((l) => /^\d+s +ingress +y\/b \(10\.244\.2\.10\) +x\/a \(10\.244\.1\.10\) +TCP\/80 +\d+ +ingress of x\/a: isolated by x\/deny-a; no rule allows it$/.test(l)),
    'y/b -> x/a 80/TCP: denied on ingress of x/a, by x/deny-a')
  t.ok(lines.some((l) => /^\d+s +egress +x\/c \(10\.244\.1\.11\) +y\/b \(10\.244\.2\.10\) +UDP\/5353 +1 +egress of x\/c: isolated by x\/deny-c-out; no rule allows it$/.test(l)),
    'x/c -> y/b 5353/UDP: denied on egress of x/c, by x/deny-c-out')
  t.ok(lines.some((l) => /^\d+s +egress +x\/c \(10\.244\.1\.11\) +x\/a \(10\.244\.1\.10\) +TCP\/80 +\d+ +egress of x\/c: isolated by x\/deny-c-out; no rule allows it$/.test(l)),
    'x/c -> x/a 80/TCP, bridged on the node: denied on egress of x/c first')

  const json = JSON.parse(await cli(cluster, '--json')) as DropsView
  const tcp = json.flows.find((f) => f.protocol === 'TCP' && f.direction === 'ingress') as DeniedFlow
  t.match(tcp, {
    direction: 'ingress', reason: 'isolated', from: { ip: '10.244.2.10', pod: 'y/b' }, to: { ip: '10.244.1.10', pod: 'x/a' }, port: 80, isolatedBy: ['x/deny-a'],
  }, '--json: the same flow, as data')
  t.ok(tcp.count >= 1 && tcp.lastSeen >= tcp.firstSeen, `counted (${tcp.count} SYNs) with first and last seen`)
  t.equal(json.lost, 0, 'nothing lost')
  t.match(cluster.log(n1), /"from":"y\/b","to":"x\/a","protocol":"TCP","port":80,.*"msg":"network policy denied a connection"/, 'and a log line for the new flow')

  // A flood to thousands of ports: the table logs 100 a second of it, each a new flow.
  const before = await stats(cluster)
  b.ns.spawn(process.execPath, ['-e', `const s = require('dgram').createSocket('udp4'); let p = 0
    const flood = () => { for (let i = 0; i < 50; i++) s.send('x', 10000 + (p++ % 20000), '${a.ip}'); setImmediate(flood) }; flood()`])
  const full = await until('the daemon read more records than it keeps flows', async () => await dropsOf(cluster), (d) => d.records > MAX_FLOWS + 300, 120_000)
  const middle = await stats(cluster)
  const later = await until('and as many again', async () => await dropsOf(cluster), (d) => d.records > full.records + MAX_FLOWS, 120_000)
  const after = await stats(cluster)
  t.equal(later.flows.length, MAX_FLOWS, `${later.records} records, ${later.flows.length} flows kept: the bound`)
  // From the kernel now: the daemon reads its counters only every few seconds, less often when nft is slow.
  const counter = JSON.parse(await n1.ns.execAsync('nft', ['-j', 'list', 'counter', 'inet', 'flatnet-policy', 'ingress_denied'])) as { nftables: Array<{ counter?: { packets: number } }> }
  const denied = counter.nftables.find((o) => o.counter)?.counter?.packets ?? 0
  t.ok(denied > later.records, `the table dropped more than it logged (${denied} denied, ${later.records} logged): the limit holds`)
  const mb = (n: number): string => (n / 2 ** 20).toFixed(1)
  t.comment(`heap used: ${mb(before.heapUsed)} MB before the flood, ${mb(middle.heapUsed)} MB with the list full, ${mb(after.heapUsed)} MB ${MAX_FLOWS} records later`)
  t.ok(after.heapUsed - middle.heapUsed < 16 * 2 ** 20, 'the heap does not grow with the flood once the list is full')
  const rendered = await cli(cluster)
  t.ok(rendered.trim().split('\n').length <= MAX_FLOWS + 3, 'the CLI prints at most the bound')
  t.match(cluster.log(n1), /"flows":\d+,"seconds":10,"msg":"network policy denied more new connections than logged"/, 'new flows past the log budget: summed up in one line')
  const logged = cluster.log(n1).split('\n').filter((l) => l.includes('"msg":"network policy denied a connection"')).length
  t.ok(logged < later.flows.length / 4, `${logged} lines for ${later.records} records: rate-limited`)
})

/** The daemon's heap: the least of a few samples over a second, so garbage not yet collected weighs little. */
async function stats (cluster: Cluster): Promise<{ heapUsed: number }> {
  let heapUsed = Infinity
  for (let i = 0; i < 5; i++) {
    heapUsed = Math.min(heapUsed, ((await queryControl(join(cluster.dir, 'n1.sock'), 'stats')) as { heapUsed: number }).heapUsed)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { heapUsed }
}
