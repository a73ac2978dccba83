// Denied connections for `flatnet policy drops` (src/policy/drops.ts): the NFLOG packet
// parser (native/nflog.cc) on messages built as net/netfilter/nfnetlink_log.c builds them,
// the bounded list of flows, the log budget, and the reader over a stand-in for the socket.
import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/log.js'
import type { NflogRecord } from '../../src/native.js'
import { DeniedFlows, DropLog, formatDrops, LOG_LINES, LOG_WINDOW_MS, LogBudget, MAX_FLOWS, type NflogCalls, parsePrefix } from '../../src/policy/drops.js'
import { tableOf } from '../../src/policy/enforce.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../../src/policy/objects.js'
import { loadAddon } from '../../src/native.js'

const parser = loadAddon<{ parseNflogPacket: (family: number, attributes: Buffer) => NflogRecord | null }>('flatnet_testing', process.env.FLATNET_TESTING_ADDON)

// include/uapi/linux/netfilter/nfnetlink_log.h
const NFULA_IFINDEX_INDEV = 4
const NFULA_IFINDEX_PHYSINDEV = 6
const NFULA_PAYLOAD = 9
const NFULA_PREFIX = 10
const NFULA_SEQ = 12
const AF_INET = 2
const AF_INET6 = 10

/** One netlink attribute (include/uapi/linux/netlink.h), padded to 4 bytes. */
function attr (type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt16LE(4 + data.length, 0)
  head.writeUInt16LE(type, 2)
  return Buffer.concat([head, data, Buffer.alloc((4 - (data.length % 4)) % 4)])
}
const be32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }

function ipv4 (proto: number, src: string, dst: string, l4: Buffer, fragOffset = 0): Buffer {
  const h = Buffer.alloc(20)
  h[0] = 0x45
  h.writeUInt16BE(20 + l4.length, 2)
  h.writeUInt16BE(fragOffset, 6)
  h[8] = 64
  h[9] = proto
  Buffer.from(src.split('.').map(Number)).copy(h, 12)
  Buffer.from(dst.split('.').map(Number)).copy(h, 16)
  return Buffer.concat([h, l4])
}
const ports = (sport: number, dport: number): Buffer => { const b = Buffer.alloc(8); b.writeUInt16BE(sport, 0); b.writeUInt16BE(dport, 2); return b }

t.test('the parser reads addresses, protocol, ports, prefix, interfaces and sequence', async (t) => {
  const tcp = ipv4(6, '192.0.2.10', '192.0.2.20', ports(40000, 80))
  const r = parser.parseNflogPacket(AF_INET, Buffer.concat([
    attr(NFULA_IFINDEX_INDEV, be32(3)), attr(NFULA_IFINDEX_PHYSINDEV, be32(7)), attr(NFULA_PAYLOAD, tcp),
    attr(NFULA_PREFIX, Buffer.from('flatnet-policy ingress isolated\0')), attr(NFULA_SEQ, be32(41)),
  ]))
  t.match(r, { family: 4, saddr: '192.0.2.10', daddr: '192.0.2.20', proto: 6, sport: 40000, dport: 80, prefix: 'flatnet-policy ingress isolated', indev: 3, physindev: 7, seq: 41 })

  // IPv6 with a hop-by-hop header before UDP (RFC 8200 section 4.3).
  const h6 = Buffer.alloc(40)
  h6[0] = 0x60
  h6[6] = 0 // hop-by-hop
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(h6, 8)
  Buffer.from('20010db8000000000000000000000002', 'hex').copy(h6, 24)
  const hop = Buffer.alloc(8)
  hop[0] = 17
  const v6 = parser.parseNflogPacket(AF_INET6, Buffer.concat([attr(NFULA_PAYLOAD, Buffer.concat([h6, hop, ports(5353, 53)]))]))
  t.match(v6, { family: 6, saddr: '2001:db8::1', daddr: '2001:db8::2', proto: 17, sport: 5353, dport: 53 })

  const later = parser.parseNflogPacket(AF_INET, attr(NFULA_PAYLOAD, ipv4(17, '192.0.2.1', '192.0.2.2', ports(1, 2), 100)))
  t.match(later, { proto: 17, sport: 0, dport: 0 }, 'a later fragment: no ports read from its data')
  t.match(parser.parseNflogPacket(AF_INET, attr(NFULA_PAYLOAD, ipv4(1, '192.0.2.1', '192.0.2.2', Buffer.alloc(8)))), { proto: 1, dport: 0 }, 'ICMP: no ports')
  t.equal(parser.parseNflogPacket(AF_INET, attr(NFULA_PREFIX, Buffer.from('x\0'))), null, 'no payload: nothing to show')
  t.equal(parser.parseNflogPacket(AF_INET, attr(NFULA_PAYLOAD, Buffer.from([0x45, 0, 0]))), null, 'a header cut short')
  t.equal(parser.parseNflogPacket(AF_INET6, attr(NFULA_PAYLOAD, tcp)), null, 'a version that is not the family\'s')
  const bad = attr(NFULA_PAYLOAD, tcp)
  bad.writeUInt16LE(200, 0)
  t.equal(parser.parseNflogPacket(AF_INET, bad), null, 'an attribute longer than the message')
  // Every prefix of a valid message, and random bytes: never a crash, never a read past the end (ASan builds check).
  const whole = Buffer.concat([attr(NFULA_PREFIX, Buffer.from('flatnet-policy egress unknown\0')), attr(NFULA_PAYLOAD, tcp)])
  for (let n = 0; n <= whole.length; n++) parser.parseNflogPacket(AF_INET, whole.subarray(0, n))
  let seed = 1
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(1 + (i % 96))
    for (let k = 0; k < b.length; k++) b[k] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24
    parser.parseNflogPacket(i % 2 === 0 ? AF_INET : AF_INET6, b)
  }
  t.pass('truncations and random bytes parsed without harm')
})

