// Join and leave convergence of the control channel on 8 namespace nodes. Each round
// takes one non-seed node (n3..n8 in turn) through a graceful stop (ms until no other
// table holds it), a start (ms to its ready line, then from there until every table
// holds every member, and until pings between its pod and every other pod answer both
// ways), a kill -9 (ms until the heartbeat timeout withdraws it everywhere), a restart.
// Run: sudo npm run bench:convergence [-- --rounds N]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, type LabNode } from '../src/lab/cluster.js'
import { channelNodes, channelSocket, peerNames } from '../src/lab/channel.js'
import { labUnavailable } from '../src/lab/netns.js'
import { until } from '../src/lab/until.js'
import { median } from './rounds.js'

const N = 8
const KEY = 'convergence-bench-key-7d2e'
const tag = `cv${Math.random().toString(36).slice(2, 5)}`

interface Round { leaveMs: number, readyMs: number, joinMs: number, reachMs: number, killMs: number }

const rounds = ((): number => {
  const i = process.argv.indexOf('--rounds')
  const r = i >= 0 ? Number(process.argv[i + 1]) : 6
  if (!Number.isInteger(r) || r < 1) {
    console.error(`--rounds: "${process.argv[i + 1]}" is not a whole number >= 1`)
    process.exit(2)
  }
  return r
})()

async function measure (cluster: Cluster, node: LabNode): Promise<Round> {
  const others = cluster.nodes.filter((m) => m !== node)
  const names = async (m: LabNode): Promise<string[]> => await peerNames(channelSocket(tag, m.index))
  const goneEverywhere = async (): Promise<boolean> => {
    for (const m of others) if ((await names(m)).includes(node.name)) return false
    return true
  }
  const must = (ms: number, what: string): number => {
    if (ms < 0) throw new Error(`${node.name}: ${what} did not happen`)
    return ms
  }

  await cluster.stopDaemon(node)
  const leaveMs = must(await until(goneEverywhere, 10_000, 5), 'graceful leave')

  const started = Date.now()
  await cluster.startDaemon(node) // polls the log for the ready line every 50 ms
  const readyMs = Date.now() - started
  const joinMs = must(await until(async () => {
    if ((await names(node)).length !== N - 1) return false
    for (const m of others) if (!(await names(m)).includes(node.name)) return false
    return true
  }, 10_000, 5), 'join')
  const pod = node.pods[0]
  const pairs = others.flatMap((m) => [[m.pods[0].ns, pod.ip], [pod.ns, m.pods[0].ip]] as const)
  const answered = await Promise.all(pairs.map(async ([from, to]) => await until(async () => {
    try {
      await from.execAsync('ping', ['-n', '-q', '-c', '1', '-W', '0.2', to], 5000)
      return true
    } catch {
      return false
    }
  }, 5000, 0)))
  const reachMs = joinMs + Math.max(...answered.map((ms) => must(ms, 'pods reaching each other')))

  node.daemon?.kill('SIGKILL')
  const killMs = must(await until(goneEverywhere, 15_000, 5), 'withdrawal after kill -9')
  await cluster.startDaemon(node)
  return { leaveMs, readyMs, joinMs, reachMs, killMs }
}

const why = labUnavailable()
if (why) {
  console.error(`bench:convergence: cannot build the namespace lab: ${why}`)
  process.exit(1)
}
const state = mkdtempSync(join(tmpdir(), 'flatnet-cv-'))
let cluster: Cluster | undefined
let cleaning: Promise<void> | undefined
const cleanup = (): Promise<void> => (cleaning ??= (async () => {
  await cluster?.destroy()
  rmSync(state, { recursive: true, force: true })
})())
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void cleanup().then(() => process.exit(130)) })

let failed = false
try {
  cluster = await Cluster.create({ nodes: channelNodes(N, KEY, tag, state), tag })
  const c = cluster
  const full = async (): Promise<boolean> => {
    for (const n of c.nodes) if ((await peerNames(channelSocket(tag, n.index))).length !== N - 1) return false
    return true
  }
  if (await until(full, 10_000, 20) < 0) throw new Error(`the ${N} nodes did not learn each other within 10 s`)
  const results: Round[] = []
  for (let r = 0; r < rounds; r++) {
    const node = c.nodes[2 + r % (N - 2)] // n3..n8: the seeds n1, n2 stay up
    const m = await measure(c, node)
    console.error(`round ${r + 1}/${rounds} ${node.name}: leave ${m.leaveMs} ms, ready ${m.readyMs} ms, join ${m.joinMs} ms, reach ${m.reachMs} ms, kill -9 ${m.killMs} ms`)
    results.push(m)
  }
  const row = (label: string, key: keyof Round, target: string): string => {
    const v = results.map((x) => x[key])
    return `| ${label} | ${median(v)} | ${Math.max(...v)} | ${target} |`
  }
  console.log(`\ncontrol channel, ${N} nodes, ${rounds} rounds (heartbeat 500 ms, dead after 3000 ms), ms:\n`)
  console.log('| event | median | max | target |\n|---|---|---|---|')
  console.log(row('graceful stop: withdrawn from every table', 'leaveMs', 'at once'))
  console.log(row('start: process start to its ready line', 'readyMs', '-'))
  console.log(row('join: every table complete, after ready', 'joinMs', '< 1000'))
  console.log(row('join: all 14 pod pairs answer ping, after ready', 'reachMs', '< 1000'))
  console.log(row('kill -9: withdrawn from every table', 'killMs', '< 5000'))
} catch (err) {
  console.error(`bench:convergence: ${(err as Error).message}`)
  failed = true
} finally {
  await cleanup()
}
process.exit(failed ? 1 : 0)
