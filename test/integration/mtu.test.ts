// Packets larger than the overlay MTU. Pods keep the default MTU 1500 while the
// TUN has 1450 (underlay 1500 - 50): a DF packet that does not fit must be answered
// with ICMP "fragmentation needed" (IPv6: packet too big) carrying mtu 1450 — the
// kernel sends it when it routes the packet into the TUN — so TCP path MTU
// discovery works across the overlay instead of black-holing full-size segments.
import t from 'tap'
import type { Pod } from '../../src/lab/cluster.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('ping')

const SINK_PORT = 7003
const BYTES = 4 << 20

/** A TCP server answering each connection with the number of bytes it received. */
function startSink (pod: Pod): void {
  pod.ns.spawn(process.execPath, ['-e', `require('net').createServer((s) => { let n = 0
    s.on('data', (b) => { n += b.length }); s.on('end', () => s.end(String(n))) }).listen(${SINK_PORT}, '::')`])
}

/** Sends BYTES in full-size segments (pod MTU 1500) and returns what the sink counted. */
async function tcpTransfer (from: Pod, to: string): Promise<number> {
  const script = `const s = require('net').connect(${SINK_PORT}, '${to}'); let d = ''
    s.on('connect', () => s.end(Buffer.alloc(${BYTES}, 7))); s.on('data', (b) => { d += b })
    s.on('end', () => process.stdout.write(d)); s.on('error', (e) => { process.stderr.write(e.message); process.exit(1) })
    s.setTimeout(8000, () => { process.stderr.write('stalled'); process.exit(2) })`
  for (let attempt = 0; ; attempt++) {
    try {
      return Number(await from.ns.execAsync(process.execPath, ['-e', script], 20_000))
    } catch (err) {
      if (attempt >= 10 || /stalled/.test(String((err as { stderr?: string }).stderr))) throw err // a stall is the bug
      await new Promise((resolve) => setTimeout(resolve, 200)) // the sink may still be starting
    }
  }
}

async function pingDF (from: Pod, to: string, size: number, v6: boolean): Promise<{ ok: boolean, out: string }> {
  const args = [...(v6 ? ['-6'] : []), '-M', 'do', '-s', String(size), '-c', '3', '-i', '0.2', '-W', '1', to]
  try {
    return { ok: true, out: await from.ns.execAsync('ping', args, 10_000) }
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string }
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

// iputils prints "Frag needed and DF set (mtu = 1450)" or, once the route cache
// holds the PMTU, "local error: message too long, mtu=1450"; IPv6: "Packet too big: mtu=1450".
const MTU_1450 = /mtu\s*[=:]?\s*=?\s*1450/

for (const offloads of [true, false]) {
  t.test(`DF packets over the overlay MTU get ICMP with mtu 1450; TCP at pod MTU 1500 works (offloads ${offloads ? 'on' : 'off'})`, async (t) => {
    const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', offloads }, { kind: 'flatnet', offloads }], dualStack: true })
    if (!cluster) return
    const [p1, p2] = cluster.nodes.map((n) => n.pods[0])
    t.equal(JSON.parse(p1.ns.ip('-j', 'link', 'show', 'eth0'))[0].mtu, 1500, 'the pod has MTU 1500')
    t.equal(JSON.parse(cluster.nodes[0].ns.ip('-j', 'link', 'show', 'flatnet0'))[0].mtu, 1450, 'the TUN has MTU 1450')
    startSink(p2)

    // TCP first, from a fresh route cache: it must discover the 1450 by itself.
    for (const [family, to] of [['IPv4', p2.ip], ['IPv6', p2.ip6!]] as const) {
      const start = Date.now()
      t.equal(await tcpTransfer(p1, to), BYTES, `${family}: ${BYTES} bytes over TCP at pod MTU 1500 (${Date.now() - start} ms)`)
      const cached = p1.ns.ip(family === 'IPv4' ? '-4' : '-6', 'route', 'get', to)
      t.match(cached, /mtu 1450/, `${family}: the pod learned path MTU 1450 (${cached.trim().replace(/\s+/g, ' ')})`)
    }

    // Fresh pod caches for the ping checks (the TCP run already taught them 1450).
    p1.ns.ip('-4', 'route', 'flush', 'cache')
    p1.ns.ip('-6', 'route', 'flush', 'cache')
    const big4 = await pingDF(p1, p2.ip, 1472, false) // 1472 + 8 + 20 = 1500
    t.notOk(big4.ok, 'IPv4: a 1500-byte DF ping does not pass')
    t.match(big4.out, MTU_1450, `IPv4: told mtu 1450: ${big4.out.split('\n').find((l) => /mtu/i.test(l))?.trim()}`)
    const fits4 = await pingDF(p1, p2.ip, 1422, false) // 1450 on the TUN
    t.ok(fits4.ok, 'IPv4: a 1450-byte DF ping passes')
    const big6 = await pingDF(p1, p2.ip6!, 1452, true) // 1452 + 8 + 40 = 1500
    t.notOk(big6.ok, 'IPv6: a 1500-byte ping does not pass')
    t.match(big6.out, MTU_1450, `IPv6: packet too big, mtu 1450: ${big6.out.split('\n').find((l) => /mtu/i.test(l))?.trim()}`)
    const fits6 = await pingDF(p1, p2.ip6!, 1402, true)
    t.ok(fits6.ok, 'IPv6: a 1450-byte ping passes')
  })
}
