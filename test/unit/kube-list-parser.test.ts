// The streaming List parser against JSON.parse of the whole body: every body cut in two at
// every byte and fed a byte at a time, random bodies (seeded, so a failure replays) cut at
// random; then every kind of bad body, whose error must not depend on how it was cut.
import t from 'tap'
import { ListParseError, ListParser, type ListMeta } from '../../src/kube/list-parser.js'
import { prng } from '../lib/prng.js'

interface Parsed { items: unknown[], meta: ListMeta }

function parse (chunks: Buffer[], maxItemBytes?: number): Parsed {
  const items: unknown[] = []
  const parser = new ListParser((item) => { items.push(item) }, { maxItemBytes })
  for (const chunk of chunks) parser.write(chunk)
  return { items, meta: parser.end() }
}

function reference (body: Buffer): Parsed {
  const doc = JSON.parse(body.toString('utf8'))
  const m = doc.metadata ?? {}
  const meta: ListMeta = {}
  if (m.resourceVersion != null) meta.resourceVersion = m.resourceVersion
  if (m.continue != null) meta.continue = m.continue
  if (m.remainingItemCount != null) meta.remainingItemCount = m.remainingItemCount
  // Items come without metadata.managedFields: the daemon never reads them.
  const items = (doc.items ?? []) as Array<{ metadata?: { managedFields?: unknown } }>
  for (const item of items) delete item?.metadata?.managedFields
  return { items, meta }
}

/** The body cut in two at every byte (or at `sample` evenly spread bytes), and in 1-byte chunks, with and without empty ones between. */
function * cuts (body: Buffer, sample?: number): Generator<[string, Buffer[]]> {
  const step = sample ? Math.max(1, Math.floor(body.length / sample)) : 1
  for (let k = 0; k <= body.length; k += step) yield [`cut at ${k}`, [body.subarray(0, k), body.subarray(k)]]
  const bytes = Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1))
  yield ['1-byte chunks', bytes]
  yield ['1-byte chunks and empty ones', bytes.flatMap((b) => [b, Buffer.alloc(0)])]
}

/** The cuts whose result differs from the reference (compared as JSON: every value here came from JSON). */
function mismatches (body: Buffer, expected: Parsed, sample?: number): string[] {
  const want = JSON.stringify(expected)
  const bad: string[] = []
  for (const [name, chunks] of cuts(body, sample)) {
    let got: string
    try {
      got = JSON.stringify(parse(chunks))
    } catch (err) {
      got = String(err)
    }
    if (got !== want) bad.push(`${name}: ${got.slice(0, 200)}`)
  }
  return bad
}

const POD_UID = '8f14e45f-ceea-467f-a8f5-8e3c4f1a2b3c'

function pod (name: string, ip: string): unknown {
  const labels = { 'k8s-app': 'kube-dns', 'pod-template-hash': '5d78c9869d' }
  const container = {
    name: 'coredns',
    image: 'registry.k8s.io/coredns/coredns:v1.10.1',
    args: ['-conf', '/etc/coredns/Corefile'],
    ports: [{ containerPort: 53, name: 'dns', protocol: 'UDP' }, { containerPort: 53, name: 'dns-tcp', protocol: 'TCP' }],
    resources: { limits: { memory: '170Mi' }, requests: { cpu: '100m', memory: '70Mi' } },
    livenessProbe: { httpGet: { path: '/health', port: 8080, scheme: 'HTTP' }, initialDelaySeconds: 60, failureThreshold: 5 },
    securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] }, readOnlyRootFilesystem: true },
  }
  return {
    metadata: {
      name,
      generateName: 'coredns-5d78c9869d-',
      namespace: 'kube-system',
      uid: POD_UID,
      resourceVersion: '104857',
      creationTimestamp: '2024-05-01T10:00:00Z',
      labels,
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [container] } }) + '\n',
        'example.com/note': 'quotes " and \\ and {[,]}: and é, 中, 😀',
      },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'coredns-5d78c9869d', uid: POD_UID, controller: true, blockOwnerDeletion: true }],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2024-05-01T10:00:00Z',
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:generateName': {}, 'f:labels': { '.': {}, 'f:k8s-app': {}, 'f:pod-template-hash': {} }, 'f:ownerReferences': { '.': {}, [`k:{"uid":"${POD_UID}"}`]: {} } },
            'f:spec': { 'f:containers': { 'k:{"name":"coredns"}': { '.': {}, 'f:args': {}, 'f:ports': { '.': {}, 'k:{"containerPort":53,"protocol":"UDP"}': { '.': {}, 'f:containerPort': {}, 'f:name': {} } } } } },
          },
        },
        {
          manager: 'kubelet',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2024-05-01T10:00:05Z',
          fieldsType: 'FieldsV1',
          subresource: 'status',
          fieldsV1: { 'f:status': { 'f:conditions': { 'k:{"type":"Ready"}': { '.': {}, 'f:status': {} } }, 'f:podIPs': { '.': {}, [`k:{"ip":"${ip}"}`]: { '.': {}, 'f:ip': {} } } } },
        },
      ],
    },
    spec: {
      containers: [container],
      nodeName: 'node-1',
      priority: 2000000000,
      priorityClassName: 'system-cluster-critical',
      tolerations: [{ key: 'CriticalAddonsOnly', operator: 'Exists' }, { effect: 'NoExecute', key: 'node.kubernetes.io/not-ready', operator: 'Exists', tolerationSeconds: 300 }],
    },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2024-05-01T10:00:05Z' }],
      hostIP: '192.168.1.10',
      podIP: ip,
      podIPs: [{ ip }, { ip: 'fd00:10:244:1::5' }],
      containerStatuses: [{ name: 'coredns', ready: true, restartCount: 0, state: { running: { startedAt: '2024-05-01T10:00:04Z' } } }],
      qosClass: 'Burstable',
    },
  }
}

