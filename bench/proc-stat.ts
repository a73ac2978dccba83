// Machine-wide counters from /proc/stat (proc(5)): not per namespace, so they count
// every process of the machine, which is why the bench reads them around one test.
import { readFileSync } from 'node:fs'
import { CLK_TCK } from './process-usage.js'

/** Context switches on all CPUs since boot (the "ctxt" line). */
export function contextSwitches (): number {
  const m = /^ctxt (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))
  if (!m) throw new Error('/proc/stat has no ctxt line')
  return Number(m[1])
}

/** What `work` resolves to, and the machine's context switches while it ran. */
export async function countingSwitches<T> (work: () => Promise<T>): Promise<[T, number]> {
  const before = contextSwitches()
  const value = await work()
  return [value, contextSwitches() - before]
}

/**
 * CPU seconds all CPUs spent working since boot, from the "cpu" line (in clock ticks):
 * user, nice, system, irq and softirq, so a data plane's softirq work counts wherever it
 * ran; idle, iowait and steal (the hypervisor's) do not. guest time is inside user.
 */
export function busyCpuSeconds (stat = readFileSync('/proc/stat', 'utf8')): number {
  const m = /^cpu +(\d+) (\d+) (\d+) \d+ \d+ (\d+) (\d+)/m.exec(stat)
  if (!m) throw new Error('/proc/stat has no cpu line')
  const [user, nice, system, irq, softirq] = m.slice(1).map(Number)
  return (user + nice + system + irq + softirq) / CLK_TCK
}

/** What `work` resolves to, and the busy CPU seconds of the whole machine while it ran. */
export async function countingBusyCpu<T> (work: () => Promise<T>): Promise<[T, number]> {
  const before = busyCpuSeconds()
  const value = await work()
  return [value, busyCpuSeconds() - before]
}
