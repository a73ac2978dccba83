// Logs are pino JSON lines on stdout: one object per event, `msg` saying what happened, the
// level by name and the time in ISO 8601, as `kubectl logs` readers and log shippers expect.
import { type DestinationStream, pino, type Logger } from 'pino'

export type { Logger }

/** destination: stdout unless given (tests). */
export function createLogger (level: string, name = 'flatnet', destination?: DestinationStream): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination)
}
