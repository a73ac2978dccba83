// runPiped (src/net/spawn.ts): what nftAsync relies on, against real programs: input in
// chunks as produced, both outputs, exit statuses, signals, a missing program, a runaway
// output, and an input source that throws.
import t from 'tap'
import { CommandFailed, runPiped } from '../../src/net/spawn.js'

t.test('input in chunks reaches the child whole; stdout and stderr apart', async (t) => {
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`) // ~200 KB: past a pipe's 64 KiB
  const r = await runPiped('sh', ['-c', 'wc -l; echo oops >&2'], lines, 1 << 20)
  t.equal(r.stdout.trim(), '20000')
  t.equal(r.stderr, 'oops\n')
  t.same(await runPiped('cat', [], 'as one string', 1024), { stdout: 'as one string', stderr: '' })
  t.same(await runPiped('true', [], undefined, 1024), { stdout: '', stderr: '' }, 'no input: stdin closed at once')
})

t.test('failures say how, as execFile does', async (t) => {
  const status = await runPiped('sh', ['-c', 'echo bad >&2; exit 3'], undefined, 1024).catch((e: unknown) => e)
  t.type(status, CommandFailed)
  t.match(status, { code: 3, stderr: 'bad\n', message: /exit status 3/ })
  const signalled = await runPiped('sh', ['-c', 'kill -TERM $$'], undefined, 1024).catch((e: unknown) => e)
  t.match(signalled, { signal: 'SIGTERM', message: /killed by SIGTERM/ })
  const missing = await runPiped('flatnet-no-such-program', [], undefined, 1024).catch((e: unknown) => e)
  t.match(missing, { code: 'ENOENT' })
  const runaway = await runPiped('yes', [], undefined, 64 << 10).catch((e: unknown) => e)
  t.match(runaway, { signal: 'SIGKILL', message: /output past 65536 bytes/ }, 'killed past maxBuffer, not held')
})

t.test('an input source that throws kills the child and rejects with its error', async (t) => {
  function * broken (): Generator<string> {
    yield 'first\n'
    throw new Error('the table could not be rendered')
  }
  await t.rejects(runPiped('cat', [], broken(), 1024), /could not be rendered/)
})

t.test('a child that exits without reading its input is an exit status, not a crash', async (t) => {
  const big = Array.from({ length: 100 }, () => 'x'.repeat(64 << 10))
  const r = await runPiped('sh', ['-c', 'exit 0'], big, 1024).catch((e: unknown) => e)
  t.same(r, { stdout: '', stderr: '' })
})