const CONTINUE = 'eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTA0OTAwLCJzdGFydCI6Imt1YmUtc3lzdGVtL2NvcmVkbnMifQ'
const PODS = { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '104900', continue: CONTINUE, remainingItemCount: 2 }, items: [pod('coredns-5d78c9869d-x7k2p', '10.244.1.5'), pod('coredns-5d78c9869d-q9z4m', '10.244.2.7')] }

const CASES: Array<[string, string]> = [
  ['metadata before items', '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123","continue":"abc","remainingItemCount":5},"items":[{"a":1},{"b":[1,2,{"c":null}]}]}'],
  ['metadata after items', '{"kind":"PodList","items":[{"a":1},{"b":2}],"apiVersion":"v1","metadata":{"resourceVersion":"124"}}'],
  ['null items', '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":null}'],
  ['empty items', '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":""},"items":[]}'],
  ['empty items with spaces, no metadata', '{"items":[ ]}'],
  ['an empty object', '{}'],
  ['null metadata, zero remaining', '{"metadata":null,"items":[{}],"x":{"metadata":{"remainingItemCount":0}}}'],
  ['last metadata wins', '{"metadata":{"resourceVersion":"1","continue":"c"},"items":[{}],"metadata":{"resourceVersion":"2"}}'],
  ['strings with brackets, commas, colons and escaped quotes', String.raw`{"kind":"Pod\"List]}","items":[{"a":"{[,]}:","b":"a\"b","c":"\\","d":"\\\"","k}e]y,":"ends with a backslash\\"},{"e":["]","}","\"]\"",""]}],"metadata":{"continue":"{\"rv\":1}"}}`],
  ['every escape', String.raw`{"items":[{"s":"\" \\ \/ \b \f \n \r \t \u0000 \u001f \u00e9 \u4e2d \ud83d\ude00 \uD83D\uDE00"}],"metadata":{"resourceVersion":"\u0031\u0032"}}`],
  ['unicode: 2, 3 and 4-byte characters, in keys and values', '{"kind":"Liste é","items":[{"ключ":"значение","中文":"字","emoji 😀":"🚀🎉","mixed":"a😀b\\u00e9c"}],"metadata":{"continue":"😀"}}'],
  ['escaped top-level keys', String.raw`{"\u006detadata":{"resourceVersion":"7"},"\u0069tems":[{"a":1}]}`],
  ['nested arrays inside items', '{"items":[{"a":[[[]],[[1,[2]]],{"b":[{}]}],"c":[[[[[[]]]]]]},{"d":[]}]}'],
  ['scalars last in items and skipped values', '{"n":-1.5e+3,"t":true,"f":false,"z":null,"items":[{"a":1},{"b":true},{"c":null},{"d":0.5E-2}],"m":12}'],
  ['skipped values of every kind, holding items and metadata keys', '{"kind":"PodList","x":{"items":[1,2],"metadata":"no"},"y":[{"}":"]"},"items"],"items":[{"a":1}],"z":"items"}'],
  ['whitespace everywhere', ' \r\n\t{ "kind" : "PodList" ,\n  "metadata" :\t{ "resourceVersion" : "5" } ,\r\n "items" : [ { "a" : [ 1 , 2 ] } ,\n\t{ } ] \n}\n \t'],
  ['a realistic pod list with managedFields', JSON.stringify(PODS)],
  // managedFields first, last and alone in metadata; the same bytes escaped inside a string stay.
  ['managedFields first, last, alone', '{"items":[{"metadata":{"managedFields":[{"a":"]"}],"name":"a"}},{"metadata":{"name":"b","managedFields":[[],{"f:x":{}}]}},{"metadata":{"managedFields":[]},"spec":{}}]}'],
  ['managedFields text inside strings', String.raw`{"items":[{"metadata":{"name":"\"managedFields\":[","annotations":{"x":"\"managedFields\":[1]"},"managedFields":[{"m":"\"]"}]}}]}`],
  ['a realistic pod list, indented', JSON.stringify(PODS, null, 2)],
]

