// The transport replay window (whitepaper 5.4.6, RFC 6479's bitmap) at its edges: a counter is
// taken once, late ones within 2,048 of the greatest are taken, older ones and repeats are not.
import t from 'tap'
import { REJECT_AFTER_MESSAGES, ReplayWindow, WINDOW } from '../../src/wireguard/replay.js'

t.test('in order, then each a second time', async (t) => {
  const w = new ReplayWindow()
  let ok = true
  for (let c = 0n; c < 5000n; c++) ok &&= w.accept(c)
  t.ok(ok, '0..4999 in order all accepted')
  let again = false
  for (let c = 5000n - BigInt(WINDOW); c < 5000n; c++) again ||= w.accept(c)
  t.notOk(again, 'none of the last 2,048 accepted twice')
})

t.test('out of order within the window; too old; duplicates', async (t) => {
  const w = new ReplayWindow()
  t.ok(w.accept(3000n), 'a first counter that is not 0')
  t.ok(w.accept(3000n - BigInt(WINDOW) + 1n), 'the oldest counter still in the window (greatest - 2,047)')
  t.notOk(w.accept(3000n - BigInt(WINDOW)), 'greatest - 2,048: too old')
  t.notOk(w.accept(0n), 'far too old')
  t.ok(w.accept(2999n), 'one behind')
  t.notOk(w.accept(2999n), 'one behind, twice')
  t.notOk(w.accept(3000n), 'the greatest, twice')
  t.ok(w.check(2998n), 'check does not record')
  t.ok(w.check(2998n), '…so it says yes again')
  t.ok(w.accept(2998n))
  t.notOk(w.check(2998n), 'recorded once accepted')
  // Random order within a window of fresh counters: each once, exactly.
  const counters = Array.from({ length: 2048 }, (_, i) => 10_000n + BigInt(i))
  for (let i = counters.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1)
    ;[counters[i], counters[j]] = [counters[j], counters[i]]
  }
  const w2 = new ReplayWindow()
  t.ok(w2.accept(10_000n + 2047n), 'the greatest first')
  t.equal(counters.filter((c) => w2.accept(c)).length, 2047, 'the other 2,047 of the window, shuffled, each accepted once')
  t.equal(counters.filter((c) => w2.accept(c)).length, 0, 'and none a second time')
})

t.test('counter jumps clear what slid out, and only that', async (t) => {
  const w = new ReplayWindow()
  for (let c = 0n; c < 100n; c++) w.accept(c)
  t.ok(w.accept(100n + BigInt(WINDOW)), 'a jump of the window size')
  t.notOk(w.accept(100n), 'what is now exactly 2,048 behind is too old')
  t.ok(w.accept(101n), '2,047 behind: never seen, accepted')
  t.ok(w.accept(1n << 40n), 'a jump far past the whole bitmap')
  t.notOk(w.accept(101n), 'the old counters are too old')
  t.ok(w.accept((1n << 40n) - 1n), 'just behind the new greatest: its stale bits were cleared')
  t.ok(w.accept((1n << 40n) - 2047n), 'the oldest of the new window')
  t.notOk(w.accept((1n << 40n) - 2047n), '…once')
  // A jump of one block more than the window: the reused blocks start clean.
  const v = new ReplayWindow()
  for (let c = 0n; c < 64n; c++) v.accept(c)
  t.ok(v.accept(64n + 2048n + 32n))
  t.ok(v.accept(64n + 2048n + 32n - 2047n), 'a counter whose block held old bits')
})

t.test('the counter limit (Reject-After-Messages)', async (t) => {
  const w = new ReplayWindow()
  t.ok(w.accept(REJECT_AFTER_MESSAGES - 1n), 'the last usable counter')
  t.notOk(w.accept(REJECT_AFTER_MESSAGES), 'the limit itself')
  t.notOk(w.accept((1n << 64n) - 1n), 'the largest 64-bit counter')
  t.notOk(w.accept(-1n), 'negative')
})
