// The watch stream's line splitter against String.split of the whole text: every text cut
// in two at every byte and fed a byte at a time, random texts (seeded) cut at random; then
// the bound on a line's length, which must hold however the line arrives.
import t from 'tap'
import { LineReader } from '../../src/kube/line-reader.js'
import { prng } from '../lib/prng.js'

function read (chunks: Buffer[], max = 1 << 20): string[] {
  const lines: string[] = []
  const reader = new LineReader((line) => { lines.push(line) }, max)
  for (const chunk of chunks) reader.write(chunk)
  reader.end()
  return lines
}

function reference (text: string): string[] {
  return text.split('\n').map((l) => l.endsWith('\r') ? l.slice(0, -1) : l).filter((l) => l !== '')
}

function * cuts (body: Buffer): Generator<[string, Buffer[]]> {
  for (let k = 0; k <= body.length; k++) yield [`cut at ${k}`, [body.subarray(0, k), body.subarray(k)]]
  yield ['1-byte chunks', Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1))]
}

function mismatches (body: Buffer, expected: string[], max?: number): string[] {
  const bad: string[] = []
  for (const [name, chunks] of cuts(body)) {
    let got: string
    try {
      got = JSON.stringify(read(chunks, max))
    } catch (err) {
      got = String(err)
    }
    if (got !== JSON.stringify(expected)) bad.push(`${name}: ${got}`)
  }
  return bad
}

const EVENT = '{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"12"}}}'

const CASES: Array<[string, string]> = [
  ['two events', `${EVENT}\n{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"13"}}}\n`],
  ['a last line without a newline', `${EVENT}\n${EVENT}`],
  ['\\r\\n line ends', `${EVENT}\r\n${EVENT}\r\n`],
  ['empty lines skipped', '\n\na\n\n\r\n\nb\n\n'],
  ['a \\r inside a line stays', 'a\rb\n\rc\n'],
  ['2, 3 and 4-byte characters', '{"s":"é"}\n中文\n😀🚀\n{"emoji":"a😀b"}'],
  ['only newlines', '\n\r\n\n'],
  ['nothing', ''],
]

t.test('each case, cut anywhere, gives the lines of the whole', async (t) => {
  for (const [name, text] of CASES) {
    const expected = reference(text)
    t.same(read([Buffer.from(text)]), expected, `${name}: whole`)
    t.same(mismatches(Buffer.from(text), expected), [], `${name}: every cut and 1-byte chunks`)
  }
  t.same(read([Buffer.from(CASES[5][1])]), ['{"s":"é"}', '中文', '😀🚀', '{"emoji":"a😀b"}'])
})

t.test('a line is delivered from write() as soon as its newline is in', async (t) => {
  const lines: string[] = []
  const reader = new LineReader((line) => { lines.push(line) }, 100)
  reader.write(Buffer.from('a\nb'))
  t.same(lines, ['a'])
  reader.write(Buffer.from('c\r'))
  t.same(lines, ['a'])
  reader.write(Buffer.from('\nd'))
  t.same(lines, ['a', 'bc'])
  reader.end()
  t.same(lines, ['a', 'bc', 'd'])
})

t.test('random texts, cut at random, give the lines of the whole', async (t) => {
  const SEED = 20240502
  const r = prng(SEED)
  const CHARS = ['a', '{', '"', ' ', '\\', 'é', '中', '😀', '\r', '\n', '\n', '\r\n']
  const failures: string[] = []
  for (let n = 0; n < 300; n++) {
    const text = Array.from({ length: Math.floor(r() * 200) }, () => CHARS[Math.floor(r() * CHARS.length)]).join('')
    const body = Buffer.from(text)
    const max = [2, 5, 33][Math.floor(r() * 3)] // sizes 0 to max - 1
    const chunks: Buffer[] = []
    for (let i = 0; i < body.length;) {
      const k = Math.floor(r() * max)
      chunks.push(body.subarray(i, i + k))
      i += k
    }
    const got = JSON.stringify(read(chunks))
    if (got !== JSON.stringify(reference(text))) failures.push(`text ${n} (seed ${SEED}): ${JSON.stringify(text)} -> ${got}`)
  }
  t.same(failures, [])
})

t.test('maxLineBytes: a line of the limit passes, in bytes not characters; one byte more fails', async (t) => {
  const line = 'é'.repeat(8) // 16 bytes
  t.same(mismatches(Buffer.from(`${line}\n${line}`), [line, line], 16), [])
  t.same(mismatches(Buffer.from(`${line}\r\n${line}\r`), [line, line], 16), [], 'a \\r\\n after the limit is not part of the line')
  for (const text of [`${line}a\n`, `${line}a`, `a\n${line}a\nb\n`, `${line}\ra\n`]) {
    const differ = [...cuts(Buffer.from(text))].filter(([, chunks]) => {
      try {
        read(chunks, 16)
        return true
      } catch (err) {
        return (err as Error).message !== 'a watch line is longer than the limit of 16 bytes (maxLineBytes)'
      }
    }).map(([cut]) => cut)
    t.same(differ, [], `${JSON.stringify(text)}: fails, naming the limit, cut anywhere`)
  }
})

t.test('maxLineBytes: a line without end fails as it passes the limit, not at its end', async (t) => {
  const reader = new LineReader(() => {}, 10 << 10)
  const kib = Buffer.alloc(1024, 'x')
  let writes = 0
  t.throws(() => { for (;;) { reader.write(kib); writes++ } }, { message: /limit of 10240 bytes/ })
  t.equal(writes, 10, 'the write taking the line past 10 KiB throws')
  t.throws(() => reader.write(Buffer.from('\n')), { message: /limit of 10240 bytes/ }, 'and every call after it')
  t.throws(() => reader.end(), { message: /limit of 10240 bytes/ })
})

t.test('an error from onLine is not wrapped', async (t) => {
  const reader = new LineReader(() => { throw new Error('bad event') }, 100)
  t.throws(() => reader.write(Buffer.from('a\n')), { message: 'bad event' })
  t.throws(() => reader.end(), { message: 'bad event' })
})