t.test('each case, cut anywhere, gives what JSON.parse of the whole gives', async (t) => {
  for (const [name, text] of CASES) {
    const body = Buffer.from(text)
    const expected = reference(body)
    t.same(parse([body]), expected, `${name}: whole`)
    t.same(mismatches(body, expected), [], `${name}: every cut and 1-byte chunks (${body.length} bytes)`)
  }
  t.equal(parse([Buffer.from(JSON.stringify(PODS))]).items.length, 2)
  t.same(parse([Buffer.from(CASES[0][1])]).meta, { resourceVersion: '123', continue: 'abc', remainingItemCount: 5 })
})

t.test('an item is handed over, from write(), as soon as its last byte is in', async (t) => {
  const seen: unknown[] = []
  const parser = new ListParser((item) => { seen.push(item) })
  parser.write(Buffer.from('{"items":[{"a":1},{"b":"}'))
  t.same(seen, [{ a: 1 }])
  parser.write(Buffer.from('"'))
  t.same(seen, [{ a: 1 }], 'not at a brace inside a string')
  parser.write(Buffer.from('}'))
  t.same(seen, [{ a: 1 }, { b: '}' }])
  parser.write(Buffer.from(']}'))
  t.same(parser.end(), {})
})

t.test('items twice: both are streamed', async (t) => {
  t.same(parse([Buffer.from('{"items":[{"a":1}],"items":[{"b":2}]}')]).items, [{ a: 1 }, { b: 2 }])
})

// --- random bodies ---------------------------------------------------------------

