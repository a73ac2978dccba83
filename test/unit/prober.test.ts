// The prober's decisions (three misses make a peer unreachable, one answer makes it
// reachable again, a miss on the overlay asks the underlay at once, a removed peer's
// late answer is ignored, no more than maxInFlight probes open) against a scripted
// engine that answers as the test says; and the native engine on loopback, where a
// closed port's RST and a listener's SYN-ACK both count as answers.
import t from 'tap'
import { createServer } from 'node:net'
import { constants } from 'node:os'
import { addon, type NativeProber } from '../../src/native.js'
import { type PathHealth, type ProbePath, Prober, PROBE_DEFAULTS } from '../../src/reach/prober.js'
import { until } from '../../src/lab/until.js'

/** Answers each probe as `answer(address)` says on the next take(): true, or an errno. */
class Scripted implements NativeProber {
  results: number[] = []
  sent: Array<{ id: number, dst: string }> = []
  hold = false // keep probes open (no result) while true
  constructor (private readonly answer: (dst: string) => true | number) {}
  probe (id: number, _family: 4 | 6, dst: Buffer): void {
    const a = [...dst].join('.')
    this.sent.push({ id, dst: a })
    if (this.hold) return
    const r = this.answer(a)
    this.results.push(id, r === true ? 1 : 0, 300, r === true ? 0 : r)
  }

  release (): void {
    this.hold = false
    for (const s of this.sent.splice(0)) {
      const r = this.answer(s.dst)
      this.results.push(s.id, r === true ? 1 : 0, 300, r === true ? 0 : r)
    }
  }

  take (): Float64Array { const r = new Float64Array(this.results); this.results = []; return r }
  stop (): void {}
}

const FAST = { ...PROBE_DEFAULTS, intervalMs: 30, underlayIntervalMs: 60, timeoutMs: 20, tickMs: 5 }
const target = (a: string): { overlay: { address: string, local: string }, underlay: { address: string, local: string } } =>
  ({ overlay: { address: a, local: '127.0.0.1' }, underlay: { address: a.replace(/^10\./, '192.'), local: '127.0.0.1' } })

t.test('three misses decide unreachable, one answer reachable; the underlay is asked at once', async (t) => {
  let up = true
  const engine = new Scripted((dst) => dst.startsWith('192.') || up ? true : constants.errno.ETIMEDOUT)
  const changes: Array<[string, ProbePath, boolean | undefined, string | undefined]> = []
  const prober = new Prober({ ...FAST, engine, onChange: (peer, path, h: PathHealth) => changes.push([peer, path, h.reachable, h.lastError]) })
  t.teardown(() => prober.stop())
  prober.start()
  prober.sync(new Map([['a', target('10.0.0.1')], ['b', target('10.0.0.2')]]))
  t.ok(await until(() => prober.summary().overlay.reachable === 2 && prober.summary().underlay.reachable === 2, 5000) >= 0, 'both reachable on both paths')
  t.same(changes, [], 'a new peer\'s first answer is no news')
  up = false
  t.ok(await until(() => prober.summary().overlay.unreachable === 2, 5000) >= 0, 'both unreachable through the overlay')
  const a = prober.health('a')
  t.equal(a?.overlay?.lastError, 'timeout', 'why: the timeout')
  t.ok((a?.overlay?.lost ?? 0) >= FAST.misses, `lost ${a?.overlay?.lost} of ${a?.overlay?.sent}: at least three misses`)
  t.equal(a?.underlay?.reachable, true, 'the underlay still answers')
  t.same(changes.filter((c) => c[1] === 'overlay').map((c) => c.slice(0, 3)).sort(), [['a', 'overlay', false], ['b', 'overlay', false]], 'one change each')
  up = true
  t.ok(await until(() => prober.summary().overlay.reachable === 2, 5000) >= 0, 'back: reachable again')
  t.same(changes.slice(2).map((c) => c[2]), [true, true], 'and said so once each')
})

