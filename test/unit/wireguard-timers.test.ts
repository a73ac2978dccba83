// A peer's WireGuard timers against the whitepaper's rules (6.2-6.5), on a simulated clock: rekey
// by time and by messages, the initiator's renewal at 165 s on receive, retransmissions every
// 5 s with jitter until 90 s are spent, keepalives 10 s after data that got no answer, a new
// handshake 15 s after data sent into silence, one initiation per 5 s however many packets wait,
// and keys forgotten after 540 s without a session.
import t from 'tap'
import {
  KEEPALIVE_TIMEOUT_MS, MAX_INITIATIONS, PeerTimers, REJECT_AFTER_TIME_MS, REKEY_AFTER_MESSAGES, REKEY_AFTER_MS,
  REKEY_JITTER_MS, REKEY_TIMEOUT_MS, type TimerAction,
} from '../../src/wireguard/timers.js'

/** Runs the timers from `from` to `to` in steps of 10 ms, answering each 'initiate' by sending one; what was due, with when. */
function run (p: PeerTimers, from: number, to: number): Array<[number, TimerAction]> {
  const seen: Array<[number, TimerAction]> = []
  for (let now = from; now <= to; now += 10) {
    for (const a of p.due(now)) {
      seen.push([now, a])
      if (a === 'initiate') p.initiationSent(now)
      if (a === 'keepalive') p.anySent()
    }
  }
  return seen
}

t.test('no session: the first packet starts a handshake; a burst starts only one', async (t) => {
  const p = new PeerTimers(() => 0)
  t.same(p.dataSent(0, undefined), ['initiate'])
  p.initiationSent(0)
  t.same(p.dataSent(1, undefined), [], 'a second packet a moment later: the attempt under way carries it')
  t.same(p.dataSent(4999, undefined), [])
})

t.test('unanswered initiations: again every 5 s (+ jitter) until 90 s, then give up; keys forgotten 540 s later', async (t) => {
  const p = new PeerTimers(() => 0.5)
  p.dataSent(0, undefined)
  p.initiationSent(0)
  const seen = run(p, 0, 200_000)
  const retries = seen.filter(([, a]) => a === 'initiate')
  t.equal(retries.length, MAX_INITIATIONS - 1, `${MAX_INITIATIONS} initiations in all`)
  const step = REKEY_TIMEOUT_MS + Math.floor(0.5 * REKEY_JITTER_MS)
  const gaps = retries.map(([at], i) => at - (i === 0 ? 0 : retries[i - 1][0]))
  t.ok(gaps.every((g) => g >= step && g <= step + 10), `one every ${step} ms (5 s and the jitter; the clock steps 10 ms): ${gaps.join(', ')}`)
  const giveUp = seen.find(([, a]) => a === 'give-up')
  t.ok(giveUp && giveUp[0] >= 90_000 - 10 && giveUp[0] <= 90_000 + MAX_INITIATIONS * REKEY_JITTER_MS, `given up at ${giveUp?.[0]} ms`)
  t.same(run(p, 200_010, (giveUp as [number, TimerAction])[0] + 3 * REJECT_AFTER_TIME_MS + 20).map(([, a]) => a), ['forget-keys'], 'keys forgotten 540 s after, nothing else')
})

t.test('a handshake completed ends the attempt', async (t) => {
  const p = new PeerTimers(() => 0)
  p.dataSent(0, undefined)
  p.initiationSent(0)
  p.anyReceived()
  p.sessionDerived(40)
  t.same(run(p, 0, 60_000), [], 'no retransmission, no new handshake')
})

const initiatorSession = { createdAt: 0, initiator: true, sent: 0n }
const responderSession = { createdAt: 0, initiator: false, sent: 0n }

t.test('rekey on send: the initiator after 120 s, either side after 2^60 messages', async (t) => {
  const p = new PeerTimers(() => 0)
  p.sessionDerived(0)
  t.same(p.dataSent(REKEY_AFTER_MS - 1, initiatorSession), [], 'just before 120 s')
  p.anyReceived()
  t.same(p.dataSent(REKEY_AFTER_MS, initiatorSession), ['initiate'], 'at 120 s')
  const q = new PeerTimers(() => 0)
  q.sessionDerived(0)
  t.same(q.dataSent(REKEY_AFTER_MS, responderSession), [], 'the responder does not renew at 120 s (the initiator does)')
  t.same(q.dataSent(10, { ...responderSession, sent: REKEY_AFTER_MESSAGES }), ['initiate'], '2^60 messages: either side')
})

t.test('rekey on receive: the initiator at 165 s, once per session', async (t) => {
  const p = new PeerTimers(() => 0)
  p.sessionDerived(0)
  const late = REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS
  t.same(p.dataReceived(late - 1, initiatorSession), [])
  t.same(p.dataReceived(late, initiatorSession), ['initiate'], '165 s: the responder cannot start one, so the initiator does')
  p.initiationSent(late)
  t.same(p.dataReceived(late + 6000, initiatorSession), [], 'once')
  const q = new PeerTimers(() => 0)
  t.same(q.dataReceived(late, responderSession), [], 'not the responder')
})

t.test('passive keepalive: data received and nothing sent for 10 s', async (t) => {
  const p = new PeerTimers(() => 0)
  p.sessionDerived(0)
  p.dataReceived(1000, responderSession)
  t.same(run(p, 1000, 20_000), [[1000 + KEEPALIVE_TIMEOUT_MS, 'keepalive']], 'one keepalive, 10 s after')
  p.dataReceived(30_000, responderSession)
  p.anySent() // an answer went out
  t.same(run(p, 30_000, 50_000), [], 'answered with data: no keepalive')
  p.dataReceived(60_000, responderSession)
  p.dataReceived(65_000, responderSession) // more while the keepalive is due: it answers both
  t.same(run(p, 60_000, 85_000), [[70_000, 'keepalive']], 'one keepalive for data received at 60 and 65 s')
})

t.test('new handshake: data sent and nothing heard for 15 s', async (t) => {
  const p = new PeerTimers(() => 0)
  p.sessionDerived(0)
  p.dataSent(1000, initiatorSession)
  t.same(run(p, 1000, 17_000), [[1000 + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS, 'initiate']], 'at 16 s')
  const q = new PeerTimers(() => 0)
  q.sessionDerived(0)
  q.dataSent(1000, initiatorSession)
  q.anyReceived() // the peer answered
  t.same(run(q, 1000, 30_000), [], 'answered: none')
  t.equal(new PeerTimers().next(), undefined, 'nothing pending: next() is undefined')
})
