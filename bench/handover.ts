// An update of a node's daemon, two ways, between two lab nodes while a pod on the other
// node pings a pod behind it 1,000 times a second: a handover to a successor started
// beside it (what the DaemonSet's surge update does, src/handover.ts), and a plain
// restart (SIGTERM, then a new daemon: what `kubectl delete pod` does). Per way: the
// time from the SIGTERM to the new daemon's `ready`, the echoes lost, and for the
// handover the forwarding gap itself (the old threads' join before the baton).
// Run: sudo npm run bench:handover [-- --rounds N]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Cluster } from '../src/lab/cluster.js'
import { labUnavailable, reapOnSignals } from '../src/lab/netns.js'
import { pingFlood } from '../src/lab/ping-flood.js'
import { toolsMissing } from '../src/lab/tools.js'

const INTERVAL_S = 0.001
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 5

reapOnSignals()
const why = labUnavailable() ?? toolsMissing(['ping'])
if (why) {
  console.error(`bench:handover ${why}`)
  process.exit(2)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const c = await Cluster.create({ nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }], tag: 'benchho' })
interface Row { readyMs: number[], silenceMs: number[], lost: number[], sent: number[], joinMs: number[] }
const emptyRow = (): Row => ({ readyMs: [], silenceMs: [], lost: [], sent: [], joinMs: [] })
// none: the same flood with nothing updated, the silences the machine itself makes.
const rows: Record<string, Row> = { none: emptyRow(), handover: emptyRow(), restart: emptyRow() }
try {
  const [n1, n2] = c.nodes
  const to = n1.pods[0].ip
  for (let r = 0; r < rounds; r++) {
    for (const way of ['none', 'handover', 'restart'] as const) {
      const flood = pingFlood(n2.pods[0].ns, to, join(c.dir, `flood-${way}-${r}.log`), INTERVAL_S)
      await sleep(300)
      let readyMs = NaN
      if (way === 'handover') {
        readyMs = (await c.handOver(n1)).ms
      } else if (way === 'restart') {
        const start = Date.now()
        await c.stopDaemon(n1)
        await c.startDaemon(n1)
        readyMs = Date.now() - start
      }
      await sleep(700)
      const { sent, lost, maxGapMs } = await flood.stop()
      const row = rows[way]
      if (way !== 'none') row.readyMs.push(readyMs)
      row.silenceMs.push(maxGapMs)
      row.lost.push(lost.length)
      row.sent.push(sent)
      if (way === 'handover') {
        const last = readFileSync(n1.logFile!, 'utf8').split('\n').filter((l) => l.includes('"msg":"handed the data plane over"')).pop()
        row.joinMs.push(last ? JSON.parse(last).gapMs : NaN)
      }
    }
  }
} finally {
  await c.destroy()
}

console.log(`${rounds} rounds, ping every ${INTERVAL_S * 1000} ms across the updated node; medians (max)`)
console.log('| way | SIGTERM to ready, ms | longest silence between replies, ms | echoes lost | old threads\' join, ms |')
console.log('|---|---|---|---|---|')
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
for (const [way, r] of Object.entries(rows)) {
  const fmt = (xs: number[], digits = 0): string => xs.length ? `${median(xs).toFixed(digits)} (${Math.max(...xs).toFixed(digits)})` : '-'
  console.log(`| ${way} | ${fmt(r.readyMs)} | ${fmt(r.silenceMs, 1)} | ${sum(r.lost)} of ${sum(r.sent)} | ${fmt(r.joinMs, 3)} |`)
}
