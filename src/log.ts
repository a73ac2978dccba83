// Logs are pino JSON lines on stdout: one object per event, `msg` saying what happened, the
// level by name and the time in ISO 8601, as `kubectl logs` readers and log shippers expect.
import { type DestinationStream, pino, type Logger } from 'pino'

export type { Logger }

/** A warning or error as `flatnet status` shows it. */
export interface RecentLine { time: string, level: 'warn' | 'error' | 'fatal', msg: string, fields: Record<string, unknown> }

const RECENT = 20
const recent: RecentLine[] = []
const LEVELS: Record<number, RecentLine['level']> = { 40: 'warn', 50: 'error', 60: 'fatal' }

/** The process's last warnings and errors, oldest first. */
export function recentWarnings (): RecentLine[] {
  return [...recent]
}

/** destination: stdout unless given (tests). */
export function createLogger (level: string, name = 'flatnet', destination?: DestinationStream): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      // Kept for `flatnet status` (its "recent warnings"): what an operator looks at first.
      logMethod (args, method, levelValue) {
        const at = LEVELS[levelValue]
        if (at) {
          const [first, second] = args as unknown[]
          const fields = typeof first === 'object' && first !== null ? summarize(first as Record<string, unknown>) : {}
          const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : ''
          recent.push({ time: new Date().toISOString(), level: at, msg, fields })
          if (recent.length > RECENT) recent.shift()
        }
        method.apply(this, args as Parameters<typeof method>)
      },
    },
  }, destination)
}

/** A line's fields, each cut to what a status screen shows (an error object as its message). */
function summarize (o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) {
    const value = v instanceof Error ? v.message : v
    const text = typeof value === 'string' ? value : JSON.stringify(value)
    out[k] = text !== undefined && text.length > 200 ? `${text.slice(0, 200)}...` : value
  }
  return out
}
