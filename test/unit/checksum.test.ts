// The native internet checksum against the RFC 1071 loop, and the flow hash.
import t from 'tap'
import { testing } from '../lib/testing-addon.js'
import { V4, V6, internetChecksum, ipv4, ipv6, pattern, tcp, tcpPacket, udp, udpPacket, UDP, TCP, ACK, FIN, PSH, SYN, addr } from '../lib/packets.js'

const { checksum, checksumReference, checksumCopy, flowHash, isPureTcpAck } = testing

t.test('named cases', async (t) => {
  const cases: Array<[string, Buffer, number]> = [
    ['empty', Buffer.alloc(0), 0xffff],
    ['one byte', Buffer.from([0x12]), ~0x1200 & 0xffff],
    // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    ['RFC 1071 example', Buffer.from('0001f203f4f5f6f7', 'hex'), ~0xddf2 & 0xffff],
    ['all zero', Buffer.alloc(1500), 0xffff],
    // 32767 words of ffff sum to ffff; the padded tail ff00 carries once: ff00, complement 00ff.
    ['all ones, odd length', Buffer.alloc(65535, 0xff), 0x00ff],
    ['odd tail', Buffer.from('0102030405', 'hex'), ~(0x0102 + 0x0304 + 0x0500) & 0xffff]
  ]
  for (const [name, buf, want] of cases) {
    t.equal(checksum(buf), want, `${name}: fast`)
    t.equal(checksumReference(buf), want, `${name}: reference`)
    t.equal(checksumCopy(buf), want, `${name}: copy`)
  }
})

t.test('fast equals reference at every length 0..3000 and alignment', async (t) => {
  const backing = pattern(3000 + 16, 7)
  let bad = 0
  for (let len = 0; len <= 3000; len++) {
    const align = len % 8
    const buf = backing.subarray(align, align + len)
    // Runs of 0xff and 0x00 stress the carry folding, random bytes the rest.
    if (len % 5 === 1) buf.fill(0xff)
    if (len % 5 === 2) buf.fill(0)
    const want = internetChecksum(buf)
    if (checksum(buf) !== want || checksumReference(buf) !== want || checksumCopy(buf) !== want) {
      bad++
      t.fail(`length ${len} alignment ${align}: ${checksum(buf)} ${checksumReference(buf)} ${checksumCopy(buf)} want ${want}`)
    }
    if (len % 5 !== 0) pattern(len, len).copy(buf)
  }
  t.equal(bad, 0, 'no mismatches')
})

t.test('flowHash', async (t) => {
  const payload = Buffer.from('hello')
  const u = (sp: number, dp: number) => ipv4(V4.src, V4.dst, UDP, udp(V4.src, V4.dst, sp, dp, payload))
  const frag = (pkt: Buffer, off: number) => { const c = Buffer.from(pkt); c.writeUInt16BE(off, 6); return c }
  const v6 = (label: number) => ipv6(V6.src, V6.dst, TCP, tcp(V6.src, V6.dst, payload), { flowLabel: label })
  t.equal(flowHash(u(1, 2)), flowHash(u(1, 2)), 'same flow, same hash')
  t.not(flowHash(u(1, 2)), flowHash(u(1, 3)), 'ports are hashed')
  t.not(flowHash(u(1, 2)), flowHash(ipv4(V4.src, addr('198.51.100.8'), UDP, udp(V4.src, V4.dst, 1, 2, payload))), 'addresses are hashed')
  t.equal(flowHash(frag(u(1, 2), 0x2000)), flowHash(frag(u(7, 9), 5)), 'fragments: ports not hashed')
  t.equal(flowHash(v6(1)), flowHash(v6(0xabcde)), 'IPv6 flow label ignored')
  t.equal(flowHash(Buffer.from([0x45, 0, 0])), 0, 'malformed: 0')
  // Spread: 256 source ports over 4 sockets should use all of them.
  const seen = new Set<number>()
  for (let p = 0; p < 256; p++) seen.add(flowHash(u(40000 + p, 80)) % 4)
  t.equal(seen.size, 4, 'ports spread over sockets')
})

// What turns a per-cpu worker SCHED_BATCH (dataplane.cc AckStreamPolicy): a stream of these.
t.test('isPureTcpAck', async (t) => {
  const none = Buffer.alloc(0)
  t.equal(isPureTcpAck(tcpPacket(none)), true, 'ACK, no payload')
  t.equal(isPureTcpAck(tcpPacket(none, { v: 6 })), true, 'the same over IPv6')
  t.equal(isPureTcpAck(tcpPacket(none, { options: Buffer.alloc(12) })), true, 'with options (timestamps)')
  t.equal(isPureTcpAck(tcpPacket(Buffer.from('x'))), false, 'one byte of data')
  t.equal(isPureTcpAck(tcpPacket(none, { flags: ACK | PSH })), true, 'ACK with PSH and no data')
  for (const [name, flags] of [['SYN-ACK', SYN | ACK], ['FIN', FIN | ACK], ['no ACK flag', 0]] as const) {
    t.equal(isPureTcpAck(tcpPacket(none, { flags })), false, name)
  }
  t.equal(isPureTcpAck(udpPacket(none)), false, 'UDP')
  const frag = tcpPacket(none); frag.writeUInt16BE(0x2000, 6)
  t.equal(isPureTcpAck(frag), false, 'a fragment')
  t.equal(isPureTcpAck(tcpPacket(none).subarray(0, 30)), false, 'truncated')
})
