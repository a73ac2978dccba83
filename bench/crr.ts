// TCP_CRR's load generator, as netperf's TCP_CRR: connect, a 1-byte request, a 1-byte
// reply, close, then the next connection, one at a time. The project's own because no
// Debian tool here fits: netperf is not in Debian's main archive, and sockperf keeps one
// connection for a whole run. Run inside a pod's namespace:
//   node crr.js server IP PORT
//   node crr.js client IP PORT SECONDS   (prints one JSON line, a CrrReport)
// Node's own cost per connection is in the figure for every mode alike.
import { connect, createServer, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { busyCpuSeconds } from './proc-stat.js'

export interface CrrReport {
  connections: number // completed: connected, request sent, reply read, closed
  seconds: number
  /** The machine's busy CPU seconds over exactly those seconds (bench/proc-stat.ts). */
  busyCpuSeconds: number
  /** Connect to reply, per connection. */
  p50Us: number
  p90Us: number
  p99Us: number
  errors: number
  firstError?: string
}

const REQUEST = Buffer.from([0x71])
const REPLY = Buffer.from([0x72])
// Past this many failed connections the figure means nothing; stop and say why.
const MAX_ERRORS = 100

export function serve (host: string, port: number): void {
  const server = createServer({ noDelay: true }, (s: Socket) => {
    s.on('data', () => s.write(REPLY))
    s.on('error', () => s.destroy())
  })
  server.listen(port, host)
}

/** One transaction; resolves once the reply is read and the socket closed (its FIN on the way, as after close(2)). */
function once (host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true })
    s.once('connect', () => s.write(REQUEST))
    s.once('data', () => {
      s.destroy()
      resolve()
    })
    s.once('error', reject)
    s.once('close', () => reject(new Error('closed before the reply')))
  })
}

export async function run (host: string, port: number, seconds: number): Promise<CrrReport> {
  const times: number[] = []
  let errors = 0
  let firstError: string | undefined
  const busyBefore = busyCpuSeconds()
  const start = performance.now()
  const end = start + seconds * 1000
  for (let now = start; now < end && errors < MAX_ERRORS;) {
    try {
      await once(host, port)
      const t = performance.now()
      times.push(t - now)
      now = t
    } catch (err) {
      errors++
      firstError ??= (err as Error).message
      now = performance.now()
    }
  }
  const elapsed = (performance.now() - start) / 1000
  const busy = busyCpuSeconds() - busyBefore
  times.sort((a, b) => a - b)
  const p = (q: number): number => times.length ? 1000 * times[Math.min(times.length - 1, Math.ceil(q / 100 * times.length) - 1)] : NaN
  return { connections: times.length, seconds: elapsed, busyCpuSeconds: busy, p50Us: p(50), p90Us: p(90), p99Us: p(99), errors, firstError }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, host, port, seconds] = process.argv.slice(2)
  if (role === 'server' && host && Number(port) > 0) serve(host, Number(port))
  else if (role === 'client' && host && Number(port) > 0 && Number(seconds) > 0) {
    run(host, Number(port), Number(seconds)).then((r) => console.log(JSON.stringify(r)), (err: Error) => {
      console.error(`crr: ${err.message}`)
      process.exitCode = 1
    })
  } else {
    console.error('usage: node crr.js server IP PORT | client IP PORT SECONDS')
    process.exitCode = 2
  }
}
