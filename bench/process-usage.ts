// CPU time and memory of the userspace data plane processes (flatnet daemons,
// openvpn), read from /proc: utime+stime cover all of a process's threads.
import { readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

/** The kernel's clock ticks per second, the unit of /proc's CPU times. */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** User plus system CPU seconds the process has used so far. */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may contain spaces (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15; `fields` starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

/** CPU seconds of pid and of the children it has waited for (cutime, cstime: fields 16 and 17), e.g. the daemon's nft runs. */
export function cpuSecondsWithChildren (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return cpuSeconds(pid) + (Number(fields[13]) + Number(fields[14])) / CLK_TCK
}

function statusKB (pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
}

/** Resident memory now, in MiB. */
export const rssMB = (pid: number): number => statusKB(pid, 'VmRSS') / 1024

/** The kernel's high-water mark of resident memory, in MiB. */
export const peakRssMB = (pid: number): number => statusKB(pid, 'VmHWM') / 1024

/** Resets the high-water mark to the current RSS (clear_refs "5", proc(5)), so peakRssMB reads the peak since. */
export function resetPeakRss (pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5')
}

/** Samples resident memory of some processes until stopped; the peak is per process. */
export class RssSampler {
  private readonly peakKB = new Map<number, number>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly pids: number[], intervalMs = 100) {
    this.timer = setInterval(() => this.sample(), intervalMs)
    this.sample()
  }

  private sample (key: 'VmRSS' | 'VmHWM' = 'VmRSS'): void {
    for (const pid of this.pids) {
      try {
        this.peakKB.set(pid, Math.max(this.peakKB.get(pid) ?? 0, statusKB(pid, key)))
      } catch {
        // The process has exited; its last sample stands.
      }
    }
  }

  /** Stops sampling; returns the largest per-process peak in MB. */
  stop (): number {
    clearInterval(this.timer)
    // The kernel's high-water mark catches peaks between samples.
    this.sample('VmHWM')
    return Math.max(0, ...this.peakKB.values()) / 1024
  }
}
