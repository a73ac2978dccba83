// A process that builds namespaces and dies before its teardown (tap's timeout sends
// SIGTERM; Ctrl-C; an uncaught exception) still removes them and what runs inside.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { leftoverNamespaces, removeNamespace } from '../../src/lab/netns.js'
import { labSkipReason } from '../lib/lab.js'

const why = labSkipReason('namespace tests')

const dist = (p: string): string => fileURLToPath(new URL(`../../dist/src/lab/${p}`, import.meta.url))

// The child: a cluster with no nodes (its underlay namespace and state directory), one
// more namespace with a process in it; then it reports them and waits, or crashes.
const CHILD = `
import { reapOnSignals, Namespace } from ${JSON.stringify(dist('netns.js'))}
import { Cluster } from ${JSON.stringify(dist('cluster.js'))}
reapOnSignals()
const cluster = await Cluster.create({ nodes: [], tag: process.argv[2] })
const ns = Namespace.create('flatnet-' + process.argv[2] + '-extra')
const sleeper = ns.spawn('sleep', ['300'])
await new Promise((resolve) => setTimeout(resolve, 200))
console.log(JSON.stringify({ sleeper: sleeper.pid, dir: cluster.dir }))
if (process.argv[3] === 'crash') setTimeout(() => { throw new Error('crashed before teardown') }, 50)
else setInterval(() => {}, 1000)
`

/** Running, not gone and not a zombie awaiting its (re)parent's wait. */
function alive (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

async function dieEarly (t: Test, how: 'SIGTERM' | 'SIGINT' | 'SIGKILL' | 'crash', expectCode: number | null): Promise<void> {
  const tag = `reap${process.pid % 1000}${how.length}`
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-reap-'))
  const script = join(dir, 'child.mjs')
  writeFileSync(script, CHILD)
  const child = spawn(process.execPath, [script, tag, how], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
    for (const name of leftoverNamespaces(`flatnet-${tag}-`)) removeNamespace(name)
    rmSync(dir, { recursive: true, force: true })
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const built = await new Promise<{ sleeper: number, dir: string }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]))
    })
    child.once('exit', (code) => reject(new Error(`child exited ${code} before building: ${err}`)))
  })
  t.ok(leftoverNamespaces(`flatnet-${tag}-`).length >= 2, 'the underlay and the extra namespace exist')
  t.ok(alive(built.sleeper), 'the process inside runs')
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  if (how !== 'crash') child.kill(how)
  t.equal(await exited, expectCode, `the child exits ${expectCode ?? 'by SIGKILL'}`)
  if (how === 'SIGKILL') {
    // Nothing of the child runs any more to remove its namespaces (the teardown does);
    // what it started inside them dies with it (setpriv --pdeathsig).
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.notOk(alive(built.sleeper), 'the process inside died with it')
    return
  }
  t.same(leftoverNamespaces(`flatnet-${tag}-`), [], 'no namespace left')
  t.notOk(alive(built.sleeper), 'the process inside was killed')
  t.notOk(existsSync(built.dir), 'the cluster state directory removed')
}

t.test('teardown that never ran', { skip: why }, async (t) => {
  await t.test('SIGTERM (tap timeout)', async (t) => { await dieEarly(t, 'SIGTERM', 143) })
  await t.test('SIGINT (Ctrl-C)', async (t) => { await dieEarly(t, 'SIGINT', 130) })
  await t.test('uncaught exception', async (t) => { await dieEarly(t, 'crash', 1) })
  await t.test('SIGKILL (a timeout that escalates)', async (t) => { await dieEarly(t, 'SIGKILL', null) })
})
