// A JSON syntax error's line and column: from V8's "at position N" where it says one, else
// from walking the grammar, which must stop where V8 did (the token its message names).
import t from 'tap'
import { jsonErrorAt, syntaxErrorOffset } from '../../src/json-error.js'

const at = (text: string): ReturnType<typeof jsonErrorAt> => {
  try {
    JSON.parse(text)
  } catch (err) {
    return jsonErrorAt(text, err as Error)
  }
  throw new Error(`${text} parsed`)
}

t.test('line and column, the message without the position or the quoted text', async (t) => {
  const cases: Array<[string, number, number, string]> = [
    ['{\n  "a": 1,\n  "b": }', 3, 8, 'Unexpected token \'}\''],
    ['{\n"a": tru}', 2, 9, 'Unexpected token \'}\''],
    ['{"logLevel": verbose}', 1, 14, 'Unexpected token \'v\''],
    [`{"${'a'.repeat(40)}": 1,\n "b": verbose, "${'c'.repeat(40)}": 2}`, 2, 7, 'Unexpected token \'v\''],
    ['[1,]', 1, 4, 'Unexpected token \']\''],
    ['{"a":1,}', 1, 8, 'Expected double-quoted property name'],
    ['{"a" 1}', 1, 6, 'Expected \':\' after property name'],
    ['[1,2] x', 1, 7, 'Unexpected non-whitespace character after JSON'],
    ['{"a": tru', 1, 10, 'Unexpected end of JSON input'],
    ['', 1, 1, 'Unexpected end of JSON input'],
  ]
  for (const [text, line, column, message] of cases) t.same(at(text), { line, column, message }, JSON.stringify(text))
})

t.test('the walk stops where V8 says it stopped', async (t) => {
  // Errors V8 places itself: the grammar walk must agree on the token-level ones.
  for (const text of ['{"a":"x\ny"}', '{"a":1,}', '{"a" 1}', '{"a":1', '[1,2] x', '{"a": 01}', '{"a": [1, 2}', '{"a":1 "b":2}']) {
    let v8: number | undefined
    try { JSON.parse(text) } catch (err) { v8 = Number(/at position (\d+)/.exec((err as Error).message)?.[1]) }
    t.equal(syntaxErrorOffset(text), v8, JSON.stringify(text))
  }
})

t.test('valid JSON walks to the end', async (t) => {
  const values = [{}, [], { a: [1, -2.5e3, 'x"\\\n\u0001é', true, false, null], b: { c: {} } }, 'text', 0, -0.5, [[[]]]]
  for (const v of values) {
    t.equal(syntaxErrorOffset(JSON.stringify(v)), undefined, JSON.stringify(v))
    t.equal(syntaxErrorOffset(` \n${JSON.stringify(v, null, 2)}\n`), undefined, 'indented')
  }
})