t.test('a peer reported unreachable is probed less and less often, and the underlay only while deciding', async (t) => {
  const engine = new Scripted((dst) => dst === '10.0.0.1' ? constants.errno.ETIMEDOUT : true)
  const prober = new Prober({ ...FAST, underlayIntervalMs: 500, downIntervalMs: 240, engine, onChange: () => {} })
  t.teardown(() => prober.stop())
  prober.start()
  prober.sync(new Map([['dead', target('10.0.0.1')], ['live', target('10.0.0.2')]]))
  t.ok(await until(() => prober.summary().overlay.unreachable === 1, 5000) >= 0, 'the dead peer decided unreachable')
  const from = engine.sent.length
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const sent = engine.sent.slice(from)
  const dead = sent.filter((p) => p.dst === '10.0.0.1').length
  const live = sent.filter((p) => p.dst === '10.0.0.2').length
  // 30 ms +-25% between a live peer's probes; the dead one's 60, 120, 240, 240 ms... (the cap).
  // Upper bounds and a ratio only: a slow machine fires timers late, which lowers every count.
  t.ok(dead <= 8, `the dead peer: ${dead} overlay probes in 1 s, backing off to the 240 ms cap`)
  t.ok(live > 2 * dead, `the live peer, at its 30 ms: ${live}`)
  const underlay = sent.filter((p) => p.dst === '192.0.0.1').length
  t.ok(underlay <= 3, `its underlay (answering) asked ${underlay} times: on its own 500 ms schedule, no longer at each overlay miss`)
})

t.test('a removed peer\'s late answer is ignored; in flight never past maxInFlight', async (t) => {
  const engine = new Scripted(() => true)
  engine.hold = true
  const prober = new Prober({ ...FAST, maxInFlight: 3, engine, onChange: () => {} })
  t.teardown(() => prober.stop())
  prober.start()
  prober.sync(new Map(Array.from({ length: 10 }, (_, i) => [`p${i}`, target(`10.0.0.${i + 1}`)])))
  t.ok(await until(() => engine.sent.length === 3, 2000) >= 0, 'three probes open')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(engine.sent.length, 3, 'no fourth while they stay open')
  t.ok(prober.deferred > 0, `due probes waited: ${prober.deferred}`)
  const first = engine.sent[0].dst
  const removed = `p${Number(first.split('.')[3]) - 1}` // p<i> is probed at 10.0.0.<i+1> and 192.0.0.<i+1>
  prober.remove(removed)
  engine.release()
  t.ok(await until(() => prober.summary().overlay.reachable === 9, 5000) >= 0,
    'the nine others become reachable as slots free')
  t.equal(prober.health(removed), undefined, 'the removed peer is gone, its answer ignored')
})

t.test('the native engine: a closed port\'s RST and a listener\'s SYN-ACK are answers', async (t) => {
  const server = createServer((s) => s.on('error', () => {}))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const resets: string[] = []
  server.on('connection', (s) => s.on('error', (e: NodeJS.ErrnoException) => resets.push(e.code ?? '')))
  for (const [what, p] of [['closed port (RST)', 1], ['listener (SYN-ACK)', port]] as const) {
    const engine = new addon.Prober(1000)
    const prober = new Prober({ ...FAST, port: p, timeoutMs: 1000, engine, onChange: () => {} })
    prober.start()
    prober.sync(new Map([['lo', { overlay: { address: '127.0.0.1', local: '127.0.0.1' } }]]))
    t.ok(await until(() => prober.health('lo')?.overlay?.reachable === true, 5000) >= 0, `${what}: reachable`)
    const rtt = prober.health('lo')?.overlay?.rttMs ?? -1
    t.ok(rtt >= 0 && rtt < 1000, `${what}: a round trip measured (${rtt.toFixed(3)} ms)`)
    prober.stop()
  }
  t.ok(await until(() => resets.length > 0, 2000) >= 0, 'the listener\'s connections were reset (SO_LINGER 0: no TIME_WAIT)')
  t.ok(resets.every((c) => c === 'ECONNRESET'), `as resets: ${[...new Set(resets)].join(',')}`)
})
