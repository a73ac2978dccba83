// Machine-wide counters from /proc/stat (proc(5)): not per namespace, so they count
// every process of the machine, which is why the bench reads them around one test.
import { readFileSync } from 'node:fs'

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
