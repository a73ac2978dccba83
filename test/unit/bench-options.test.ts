// `npm run bench`'s options: three rounds unless --quick, which is one look of 2 s tests.
import t from 'tap'
import { parseArgs } from '../../bench/options.js'

t.test('rounds and seconds: 3 rounds of 5 s by default, 1 of 2 s with --quick, either as given', async (t) => {
  t.match(parseArgs([]), { quick: false, rounds: 3, seconds: 5 })
  t.match(parseArgs(['--quick']), { quick: true, rounds: 1, seconds: 2 })
  t.match(parseArgs(['--quick', '--rounds', '2', '--seconds', '1']), { rounds: 2, seconds: 1 })
  t.match(parseArgs(['--rounds', '1']), { rounds: 1, seconds: 5 })
  t.same(parseArgs(['--modes', 'host-gw,flatnet']).modes.map((m) => m.name), ['host-gw', 'flatnet'])
  t.match(parseArgs([]).out, /bench\/results$/)
})

t.test('request/response sizes: 14, 64 and 1024 bytes, 64 only with --quick', async (t) => {
  t.same(parseArgs([]).rrSizes, [14, 64, 1024])
  t.same(parseArgs(['--quick']).rrSizes, [64])
})

t.test('bad options say what is wrong', async (t) => {
  t.throws(() => parseArgs(['--rounds', '0']), /--rounds: "0" is not a whole number >= 1/)
  t.throws(() => parseArgs(['--rounds']), /--rounds needs a value/)
  t.throws(() => parseArgs(['--modes', 'calico']), /unknown mode "calico"/)
  t.throws(() => parseArgs(['--fast']), /unknown option "--fast"/)
})
