// A TCP "who am I" server for any namespace and either family: it answers each
// connection with the source address it sees. NAT tests read the masqueraded
// address from it; dual-stack tests reach it over IPv4 and IPv6.
import type { Pod } from '../../src/lab/cluster.js'
import type { Namespace } from '../../src/lab/netns.js'

export const ECHO_PORT = 7001 // beside lab.ts's IPv4-only echo on 7000

/** Listens on 0.0.0.0 and [::] separately, so IPv4 peers are not shown as ::ffff:a.b.c.d. */
export function startEcho (ns: Namespace): void {
  const serve = (host: string): string =>
    `require('net').createServer((s) => { s.end(s.remoteAddress + '\\n') }).listen({ port: ${ECHO_PORT}, host: '${host}', ipv6Only: ${host === '::'} })`
  ns.spawn(process.execPath, ['-e', `${serve('0.0.0.0')}; ${serve('::')}`])
}

/** Connects from a namespace to an echo server (or to a port that leads to one, such as a
 *  Service's); resolves to the source address the server saw. */
export async function seenAs (from: Namespace, address: string, port = ECHO_PORT): Promise<string> {
  const script = `const s = require('net').connect(${port}, '${address}'); let d = '';
    s.on('data', (b) => { d += b }); s.on('end', () => process.stdout.write(d.trim()));
    s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) }); s.setTimeout(5000, () => process.exit(2))`
  for (let attempt = 0; ; attempt++) {
    try {
      return (await from.execAsync(process.execPath, ['-e', script], 15_000)).trim()
    } catch (err) {
      if (attempt >= 20) throw err // the server may still be starting
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** ping or ping -6, a few packets; true when they came back. */
export async function pingFrom (from: Namespace, address: string, count = 2): Promise<boolean> {
  try {
    await from.execAsync('ping', [address.includes(':') ? '-6' : '-4', '-c', String(count), '-i', '0.2', '-W', '2', '-q', address], 15_000)
    return true
  } catch {
    return false
  }
}

const SINK_PORT = 7002

/** A TCP sink on both families: for each connection, replies "<bytes> <sha256>" of all it read once the sender half-closes. */
export function startSink (ns: Namespace): void {
  const serve = (host: string): string => `require('net').createServer({ allowHalfOpen: true }, (s) => {
    const h = require('crypto').createHash('sha256'); let n = 0
    s.on('data', (b) => { n += b.length; h.update(b) }); s.on('end', () => s.end(n + ' ' + h.digest('hex')))
  }).listen({ port: ${SINK_PORT}, host: '${host}', ipv6Only: ${host === '::'} })`
  ns.spawn(process.execPath, ['-e', `${serve('0.0.0.0')}; ${serve('::')}`])
}

/** Sends `mib` MiB of pseudo-random bytes to a sink; resolves to whether the sink saw exactly them, and the throughput. */
export async function bulkTransfer (from: Namespace, address: string, mib: number): Promise<{ intact: boolean, gbps: number, reply: string }> {
  const script = `const c = require('crypto'); const chunk = c.randomBytes(1 << 20); const h = c.createHash('sha256')
    const s = require('net').connect(${SINK_PORT}, '${address}'); let reply = ''; const t0 = process.hrtime.bigint()
    s.on('connect', () => { let i = 0; const more = () => { while (i < ${mib}) { i++; h.update(chunk); if (!s.write(chunk)) return s.once('drain', more) } s.end() }; more() })
    s.on('data', (b) => { reply += b }); s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) })
    s.on('close', () => { const ns = Number(process.hrtime.bigint() - t0); process.stdout.write(JSON.stringify({ want: (${mib} << 20) + ' ' + h.digest('hex'), reply, gbps: ${mib} * 8 * 1048576 / ns })) })
    s.setTimeout(30000, () => process.exit(2))`
  for (let attempt = 0; ; attempt++) {
    try {
      const r = JSON.parse(await from.execAsync(process.execPath, ['-e', script], 60_000))
      return { intact: r.want === r.reply, gbps: r.gbps, reply: r.reply }
    } catch (err) {
      if (attempt >= 20) throw err // the sink may still be starting
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Pings at 20/s for `seconds` in the background; resolves to [sent, received]. By count,
 *  not `-w seconds`: a deadline stops ping with the last echo's reply still on its way,
 *  counted lost (1 of 37 in a CI run of faults.test.ts), where `-c` waits for it (`-W 1`). */
export function steadyPing (from: Pod, to: string, seconds: number): Promise<[number, number]> {
  const count = String(Math.round(seconds * 20))
  return from.ns.execAsync('ping', ['-i', '0.05', '-W', '1', '-c', count, '-q', to], (seconds + 10) * 1000)
    .catch((err: { stdout?: string }) => err.stdout ?? '') // exit 1 when some were lost
    .then((out) => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
      return m ? [Number(m[1]), Number(m[2])] : [0, 0]
    })
}
