// The kernel's drop counters around the data plane, parsed from /proc/net/dev and
// /proc/net/udp(6) as this kernel formats them.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dropGrowth, kernelDrops, socketDrops, tunDrops, udpCounters } from '../../src/net/kernel-drops.js'

const DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 8118749   64449    0    0    0     0          0         0  8118749   64449    0    0    0     0       0          0
flatnet0: 9000 100 0 7 0 0 0 0 12000 200 0 24831 0 0 0 0
  eth0: 1 2 0 5 0 0 0 0 3 4 0 6 0 0 0 0
`
// Port 8472 is 0x2118: two reuseport sockets on it (one with drops), one on another port, one IPv6.
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  137: 014DA8C0:2118 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81234 2 0000000000000000 0
  137: 014DA8C0:2118 00000000:0000 07 00000000:00300000 00:00000000 00000000     0        0 81235 2 0000000000000000 412
  210: 00000000:2119 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81236 2 0000000000000000 99
`
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  137: 0000000000000000000000000100FDAA:2118 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81300 2 0000000000000000 3
`

t.test('TUN: TX drops are the queue the workers did not read in time, RX drops the writes refused', async (t) => {
  t.same(tunDrops(DEV, 'flatnet0'), { tunQueue: 24831, tunWrite: 7 })
  t.same(tunDrops(DEV, 'flatnet1'), { tunQueue: 0, tunWrite: 0 }, 'no such device (being reopened): zero')
  t.same(tunDrops(DEV, 'eth'), { tunQueue: 0, tunWrite: 0 }, 'a name is matched whole, not as a prefix')
})

t.test('underlay: the drops of every socket on the VTEP port, IPv4 and IPv6, no other port', async (t) => {
  t.equal(socketDrops(UDP, 8472), 412)
  t.equal(socketDrops(UDP6, 8472), 3)
  t.equal(socketDrops(UDP, 4789), 0, 'nothing on the port: zero')
})

t.test("kernelDrops reads the namespace's files; a kernel without IPv6 has no udp6, a missing file counts nothing", async (t) => {
  const net = mkdtempSync(join(tmpdir(), 'flatnet-net-'))
  t.teardown(() => rmSync(net, { recursive: true, force: true }))
  writeFileSync(join(net, 'dev'), DEV)
  writeFileSync(join(net, 'udp'), UDP)
  t.same(kernelDrops('flatnet0', 8472, net), { tunQueue: 24831, tunWrite: 7, underlaySocket: 412 })
  writeFileSync(join(net, 'udp6'), UDP6)
  t.same(kernelDrops('flatnet0', 8472, net), { tunQueue: 24831, tunWrite: 7, underlaySocket: 415 })
  t.ok(kernelDrops('lo', 8472).tunQueue >= 0, "this process's own namespace reads")
  t.same(kernelDrops('flatnet0', 8472, join(net, 'none')), { tunQueue: 0, tunWrite: 0, underlaySocket: 0 }, 'unreadable files count nothing, and do not throw')
})

t.test('dropGrowth: what grew since the last report, a report per interval at most, afresh after a reset', async (t) => {
  let counts = { tunQueue: 0, tunWrite: 0, underlaySocket: 0 }
  let clock = 0
  const grown = dropGrowth(() => counts, 60_000, () => clock)
  t.equal(grown(), undefined, 'nothing grew')
  counts = { tunQueue: 100, tunWrite: 0, underlaySocket: 5 }
  t.same(grown(), { tunQueue: 100, tunWrite: 0, underlaySocket: 5 })
  counts = { tunQueue: 150, tunWrite: 0, underlaySocket: 5 }
  clock = 30_000
  t.equal(grown(), undefined, 'within the interval: held back')
  clock = 60_000
  t.same(grown(), { tunQueue: 50, tunWrite: 0, underlaySocket: 0 }, 'then what grew since the last report')
  counts = { tunQueue: 3, tunWrite: 0, underlaySocket: 5 }
  clock = 200_000
  t.equal(grown(), undefined, 'the TUN re-created (its count went down): no report, counting from here')
  counts = { tunQueue: 10, tunWrite: 0, underlaySocket: 5 }
  t.same(grown(), { tunQueue: 7, tunWrite: 0, underlaySocket: 0 })
})

t.test('udpCounters: the Udp names and values lines of /proc/net/snmp, by name', async (t) => {
  const snmp = `Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 609396 3 0 12 793422 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`
  const udp = udpCounters(snmp)
  t.equal(udp.RcvbufErrors, 793422)
  t.equal(udp.InDatagrams, 609396, 'Udp:, not UdpLite:')
  t.same(udpCounters(''), {}, 'no Udp lines: nothing')
})
