// How long the daemon's event loop was held, per minute: what a health probe or the
// control socket would have waited. Beside it the longest garbage-collection pause, as
// V8 reports it, since a collector's pause is a stall that no code of the daemon's shows
// in a profile: the two together say whether a stall was a task or the collector.
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

export interface LoopStalls {
  maxMs: number // since the minute began
  lastMinuteMaxMs: number
  lastMinuteP99Ms: number
  gcMaxMs: number // the longest collector pause since the minute began
  lastMinuteGcMaxMs: number
}

export function watchLoopStalls (): { stalls: () => LoopStalls, stop: () => void } {
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let gcMax = 0
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration)
  })
  gc.observe({ entryTypes: ['gc'] })
  let last = { maxMs: 0, p99Ms: 0, gcMaxMs: 0 }
  const minute = setInterval(() => {
    last = { maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, gcMaxMs: gcMax }
    delay.reset()
    gcMax = 0
  }, 60_000)
  minute.unref()
  return {
    stalls: () => ({ maxMs: delay.max / 1e6, lastMinuteMaxMs: last.maxMs, lastMinuteP99Ms: last.p99Ms, gcMaxMs: gcMax, lastMinuteGcMaxMs: last.gcMaxMs }),
    stop: () => { clearInterval(minute); delay.disable(); gc.disconnect() },
  }
}