// Written by hand rather than by JSON.stringify, for whitespace between any tokens and
// escapes (\uXXXX, surrogate pairs, \/) where JSON.stringify writes the character.
function generator (seed: number) {
  const r = prng(seed)
  const int = (n: number): number => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]
  const chance = (p: number): boolean => r() < p
  const CHARS = ['a', 'b', 'Z', '0', ' ', '{', '}', '[', ']', ',', ':', '"', '\\', '/', '\n', '\t', '\u0001', 'é', '中', '😀', '\u2028', 'u']
  const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '/': '\\/', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
  const ws = (): string => chance(0.8) ? '' : pick([' ', '\n', '\t', '\r\n', '  \n  '])
  const u = (code: number): string => {
    const hex = code.toString(16).padStart(4, '0')
    return '\\u' + (chance(0.5) ? hex : hex.toUpperCase())
  }
  const str = (s: string): string => {
    let out = '"'
    for (const ch of s) {
      const code = ch.codePointAt(0) as number
      if (ch === '"' || ch === '\\' || code < 0x20 || chance(0.1)) {
        if (SHORT[ch] && chance(0.5)) out += SHORT[ch]
        else if (code > 0xffff) out += u(0xd800 + ((code - 0x10000) >> 10)) + u(0xdc00 + ((code - 0x10000) & 0x3ff))
        else out += u(code)
      } else {
        out += ch
      }
    }
    return out + '"'
  }
  const text = (): string => Array.from({ length: int(12) }, () => pick(CHARS)).join('')
  const number = (): string => (chance(0.3) ? '-' : '') + (chance(0.2) ? '0' : String(1 + int(100000))) +
    (chance(0.3) ? `.${int(1000)}` : '') + (chance(0.2) ? `${pick(['e', 'E'])}${pick(['', '+', '-'])}${int(30)}` : '')
  const value = (depth: number): string => {
    switch (int(depth > 3 ? 4 : 7)) {
      case 0: case 1: return str(text())
      case 2: return number()
      case 3: return pick(['true', 'false', 'null'])
      case 4: case 5: return object(depth + 1)
      default: return `[${ws()}${Array.from({ length: int(4) }, () => value(depth + 1)).join(`${ws()},${ws()}`)}${ws()}]`
    }
  }
  const members = (entries: Array<[string, string]>): string =>
    `{${ws()}${entries.map(([k, v]) => `${str(k)}${ws()}:${ws()}${v}`).join(`${ws()},${ws()}`)}${ws()}}`
  const object = (depth: number): string => members(Array.from({ length: int(5) }, () => [text(), value(depth)]))
  const metadata = (): string => {
    const entries: Array<[string, string]> = []
    if (chance(0.8)) entries.push(['resourceVersion', str(String(int(1e9)))])
    if (chance(0.5)) entries.push(['continue', str(text())])
    if (chance(0.3)) entries.push(['remainingItemCount', String(int(1000))])
    if (chance(0.3)) entries.push(['selfLink', str(text())])
    return chance(0.05) ? 'null' : members(entries.sort(() => r() - 0.5))
  }
  const items = (): string => {
    if (chance(0.1)) return 'null'
    const list = Array.from({ length: int(8) }, () => chance(0.05) ? JSON.stringify(pod(text(), '10.0.0.1')) : object(1))
    return `[${ws()}${list.join(`${ws()},${ws()}`)}${ws()}]`
  }
  return (): string => {
    const entries: Array<[string, string]> = [['kind', str('PodList')], ['apiVersion', str('v1')], ['metadata', metadata()], ['items', items()]]
    for (let n = int(3); n > 0; n--) entries.push([`x${text()}`, value(1)])
    return ws() + members(entries.sort(() => r() - 0.5)) + ws()
  }
}

/** Chunk sizes from a byte or two up to a few hundred, changing from body to body. */
function randomChunks (body: Buffer, r: () => number): Buffer[] {
  const max = [2, 8, 64, 512][Math.floor(r() * 4)]
  const chunks: Buffer[] = []
  for (let i = 0; i < body.length;) {
    const n = Math.floor(r() * max) // 0 too: an empty chunk is allowed
    chunks.push(body.subarray(i, i + n))
    i += n
  }
  return chunks
}

t.test('random bodies, cut at random, give what JSON.parse of the whole gives', async (t) => {
  const SEED = 20240501
  const next = generator(SEED)
  const r = prng(SEED + 1)
  const failures: string[] = []
  let items = 0
  for (let n = 0; n < 400; n++) {
    const body = Buffer.from(next())
    const expected = reference(body)
    items += expected.items.length
    const want = JSON.stringify(expected)
    for (const chunks of [[body], randomChunks(body, r), randomChunks(body, r)]) {
      let got: string
      try {
        got = JSON.stringify(parse(chunks))
      } catch (err) {
        got = String(err)
      }
      if (got !== want) failures.push(`body ${n} (seed ${SEED}), ${chunks.length} chunks: ${body.toString().slice(0, 300)} -> ${got.slice(0, 300)}`)
    }
  }
  t.same(failures, [])
  t.ok(items > 1000, `${items} items`)
})

// --- bad bodies -------------------------------------------------------------------

function failure (chunks: Buffer[], maxItemBytes?: number): Error | undefined {
  try {
    parse(chunks, maxItemBytes)
  } catch (err) {
    return err as Error
  }
  return undefined
}

