// `npm run bench -- --profile`: where the machine's CPU time goes while a data plane
// carries 4 TCP streams, from a system-wide perf sample (`perf record -a`), sorted
// into a few kinds of work and put per Gbit carried, so the modes compare by cost:
// a userspace data plane copies every byte through the kernel four more times than
// kernel VXLAN does, and this is where that shows.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Samples per second per CPU: ~2,000 a second on two CPUs, a few percent of one. */
const FREQUENCY = 999

export const CATEGORIES = [
  // The kernel moving bytes between user memory and packets (read, write, send,
  // receive), with the hardened-usercopy checks around each copy.
  { key: 'copies', label: 'kernel copies' },
  // Any checksum loop: the kernel's, and flatnet's own copy-and-checksum.
  { key: 'checksums', label: 'checksums' },
  // The data plane's own code: flatnet's workers, openvpn.
  { key: 'dataPlane', label: 'data plane userspace' },
  // Everything else in the kernel: the network stack, syscalls, the scheduler.
  { key: 'kernel', label: 'kernel, the rest' },
  // The load generators' and the control planes' userspace.
  { key: 'otherUser', label: 'other userspace' },
] as const
export type Category = typeof CATEGORIES[number]['key']

export interface PerfLine {
  percent: number
  cpu: number
  comm: string
  dso: string
  kernel: boolean
  symbol: string
}

export interface Profile {
  seconds: number
  samples: number
  cpus: number
  gbps: number // what the profiled test carried
  idlePct: number // of all CPUs' time
  /** Of each CPU's own time, by CPU number: where the spare capacity is. */
  idlePctByCpu: number[]
  /** Of all CPUs' time, per category. */
  sharePct: Record<Category, number>
  /** CPU seconds per Gbit carried, per category, and busy in all. */
  secPerGbit: Record<Category | 'busy', number>
  top: PerfLine[] // the heaviest symbols, for a closer look in the JSON
}

const IDLE = /(^|_)(halt|idle|mwait)|^poll_idle$|cpuidle/
const COPIES = /^(_copy_(to|from)_(iter|user)\w*|copy_user_\w+|rep_movs\w*|copy_page_(to|from)_iter\w*|copy_iovec_from_user|simple_copy_to_iter|__skb_datagram_iter|skb_copy_datagram_iter|skb_copy_bits|__check_object_size|check_heap_object|__virt_addr_valid|(__)?memcpy\w*)$/
const CHECKSUMS = /csum|checksum/i
const DATA_PLANE = /^(flatnet-|openvpn)/

const REPORT_ARGS = ['--no-children', '--sort', 'cpu,comm,dso,sym', '-t', '|', '--stdio', '-q']

/** Parses `perf report` run with REPORT_ARGS: "percent|cpu|comm|dso|[k] symbol" lines. */
export function parsePerfReport (text: string): PerfLine[] {
  const lines: PerfLine[] = []
  for (const raw of text.split('\n')) {
    const fields = raw.split('|')
    if (fields.length < 5) continue
    const percent = Number.parseFloat(fields[0])
    const cpu = Number.parseInt(fields[1], 10)
    const sym = fields.slice(4).join('|').trim()
    const m = /^\[(k|\.|g|u|H)\] (.*)$/.exec(sym)
    if (!Number.isFinite(percent) || !Number.isInteger(cpu) || !m) continue
    lines.push({ percent, cpu, comm: fields[2].trim(), dso: fields[3].trim(), kernel: m[1] === 'k' || m[1] === 'g', symbol: m[2].trim() })
  }
  return lines
}

/** The kind of work a sample was; undefined for the idle loop. */
export function categorize (l: PerfLine): Category | undefined {
  // An idle CPU also runs interrupts and softirqs under the idle task's name.
  if (l.comm === 'swapper' || l.comm.startsWith('swapper/')) {
    if (IDLE.test(l.symbol)) return undefined
  }
  if (CHECKSUMS.test(l.symbol)) return 'checksums'
  if (l.kernel) return COPIES.test(l.symbol) ? 'copies' : 'kernel'
  return DATA_PLANE.test(l.comm) || l.dso === 'flatnet.node' ? 'dataPlane' : 'otherUser'
}

/** Shares of all CPUs' time and their cost per Gbit, from a report of the whole machine. */
export function summarize (lines: PerfLine[], seconds: number, cpus: number, gbps: number, samples: number): Profile {
  const sharePct = Object.fromEntries(CATEGORIES.map((c) => [c.key, 0])) as Record<Category, number>
  let idlePct = 0
  const idlePctByCpu: number[] = new Array(cpus).fill(0)
  for (const l of lines) {
    const c = categorize(l)
    if (c) sharePct[c] += l.percent
    else {
      idlePct += l.percent
      // Every CPU is sampled alike, so each holds 1/cpus of the samples.
      if (l.cpu < cpus) idlePctByCpu[l.cpu] += l.percent * cpus
    }
  }
  // A share of every CPU's time for `seconds`, while `gbps` went through.
  const perGbit = (pct: number): number => pct / 100 * cpus / gbps
  const secPerGbit = Object.fromEntries(CATEGORIES.map((c) => [c.key, perGbit(sharePct[c.key])])) as Record<Category | 'busy', number>
  secPerGbit.busy = perGbit(100 - idlePct)
  const top = [...lines].sort((a, b) => b.percent - a.percent).slice(0, 15)
  return { seconds, samples, cpus, gbps, idlePct, idlePctByCpu, sharePct, secPerGbit, top }
}

/** Why --profile cannot run here, or undefined when it can. */
export async function profilerUnavailable (): Promise<string | undefined> {
  try {
    await run('perf', ['--version'])
  } catch {
    return 'perf is not installed (Debian: apt-get install linux-perf)'
  }
  return undefined
}

/**
 * Samples the whole machine for `seconds` starting `delayMs` into `test` (past TCP's
 * slow start and flatnet's move of bulk flows), and sorts the samples by kind.
 * perf runs in the bench's own namespace; it only reads the CPUs' state.
 */
export async function profileDuring (test: () => Promise<{ gbps: number }>, seconds: number, delayMs: number): Promise<Profile> {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-perf-'))
  const data = join(dir, 'perf.data')
  try {
    // Both awaited at once: a test that fails before perf starts is not left unhandled.
    const recorded = new Promise((resolve) => setTimeout(resolve, delayMs)).then(() => record(data, seconds))
    const [{ gbps }, samples] = await Promise.all([test(), recorded])
    const { stdout } = await run('perf', ['report', '-i', data, ...REPORT_ARGS], { maxBuffer: 64 << 20 })
    return summarize(parsePerfReport(stdout), seconds, availableParallelism(), gbps, samples)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs `perf record -a` for `seconds`; resolves with the number of samples it wrote. */
function record (data: string, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('perf', ['record', '-a', '-F', String(FREQUENCY), '-o', data, '--', 'sleep', String(seconds)],
      { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('error', reject)
    child.on('exit', (code) => {
      const m = /\((\d+) samples\)/.exec(err)
      if (code === 0 && m) resolve(Number(m[1]))
      else reject(new Error(`perf record exited ${code}: ${err.trim().split('\n').slice(-3).join(' / ')}`))
    })
  })
}
