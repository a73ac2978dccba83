// Traffic between lab namespaces that needs nothing but Node: a "who am I" TCP echo,
// a hash-checked bulk transfer, a paced stream that measures stalls, and UDP round trips. The demo runs on these alone, and
// tests use them where the kernel's own tools would prove no more.
import type { Namespace } from './netns.js'

export const ECHO_PORT = 7001 // TCP: answers each connection with the source address it sees
const SINK_PORT = 7002 // TCP: replies "<bytes> <sha256>" of all it read
const UDP_ECHO_PORT = 7003 // UDP: sends each datagram back
const PACED_PORT = 7004 // TCP: timestamped chunks; replies "<bytes> <sha256> <max delay ms>"
const CHUNK = 16 << 10 // a paced stream's unit: 8 bytes of send time, then random bytes

/** Starts `script` under Node in the namespace, listening on IPv4 and IPv6 separately (so IPv4 peers do not show as ::ffff:a.b.c.d). */
function serveBoth (ns: Namespace, listen: (host: string) => string): void {
  ns.spawn(process.execPath, ['-e', `${listen('0.0.0.0')}; ${listen('::')}`])
}

/** Runs a Node client script in the namespace, retrying while the server may still be starting; resolves to its stdout. */
async function client (from: Namespace, script: string, timeoutMs: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await from.execAsync(process.execPath, ['-e', script], timeoutMs)
    } catch (err) {
      if (attempt >= 20) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** A TCP server that answers each connection with the source address it sees. */
export function startEcho (ns: Namespace): void {
  serveBoth(ns, (host) => `require('net').createServer((s) => { s.end(s.remoteAddress + '\\n') }).listen({ port: ${ECHO_PORT}, host: '${host}', ipv6Only: ${host === '::'} })`)
}

/** Connects from a namespace to an echo server (or to a port that leads to one, such as a
 *  Service's); resolves to the source address the server saw. */
export async function seenAs (from: Namespace, address: string, port = ECHO_PORT): Promise<string> {
  const script = `const s = require('net').connect(${port}, '${address}'); let d = '';
    s.on('data', (b) => { d += b }); s.on('end', () => process.stdout.write(d.trim()));
    s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) }); s.setTimeout(5000, () => process.exit(2))`
  return (await client(from, script, 15_000)).trim()
}

/** A TCP sink: for each connection, replies "<bytes> <sha256>" of all it read once the sender half-closes. */
export function startSink (ns: Namespace): void {
  serveBoth(ns, (host) => `require('net').createServer({ allowHalfOpen: true }, (s) => {
    const h = require('crypto').createHash('sha256'); let n = 0
    s.on('data', (b) => { n += b.length; h.update(b) }); s.on('end', () => s.end(n + ' ' + h.digest('hex')))
  }).listen({ port: ${SINK_PORT}, host: '${host}', ipv6Only: ${host === '::'} })`)
}

/** Sends `mib` MiB of pseudo-random bytes to a sink; resolves to whether the sink saw exactly them, and the throughput. */
export async function bulkTransfer (from: Namespace, address: string, mib: number): Promise<{ intact: boolean, gbps: number, reply: string }> {
  const script = `const c = require('crypto'); const chunk = c.randomBytes(1 << 20); const h = c.createHash('sha256')
    const s = require('net').connect(${SINK_PORT}, '${address}'); let reply = ''; const t0 = process.hrtime.bigint()
    s.on('connect', () => { let i = 0; const more = () => { while (i < ${mib}) { i++; h.update(chunk); if (!s.write(chunk)) return s.once('drain', more) } s.end() }; more() })
    s.on('data', (b) => { reply += b }); s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) })
    s.on('close', () => { const ns = Number(process.hrtime.bigint() - t0); process.stdout.write(JSON.stringify({ want: (${mib} << 20) + ' ' + h.digest('hex'), reply, gbps: ${mib} * 8 * 1048576 / ns })) })
    s.setTimeout(30000, () => process.exit(2))`
  const r = JSON.parse(await client(from, script, 60_000))
  return { intact: r.want === r.reply, gbps: r.gbps, reply: r.reply }
}

/** A UDP server that sends every datagram back to where it came from. */
export function startUdpEcho (ns: Namespace): void {
  serveBoth(ns, (host) => `{ const s = require('dgram').createSocket(${host === '::' ? "{ type: 'udp6', ipv6Only: true }" : "'udp4'"});
    s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(${UDP_ECHO_PORT}, '${host}') }`)
}

export interface RoundTrips { sent: number, received: number, avgMs: number, maxMs: number }

/**
 * `count` UDP round trips to an echo server, one at a time, `intervalMs` apart, each
 * waiting up to 1 s for its answer; first a datagram retried while the server may
 * still be starting (not counted).
 */
export async function udpRoundTrips (from: Namespace, address: string, count: number, intervalMs = 20): Promise<RoundTrips> {
  const script = `const s = require('dgram').createSocket('${address.includes(':') ? 'udp6' : 'udp4'}')
    const answer = (seq, ms) => new Promise((resolve) => {
      const on = (m) => { if (String(m) === String(seq)) { clearTimeout(t); s.off('message', on); resolve(true) } }
      const t = setTimeout(() => { s.off('message', on); resolve(false) }, ms); s.on('message', on)
    })
    const ask = (seq, ms) => { const a = answer(seq, ms); s.send(String(seq), ${UDP_ECHO_PORT}, '${address}'); return a }
    ;(async () => {
      for (let i = 0; i < 50 && !(await ask('warmup' + i, 200)); i++);
      const ms = []
      for (let seq = 0; seq < ${count}; seq++) {
        const t0 = process.hrtime.bigint()
        if (await ask(seq, 1000)) ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
        await new Promise((resolve) => setTimeout(resolve, ${intervalMs}))
      }
      s.close()
      process.stdout.write(JSON.stringify({ sent: ${count}, received: ms.length, avgMs: ms.reduce((a, b) => a + b, 0) / (ms.length || 1), maxMs: Math.max(0, ...ms) }))
    })()`
  return JSON.parse(await from.execAsync(process.execPath, ['-e', script], 20_000 + count * (1000 + intervalMs)))
}

/**
 * A TCP server for paced streams: each connection's chunks carry their send time; it
 * replies "<bytes> <sha256> <largest send-to-receive delay in ms>" once the sender
 * half-closes. Sender and receiver share the machine's clock (namespaces do).
 */
export function startPacedSink (ns: Namespace): void {
  serveBoth(ns, (host) => `require('net').createServer({ allowHalfOpen: true }, (s) => {
    const h = require('crypto').createHash('sha256'); let n = 0; let max = 0; let part = Buffer.alloc(0)
    s.on('data', (b) => {
      const now = performance.timeOrigin + performance.now(); n += b.length; h.update(b); part = Buffer.concat([part, b])
      for (; part.length >= ${CHUNK}; part = part.subarray(${CHUNK})) max = Math.max(max, now - part.readDoubleLE(0))
    })
    s.on('end', () => s.end(n + ' ' + h.digest('hex') + ' ' + max.toFixed(1)))
  }).listen({ port: ${PACED_PORT}, host: '${host}', ipv6Only: ${host === '::'} })`)
}

export interface PacedResult { intact: boolean, bytes: number, maxDelayMs: number }

/**
 * Streams a chunk every `everyMs` to a paced sink until the file `stopFile` exists (the
 * namespaces share the filesystem): a steady flow, not a flood, so that a stall shows
 * as a chunk's delay and not as the machine's speed. Resolves to whether the sink saw
 * exactly those bytes, and the worst chunk delay.
 */
export async function pacedTransfer (from: Namespace, address: string, stopFile: string, everyMs = 5): Promise<PacedResult> {
  const limitMs = 300_000
  const script = `const c = require('crypto'); const h = c.createHash('sha256'); let sent = 0
    const s = require('net').connect(${PACED_PORT}, '${address}'); s.setNoDelay(true); let reply = ''
    const body = c.randomBytes(${CHUNK})
    s.on('connect', () => {
      const tick = setInterval(() => {
        if (require('fs').existsSync(${JSON.stringify(stopFile)})) { clearInterval(tick); return s.end() }
        const chunk = Buffer.from(body); chunk.writeDoubleLE(performance.timeOrigin + performance.now(), 0)
        h.update(chunk); sent += chunk.length; s.write(chunk)
      }, ${everyMs})
    })
    s.on('data', (b) => { reply += b }); s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) })
    s.on('close', () => process.stdout.write(JSON.stringify({ want: sent + ' ' + h.digest('hex'), reply: reply.trim(), sent })))
    s.setTimeout(${limitMs}, () => process.exit(2))`
  const r = JSON.parse(await client(from, script, limitMs + 30_000))
  const [bytes, hash, delay] = String(r.reply).split(' ')
  return { intact: r.want === `${bytes} ${hash}`, bytes: Number(bytes), maxDelayMs: Number(delay) }
}