const BAD: Array<[string, string, RegExp]> = [
  ['an empty body', '', /^the body is empty$/],
  ['only whitespace', ' \n ', /^the body is only whitespace \(3 bytes\)$/],
  ['an array at top level', '[]', /^the body is not a JSON object: '\[' at byte 0$/],
  ['a string at top level', ' "PodList"', /^the body is not a JSON object: '"' at byte 1$/],
  ['a number at top level', '42', /^the body is not a JSON object: '4' at byte 0$/],
  ['null at top level', 'null', /^the body is not a JSON object: 'n' at byte 0$/],
  ['a byte order mark', '\ufeff{}', /^the body is not a JSON object: byte 0xef at byte 0$/],
  ['trailing garbage', '{"items":[]} x', /^trailing bytes after the list: 'x' at byte 13$/],
  ['a second document', '{}{}', /^trailing bytes after the list: '\{' at byte 2$/],
  ['an unterminated string', '{"kind":"PodLi', /^the body ended at byte 14 inside a string in the value of "kind", which began at byte 8$/],
  ['an unterminated string ending in an escape', '{"items":[{"a":"b\\', /^the body ended at byte 18 inside a string in item 0, which began at byte 10$/],
  ['an unterminated key', '{"ki', /^the body ended at byte 4 inside a string in a key, which began at byte 1$/],
  ['an unfinished item', '{"items":[{"a":[1', /^the body ended at byte 17 inside item 0, which began at byte 10$/],
  ['an unfinished items array', '{"items":[{"a":1}', /^the body ended at byte 17, expecting ',' or '\]'$/],
  ['an unclosed list', '{"items":[]', /^the body ended at byte 11, expecting ',' or '\}'$/],
  ['a list cut after a colon', '{"items":', /^the body ended at byte 9, expecting a value$/],
  ['a list cut inside a number', '{"n":12', /^the body ended at byte 7 inside the value of "n", which began at byte 5$/],
  ['items an object', '{"items":{}}', /^items is not an array: '\{' at byte 9$/],
  ['items a string', '{"items":"[]"}', /^items is not an array: '"' at byte 9$/],
  ['items a number', '{"items":5}', /^items is not an array: '5' at byte 9$/],
  ['items true', '{"items":true}', /^items is not an array: 't' at byte 9$/],
  ['items misspelt null', '{"items":nul}', /^items at byte 9 is not valid JSON: /],
  ['an item a number', '{"items":[1]}', /^item 0 is not an object: '1' at byte 10$/],
  ['an item an array', '{"items":[{},[]]}', /^item 1 is not an object: '\[' at byte 13$/],
  ['an item null', '{"items":[{}, null]}', /^item 1 is not an object: 'n' at byte 14$/],
  ['an item a string', '{"items":["{}"]}', /^item 0 is not an object: '"' at byte 10$/],
  ['a trailing comma in items', '{"items":[{},]}', /^expected an item, got '\]' at byte 13$/],
  ['a leading comma in items', '{"items":[,{}]}', /^item 0 is not an object: ',' at byte 10$/],
  ['a trailing comma in the list', '{"kind":"x",}', /^expected a key, got '\}' at byte 12$/],
  ['a missing colon', '{"kind" "x"}', /^expected ':', got '"' at byte 8$/],
  ['a missing comma', '{"kind":"x" "items":[]}', /^expected ',' or '\}', got '"' at byte 12$/],
  ['a missing comma between items', '{"items":[{} {}]}', /^expected ',' or '\]', got '\{' at byte 13$/],
  ['an unquoted key', '{kind:"x"}', /^expected a key or '\}', got 'k' at byte 1$/],
  ['a missing value', '{"kind":,"items":[]}', /^expected a value, got ',' at byte 8$/],
  ['a bad escape in a key', '{"\\x":1}', /^a key at byte 1 is not valid JSON: /],
  ['a malformed item', '{"items":[{"a":}]}', /^item 0 at byte 10 is not valid JSON: /],
  ['mismatched brackets in an item', '{"items":[{},{"a":[1}]}', /^item 1 at byte 13 is not valid JSON: /],
  ['a raw control character in an item', '{"items":[{"a":"\u0001"}]}', /^item 0 at byte 10 is not valid JSON: /],
  ['a malformed skipped scalar', '{"kind":tru,"items":[]}', /^the value of "kind" at byte 8 is not valid JSON: /],
  ['a malformed skipped object', '{"x":{"a" 1},"items":[]}', /^the value of "x" at byte 5 is not valid JSON: /],
  ['malformed metadata', '{"metadata":{"resourceVersion":},"items":[]}', /^metadata at byte 12 is not valid JSON: /],
  ['metadata an array', '{"metadata":[]}', /^metadata is not an object: '\[' at byte 12$/],
  ['metadata a string', '{"metadata":"rv"}', /^metadata is not an object: '"' at byte 12$/],
  ['a number resourceVersion', '{"metadata":{"resourceVersion":123}}', /^metadata\.resourceVersion is not a string: 123$/],
  ['an object continue', '{"metadata":{"continue":{}}}', /^metadata\.continue is not a string: \{\}$/],
  ['a string remainingItemCount', '{"metadata":{"remainingItemCount":"5"}}', /^metadata\.remainingItemCount is not a count: "5"$/],
  ['a negative remainingItemCount', '{"metadata":{"remainingItemCount":-1}}', /^metadata\.remainingItemCount is not a count: -1$/],
  ['metadata over 64 KiB', `{"metadata":{"resourceVersion":"${'9'.repeat(70000)}"}}`, /^metadata at byte 12 is over 65536 bytes$/],
  ['a key over 4 KiB', `{"${'k'.repeat(5000)}":1}`, /^a key at byte 1 is over 4096 bytes$/],
]

