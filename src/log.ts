// Logs are pino JSON lines on stdout: one object per event, `msg` saying what happened.
import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger (level: string, name = 'flatnet'): Logger {
  return pino({ name, level, base: { pid: process.pid } })
}