const objects = {
  namespaces: ['x', 'y'].map((n) => parseNamespace({ metadata: { name: n } })),
  pods: [
    { metadata: { namespace: 'x', name: 'a', labels: { pod: 'a' } }, spec: { nodeName: 'n1', containers: [] }, status: { podIPs: [{ ip: '10.244.1.10' }] } },
    { metadata: { namespace: 'y', name: 'b', labels: { pod: 'b' } }, spec: { nodeName: 'n2', containers: [] }, status: { podIPs: [{ ip: '10.244.2.10' }] } },
  ].map(parsePod),
  policies: [parseNetworkPolicy({ metadata: { namespace: 'x', name: 'deny-all' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } })],
}
const table = tableOf({ nodeName: 'n1', podCIDRs: ['10.244.1.0/24'] }, objects)
const record = (o: Partial<NflogRecord>): NflogRecord => ({
  family: 4,
  saddr: '10.244.2.10',
  daddr: '10.244.1.10',
  proto: 6,
  sport: 40000,
  dport: 80,
  prefix: 'flatnet-policy ingress isolated',
  indev: 0,
  outdev: 0,
  physindev: 0,
  physoutdev: 0,
  ...o,
})

t.test('flows are named from the node\'s table, merged, and bounded', async (t) => {
  t.same(parsePrefix('flatnet-policy egress unknown'), { direction: 'egress', reason: 'unknown' })
  t.equal(parsePrefix('someone else'), undefined, 'another rule\'s log is not ours')
  const flows = new DeniedFlows(3)
  const first = flows.add(record({}), 1000, table)
  t.match(first, {
    direction: 'ingress',
    from: { ip: '10.244.2.10', pod: 'y/b' },
    to: { ip: '10.244.1.10', pod: 'x/a' },
    protocol: 'TCP',
    port: 80,
    isolatedBy: ['x/deny-all'],
    why: 'ingress of x/a: isolated by x/deny-all; no rule allows it',
    count: 1,
  })
  t.equal(flows.add(record({ sport: 40001 }), 2000, table), undefined, 'another source port: the same flow')
  t.match(flows.list()[0], { count: 2, firstSeen: 1000, lastSeen: 2000 })
  const out = flows.add(record({ saddr: '10.244.1.10', daddr: '192.0.2.1', proto: 17, dport: 53, prefix: 'flatnet-policy egress isolated' }), 3000, table)
  t.match(out, { direction: 'egress', from: { pod: 'x/a' }, to: { ip: '192.0.2.1' }, protocol: 'UDP', why: 'egress of x/a: isolated by x/deny-all; no rule allows it' })
  t.notOk('pod' in (out?.to ?? {}), 'an address no pod holds stays an address')
  t.match(flows.add(record({ saddr: '10.244.1.99', daddr: '10.244.2.10', prefix: 'flatnet-policy egress unknown' }), 4000, table),
    { reason: 'unknown', why: 'a pod of this node not yet in the table' })
  t.match(flows.add(record({ proto: 1, sport: 0, dport: 0 }), 5000, table), { protocol: 'ICMP' })
  t.equal(flows.size, 3, 'at most the bound: the least recently seen forgotten')
  t.same(flows.list().map((f) => f.lastSeen), [5000, 4000, 3000], 'most recent first')
  t.equal(flows.add(record({ prefix: 'not ours' }), 6000, table), undefined)
})