t.test('bad bodies fail with what and where, however they are cut', async (t) => {
  for (const [name, text, message] of BAD) {
    const body = Buffer.from(text)
    const whole = failure([body])
    t.ok(whole instanceof ListParseError, `${name}: a ListParseError`)
    t.match(whole?.message, message, `${name}: ${whole?.message}`)
    const differ: string[] = []
    for (const [cut, chunks] of cuts(body, body.length > 1000 ? 20 : undefined)) {
      const err = failure(chunks)
      if (err?.message !== whole?.message) differ.push(`${cut}: ${err?.message}`)
    }
    t.same(differ, [], `${name}: the same error, cut anywhere`)
  }
})

t.test('after an error every call throws it again; an error from onItem is not wrapped', async (t) => {
  const parser = new ListParser(() => {})
  t.throws(() => parser.write(Buffer.from('[')), { name: 'ListParseError', message: /not a JSON object/ })
  t.throws(() => parser.write(Buffer.from('{}')), { message: /not a JSON object/ })
  t.throws(() => parser.end(), { message: /not a JSON object/ })

  const refusing = new ListParser(() => { throw new Error('no room') })
  t.throws(() => refusing.write(Buffer.from('{"items":[{}')), { message: 'no room' })
  t.throws(() => refusing.end(), { message: 'no room' })
})

t.test('maxItemBytes: an item at the bound passes, one byte more fails', async (t) => {
  const item = '{"name":"a","data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
  const body = Buffer.from(`{"items":[{},${item},{}]}`)
  t.equal(parse([body], item.length).items.length, 3)
  const err = failure([body], item.length - 1)
  t.ok(err instanceof ListParseError)
  t.equal(err?.message, `item 1 at byte 13 is over ${item.length - 1} bytes`)
  const differ = [...cuts(body)].filter(([, chunks]) => failure(chunks, item.length - 1)?.message !== err?.message).map(([cut]) => cut)
  t.same(differ, [], 'the same error, cut anywhere')
  t.match(failure([Buffer.from(`{"kind":"${'x'.repeat(100)}"}`)], 100)?.message, /^the value of "kind" at byte 8 is over 100 bytes$/,
    'other values have the same bound')
})

t.test('maxItemBytes: an endless item fails as soon as it passes the bound, not at its end', async (t) => {
  const parser = new ListParser(() => {}, { maxItemBytes: 10 << 10 })
  parser.write(Buffer.from('{"items":[{"a":"')) // 6 bytes of the item
  const kib = Buffer.alloc(1024, 'x')
  let writes = 0
  t.throws(() => { for (;;) { parser.write(kib); writes++ } }, { message: 'item 0 at byte 10 is over 10240 bytes' })
  t.equal(writes, 9, 'the write taking the item past 10 KiB throws')
})

t.test('maxItemBytes: 8 MiB unless told', async (t) => {
  const parser = new ListParser(() => {})
  parser.write(Buffer.from('{"items":[{"a":"')) // 6 bytes of the item
  const chunk = Buffer.alloc(64 << 10, 'x')
  let written = 6
  t.throws(() => { for (;;) { parser.write(chunk); written += chunk.length } }, { message: `item 0 at byte 10 is over ${8 << 20} bytes` })
  t.equal(written, 6 + (8 << 20) - chunk.length, 'failed on the chunk that passed 8 MiB')
})
