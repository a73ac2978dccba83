// The receive path's admission checks and the transmit path's encapsulation and
// forwarding-table lookups, against hand-built vectors on documentation addresses.
import t from 'tap'
import { type NativeTable } from '../../src/native.js'
import { testing } from '../lib/testing-addon.js'
import { addr, ipv4, ipv6, udp } from '../lib/packets.js'
import { vxlanFrame } from '../lib/frames.js'
import { parseMac } from '../../src/net/mac.js'

const { encapPrefix, admit } = testing
const mac = (s: string): Buffer => parseMac(s)!
const OWN_MAC = '02:00:00:00:00:01'
const PEER_MAC = '02:00:00:00:00:02'

const table: NativeTable = {
  local: [{ address: addr('10.244.1.0'), length: 24 }, { address: addr('fd00:1::'), length: 64 }],
  peers: [
    { name: 'n2', address: addr('192.0.2.2'), port: 8472, mac: mac(PEER_MAC), cidrs: [{ address: addr('10.244.2.0'), length: 24 }, { address: addr('fd00:2::'), length: 64 }] },
    { name: 'n3', address: addr('192.0.2.3'), port: 8472, mac: mac('02:00:00:00:00:03'), cidrs: [{ address: addr('10.244.3.0'), length: 24 }] },
    // A wider route under the narrower ones: longest prefix must win.
    { name: 'gw', address: addr('2001:db8::9'), port: 4789, mac: mac('02:00:00:00:00:09'), cidrs: [{ address: addr('10.244.0.0'), length: 16 }] },
  ],
}

t.test('encapsulation prefix: RFC 7348 header and inner Ethernet', async (t) => {
  const p: Buffer = encapPrefix(0x123456, mac(PEER_MAC), mac(OWN_MAC), 0x0800)
  t.equal(p.toString('hex'), '08000000' + '12345600' + '020000000002' + '020000000001' + '0800')
  t.equal(encapPrefix(1, mac(PEER_MAC), mac(OWN_MAC), 0x86dd).subarray(4, 8).toString('hex'), '00000100', 'VNI 1')
})

t.test('forwarding table lookups', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['10.244.2.7', 'n2'], ['10.244.3.255', 'n3'], ['10.244.9.1', 'gw'], ['10.245.0.1', null],
    ['fd00:2::1234', 'n2'], ['fd00:3::1', null], ['192.0.2.2', null],
  ]
  const fib = new testing.Table()
  fib.setTable(table)
  for (const [dst, want] of cases) t.equal(fib.lookup(addr(dst)), want, `${dst} -> ${want ?? 'no route'}`)
})

const v4 = (src: string, dst: string): Buffer => ipv4(addr(src), addr(dst), 17, udp(addr(src), addr(dst), 40000, 9, Buffer.from('payload')))
const v6 = (src: string, dst: string): Buffer => ipv6(addr(src), addr(dst), 17, udp(addr(src), addr(dst), 40000, 9, Buffer.from('payload')))
const frame = (over: Partial<Parameters<typeof vxlanFrame>[0]> = {}): Buffer =>
  vxlanFrame({ vni: 1, dstMac: OWN_MAC, srcMac: PEER_MAC, inner: v4('10.244.2.10', '10.244.1.10'), ...over })

t.test('admission of received datagrams', async (t) => {
  const cases: Array<[string, string, Buffer, string | undefined]> = [
    ['valid IPv4', '192.0.2.2', frame(), undefined],
    ['valid IPv6', '192.0.2.2', frame({ ethType: 0x86dd, inner: v6('fd00:2::10', 'fd00:1::10') }), undefined],
    ['broadcast destination MAC is accepted', '192.0.2.2', frame({ dstMac: 'ff:ff:ff:ff:ff:ff' }), undefined],
    ['Ethernet padding trimmed', '192.0.2.2', Buffer.concat([frame(), Buffer.alloc(10)]), undefined],
    ['too short', '192.0.2.2', frame().subarray(0, 30), 'too_short'],
    ['no I flag', '192.0.2.2', frame({ flags: 0 }), 'bad_flags'],
    ['reserved flags ignored when I is set', '192.0.2.2', frame({ flags: 0xff }), undefined],
    ['wrong VNI', '192.0.2.2', frame({ vni: 2 }), 'wrong_vni'],
    ['unknown peer', '192.0.2.99', frame(), 'unknown_peer'],
    ['unicast for another VTEP', '192.0.2.2', frame({ dstMac: '02:00:00:00:00:07' }), 'wrong_dst_mac'],
    ['ARP', '192.0.2.2', frame({ ethType: 0x0806 }), 'not_ip'],
    ['IPv6 inside an IPv4 ethertype', '192.0.2.2', frame({ inner: v6('fd00:2::10', 'fd00:1::10') }), 'bad_inner_ip'],
    ['IP total length beyond the datagram', '192.0.2.2', frame({ inner: v4('10.244.2.10', '10.244.1.10').subarray(0, 30) }), 'bad_inner_ip'],
    ['IHL below 5', '192.0.2.2', frame({ inner: Buffer.concat([Buffer.from([0x44]), v4('10.244.2.10', '10.244.1.10').subarray(1)]) }), 'bad_inner_ip'],
    ['source in another peer\'s CIDR', '192.0.2.2', frame({ inner: v4('10.244.3.10', '10.244.1.10') }), 'spoofed_source'],
    ['source outside every CIDR', '192.0.2.2', frame({ inner: v4('198.51.100.1', '10.244.1.10') }), 'spoofed_source'],
    ['relay to another node', '192.0.2.2', frame({ inner: v4('10.244.2.10', '10.244.3.10') }), 'foreign_destination'],
    ['into the host', '192.0.2.2', frame({ inner: v4('10.244.2.10', '192.0.2.1') }), 'foreign_destination'],
  ]
  for (const [name, from, datagram, drop] of cases) {
    const r = admit(table, addr(from), 1, mac(OWN_MAC), datagram)
    if (drop) {
      t.equal(r.drop, drop, `${name}: dropped as ${drop}`)
    } else {
      t.same(r, { peer: 'n2', inner: 22, totalLen: datagram.subarray(22).readUInt16BE(datagram[22] >> 4 === 4 ? 2 : 4) + (datagram[22] >> 4 === 4 ? 0 : 40) }, `${name}: admitted`)
    }
  }
})

t.test('random datagrams never crash admission', async (t) => {
  let admitted = 0
  for (let i = 0; i < 5000; i++) {
    const d = frame()
    for (let k = 0; k < 1 + (i % 6); k++) d[Math.floor(Math.random() * d.length)] = Math.floor(Math.random() * 256)
    const r = admit(table, addr('192.0.2.2'), 1, mac(OWN_MAC), d.subarray(0, Math.floor(Math.random() * (d.length + 1))))
    if (!r.drop) admitted++
  }
  t.pass(`5000 mutated datagrams, ${admitted} admitted, no crash`)
})
