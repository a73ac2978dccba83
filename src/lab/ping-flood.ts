// A ping flood that can run for as long as a test or benchmark needs (iputils-ping):
// stopped when its work is done, it is judged only on the echoes whose replies were
// due before the stop, so an echo still on its way at the end is not counted lost.
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import type { Namespace } from './netns.js'

export interface FloodResult {
  sent: number // echoes judged: those sent at least `waitS` before the stop
  lost: number[] // their sequence numbers that got no reply
  // The longest time between two replies: an outage as the pinger saw it, also where
  // ping, unanswered, slowed its sending (iputils does) and so lost fewer echoes.
  maxGapMs: number
}

export interface Flood { stop (): Promise<FloodResult> }

/** Pings `to` every intervalS seconds from `from`, writing ping's lines to logFile, until stop(). */
export function pingFlood (from: Namespace, to: string, logFile: string, intervalS = 0.01, waitS = 1): Flood {
  // -W: how long ping waits for each reply; past it a reply counts for nothing.
  // -D: each reply line starts with its time, [seconds.micros].
  const child = from.spawn('ping', [to.includes(':') ? '-6' : '-4', '-D', '-i', String(intervalS), '-W', String(waitS), to], logFile)
  return {
    async stop () {
      await new Promise((resolve) => setTimeout(resolve, waitS * 1000 + 100))
      child.kill('SIGINT')
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
      const out = readFileSync(logFile, 'utf8')
      const transmitted = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0)
      const replies = [...out.matchAll(/^\[(\d+\.\d+)\].*icmp_seq=(\d+) ttl=/gm)]
      const answered = new Set(replies.map((m) => Number(m[2])))
      const times = replies.map((m) => Number(m[1]) * 1000)
      let maxGapMs = 0
      for (let i = 1; i < times.length; i++) maxGapMs = Math.max(maxGapMs, times[i] - times[i - 1])
      const sent = Math.max(0, transmitted - Math.ceil(waitS / intervalS) - 1)
      const lost: number[] = []
      for (let seq = 1; seq <= sent; seq++) if (!answered.has(seq)) lost.push(seq)
      return { sent, lost, maxGapMs }
    },
  }
}
