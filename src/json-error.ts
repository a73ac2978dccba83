// Where a JSON text breaks, as FILE:LINE:COLUMN the way compilers and editors take it.
// V8's JSON.parse says "at position N" for most errors but not for an unexpected
// token, where it quotes the text instead; there the position is found by walking
// RFC 8259's grammar, as V8 does, up to the first character it refuses.

export interface JsonErrorAt { line: number, column: number, message: string }

/** The line and column (both from 1) of err, a SyntaxError from JSON.parse(text), and its message without position or quoted text. */
export function jsonErrorAt (text: string, err: Error): JsonErrorAt {
  const m = / at position (\d+)/.exec(err.message)
  const offset = m ? Number(m[1]) : syntaxErrorOffset(text) ?? text.length
  const message = err.message.replace(/ (?:in JSON )?at position \d+.*$/s, '').replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
  const before = text.slice(0, offset)
  const lineStart = before.lastIndexOf('\n') + 1
  return { line: before.split('\n').length, column: offset - lineStart + 1, message }
}

const STRING = /"(?:[^"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const LITERALS: Record<string, string> = { t: 'true', f: 'false', n: 'null' }
const SPACE = /[ \t\n\r]*/y

/** The offset of the first character RFC 8259's grammar refuses (text.length: the text ends too soon); undefined when valid. */
export function syntaxErrorOffset (text: string): number | undefined {
  let i = 0
  const take = (re: RegExp): boolean => {
    re.lastIndex = i
    if (!re.test(text)) return false
    i = re.lastIndex
    return true
  }
  const space = (): void => { take(SPACE) }
  const need = (ok: boolean): void => { if (!ok) throw new JsonBreak(i) }
  const string = (): void => {
    const start = i
    need(take(STRING))
    for (let k = start; k < i; k++) if (text.charCodeAt(k) < 0x20) throw new JsonBreak(k) // control characters must be escaped
  }
  const value = (): void => {
    space()
    const open = text[i]
    if (open === '"') return string()
    const literal = LITERALS[open]
    if (literal !== undefined) { // character by character: "tru}" breaks at the "}"
      for (const c of literal) { need(text[i] === c); i++ }
      return
    }
    if (open !== '{' && open !== '[') return need(take(NUMBER))
    const close = open === '{' ? '}' : ']'
    i++
    space()
    if (text[i] === close) { i++; return }
    for (;;) {
      if (open === '{') {
        space()
        string()
        space()
        need(text[i] === ':')
        i++
      }
      value()
      space()
      need(text[i] === ',' || text[i] === close)
      if (text[i++] === close) return
    }
  }
  try {
    value()
    space()
    need(i === text.length)
    return undefined
  } catch (err) {
    if (err instanceof JsonBreak) return err.offset
    throw err
  }
}

class JsonBreak {
  constructor (readonly offset: number) {}
}