t.test('new flows are logged at most LOG_LINES per window, the rest said in one line', async (t) => {
  const budget = new LogBudget()
  let allowed = 0
  for (let i = 0; i < 50; i++) if (budget.take(1000)) allowed++
  t.equal(allowed, LOG_LINES)
  t.equal(budget.heldBack(1000 + LOG_WINDOW_MS - 1), 0, 'said only once the window is over')
  t.equal(budget.heldBack(1000 + LOG_WINDOW_MS), 50 - LOG_LINES)
  t.equal(budget.heldBack(1000 + LOG_WINDOW_MS), 0, 'and said once')
  t.ok(budget.take(1000 + LOG_WINDOW_MS), 'a new window')
  for (let i = 0; i < 20; i++) budget.take(1000 + LOG_WINDOW_MS)
  for (let i = 0; i < 5; i++) budget.take(1000 + 2 * LOG_WINDOW_MS)
  t.equal(budget.heldBack(1000 + 2 * LOG_WINDOW_MS), 20 + 1 - LOG_LINES, 'under a steady stream too: each ended window\'s count is said')
})

/** A stand-in for the addon's NFLOG calls: records queued by the test, errors on demand. */
function fakeNative (openErrno: number[] = []): NflogCalls & { queue: NflogRecord[], opened: number, closed: number } {
  const f = {
    queue: [] as NflogRecord[],
    opened: 0,
    closed: 0,
    nflogOpen: () => {
      const errno = openErrno.shift()
      if (errno !== undefined) throw Object.assign(new Error(`NFULNL_CFG_CMD_BIND: errno ${errno}`), { errno })
      f.opened++
      return 99
    },
    nflogRead: (_fd: number, max: number) => ({ records: f.queue.splice(0, max), overruns: 0 }),
    closeDescriptor: () => { f.closed++ },
  }
  return f
}

function captured (): { log: ReturnType<typeof createLogger>, lines: () => Array<Record<string, unknown>> } {
  const out: string[] = []
  const sink = new Writable({ write (chunk, _enc, done) { out.push(String(chunk)); done() } })
  return { log: createLogger('info', 'test', sink as never), lines: () => out.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) }
}

t.test('the reader: batches, lost records, the log line budget, a held group, no NFLOG', async (t) => {
  let now = 10_000
  const native = fakeNative()
  const { log, lines } = captured()
  const drops = new DropLog({ log, namer: () => table, native, now: () => now, group: 7 })
  t.ok(drops.open(), 'opened')
  t.teardown(() => drops.stop())
  for (let i = 0; i < 3000; i++) native.queue.push(record({ dport: 1 + i, seq: i < 100 ? i : i + 5 }))
  drops.poll()
  t.equal(native.queue.length, 0, 'everything queued read in one tick')
  const view = drops.view()
  t.equal(view.records, 3000)
  t.equal(view.lost, 5, 'a gap of 5 in the sequence: 5 lost')
  t.equal(view.flows.length, MAX_FLOWS, `3,000 flows, ${MAX_FLOWS} kept`)
  t.equal(view.flows[0].port, 3000, 'the latest first')
  const said = lines().filter((l) => l.msg === 'network policy denied a connection')
  t.equal(said.length, LOG_LINES, 'new flows logged within the budget')
  t.match(said[0], { level: 'info', direction: 'ingress', from: 'y/b', to: 'x/a', protocol: 'TCP', port: 1, reason: 'ingress of x/a: isolated by x/deny-all; no rule allows it' })
  now += LOG_WINDOW_MS
  drops.poll()
  t.match(lines().find((l) => l.msg === 'network policy denied more new connections than logged'), { flows: 3000 - LOG_LINES })
  t.match(drops.stats(), { group: 7, records: 3000, lost: 5, flows: MAX_FLOWS })
  t.match(formatDrops(drops.view(), now), /^AGE +DIRECTION +FROM +TO +PROTO\/PORT +COUNT +REASON\n10s +ingress +y\/b \(10\.244\.2\.10\) +x\/a \(10\.244\.1\.10\) +TCP\/3000 +1 +ingress of x\/a: isolated by x\/deny-all; no rule allows it\n/)
  t.match(formatDrops(drops.view(), now), /5 records lost by the kernel/)

  const heldLog = captured()
  const waiting = new DropLog({ log: heldLog.log, namer: () => table, native: fakeNative([1]), now: () => now })
  t.ok(waiting.open(), 'the group held by another socket (EPERM): on, asked again later')
  t.teardown(() => waiting.stop())
  t.match(waiting.view().error, /held by another process/)
  now += 5000
  waiting.poll()
  t.equal(waiting.view().error, undefined, 'then opened')

  const none = captured()
  const off = new DropLog({ log: none.log, namer: () => table, native: fakeNative([22]), now: () => now })
  t.notOk(off.open(), 'no NFLOG in the kernel (EINVAL): off, the table without log statements')
  t.match(off.view().error, /no NFLOG/)
  t.match(none.lines()[0], { level: 'warn', msg: /drops not logged/ })
  t.match(formatDrops(off.view(), now), /no denied connection logged yet\ndrop log: no NFLOG/)
})
