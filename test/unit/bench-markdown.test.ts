// The published tables come from result files (bench/markdown.ts): checked on the
// example run that is in the repository.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { markdownTable } from '../../bench/markdown.js'
import type { BenchResult } from '../../bench/report.js'

const example = JSON.parse(readFileSync(fileURLToPath(new URL('../../bench/results/example.json', import.meta.url)), 'utf8')) as BenchResult

t.test('a row per figure measured, a column per mode, value and ratio per cell', async (t) => {
  const lines = markdownTable(example).split('\n')
  t.match(lines[0], /^2026-12-07 06:13 UTC, `npm run bench -- --quick/, 'when and how it was run')
  t.match(lines[0], /e499e625d328, uncommitted changes/, 'the commit measured, and that it had changes')
  t.match(lines[0], /ratios to kernel-vxlan in the same run/)
  t.equal(lines[2], `| figure | ${example.modes.map((m) => m.mode).join(' | ')} |`)
  const tcp = lines.find((l) => l.startsWith('| TCP 1 stream, Gbit/s |'))
  const kernel = example.modes.findIndex((m) => m.mode === 'kernel-vxlan')
  t.equal(tcp?.split(' | ')[kernel + 1], `${example.modes[kernel].metrics.tcp1Gbps?.toFixed(1) as string} (1.00x)`, 'the baseline at 1.00x')
  t.notOk(lines.some((l) => l.startsWith('| TCP_RR 14 B')), 'sizes the run did not measure are left out')
})

t.test('--rows picks and orders the rows; an unknown one is refused by name', async (t) => {
  const rows = markdownTable(example, ['rttP50Us', 'tcp1Gbps']).split('\n').slice(4).map((l) => l.split(' | ')[0])
  t.same(rows, ['| RTT p50 (UDP ping-pong), us', '| TCP 1 stream, Gbit/s'])
  t.throws(() => markdownTable(example, ['tcp1Gbps', 'speed']), /no figure "speed"/)
})
