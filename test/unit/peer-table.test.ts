// PeerTable: sources' batches become one native push each, carrying only what
// changed after the first; resync removes only the source's own stale peers; the
// state file round-trips and survives a torn write.
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PeerTable } from '../../src/peer-table.js'
import { loadTable, saveTable } from '../../src/control/state-file.js'
import { fromWire, type VtepRecord } from '../../src/control/vtep.js'
import { parseCidr, type Cidr } from '../../src/net/cidr.js'
import type { NativePeer, NativePeerChanges, NativeTable } from '../../src/native.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

function rec (i: number, source: VtepRecord['source'] = 'channel', version = 1): VtepRecord {
  const r = fromWire({ node: `n${i}`, cidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`], addr: `192.0.2.${i & 255}`, port: 8472, vni: 1, mac: '02:00:00:00:00:09', ver: version }, source)
  if (typeof r === 'string') throw new Error(r)
  return r
}

interface Push { whole: boolean, set: string[], remove: string[] }

// A dataplane that keeps the native table as the addon would, and records each push.
function table (): { table: PeerTable, pushes: Push[], native: Map<string, NativePeer>, rejects: string[] } {
  const pushes: Push[] = []
  const native = new Map<string, NativePeer>()
  const rejects: string[] = []
  const updatePeers = (c: NativePeerChanges, whole = false): void => {
    for (const p of c.set) native.set(p.name, p)
    for (const name of c.remove) native.delete(name)
    pushes.push({ whole, set: c.set.map((p) => p.name), remove: c.remove })
  }
  const setTable = (tb: NativeTable): void => {
    updatePeers({ set: tb.peers, remove: [...native.keys()].filter((n) => !tb.peers.some((p) => p.name === n)) }, true)
  }
  const table = new PeerTable({ setTable, updatePeers }, [parseCidr('10.0.0.0/24') as Cidr],
    { self: 'n0', vni: 1, onReject: (n, why) => rejects.push(`${n}: ${why}`) })
  return { table, pushes, native, rejects }
}

t.test('a batch is one push; unchanged records do not push', async (t) => {
  const { table: tb, pushes, native } = table()
  tb.update('channel', { set: [rec(1), rec(2), rec(3)] })
  t.same(pushes, [{ whole: true, set: ['n1', 'n2', 'n3'], remove: [] }], 'the first push is the whole table')
  tb.update('channel', { set: [rec(2)] })
  t.equal(pushes.length, 1, 'same VTEP again: no push')
  tb.update('channel', { remove: ['n2'] })
  t.same(pushes[1], { whole: false, set: [], remove: ['n2'] })
  t.same([...native.keys()], ['n1', 'n3'])
})

t.test('after the first push, a batch carries only the peers it changed', async (t) => {
  const { table: tb, pushes, native } = table()
  tb.update('channel', { set: Array.from({ length: 1000 }, (_, i) => rec(i + 1)) })
  tb.update('channel', { set: [{ ...rec(7), port: 9999 }, rec(8)], remove: ['n9', 'n77'] })
  t.same(pushes.at(-1), { whole: false, set: ['n7'], remove: ['n9', 'n77'] }, 'n8 unchanged: not sent')
  t.equal(native.get('n7')?.port, 9999)
  t.equal(native.size, 998)
  tb.update('channel', { set: [rec(9)] })
  t.same(pushes.at(-1), { whole: false, set: ['n9'], remove: [] }, 'removed, then back')
  t.equal(native.size, 999)
})

t.test('refuses itself, another VNI, an overlap with the local pod CIDR, and stale versions', async (t) => {
  const { table: tb, rejects } = table()
  const self = { ...rec(1), nodeName: 'n0' }
  const otherVni = { ...rec(2), vni: 7 }
  const overlap = { ...rec(3), podCIDRs: [parseCidr('10.0.0.0/16') as Cidr] }
  tb.update('channel', { set: [self, otherVni, overlap, rec(4, 'channel', 5)] })
  t.same(tb.list().map((p) => p.nodeName), ['n4'])
  t.equal(rejects.length, 2)
  tb.update('channel', { set: [{ ...rec(4, 'channel', 3), port: 9999 }] })
  t.equal(tb.list()[0].port, 8472, 'an older version does not overwrite a newer one')
})

t.test('resync removes only that source\'s peers; remove by another source is ignored', async (t) => {
  const { table: tb } = table()
  tb.update('static', { set: [rec(1, 'static')] })
  tb.update('etcd', { set: [rec(2, 'etcd'), rec(3, 'etcd')] })
  tb.resync('etcd', [rec(3, 'etcd')])
  t.same(tb.list().map((p) => p.nodeName).sort(), ['n1', 'n3'])
  tb.update('etcd', { remove: ['n1'] })
  t.same(tb.list().map((p) => p.nodeName).sort(), ['n1', 'n3'])
})

t.test('restored entries forward at once and go when their source resyncs without them', async (t) => {
  const { table: tb, pushes } = table()
  tb.restore([rec(1), rec(2)])
  t.same(pushes.at(-1), { whole: true, set: ['n1', 'n2'], remove: [] })
  t.ok(tb.list().every((p) => p.restored))
  tb.resync('channel', [rec(1)])
  t.same(tb.list().map((p) => [p.nodeName, p.restored]), [['n1', false]])
})

t.test('state file: round trip, atomic replace, damaged file refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-state-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'sub', 'n0.peers')
  t.same(loadTable(file), [], 'no file: empty')
  saveTable(file, [rec(1), rec(2, 'etcd', 42)])
  const back = loadTable(file)
  t.same(back.map((r) => [r.nodeName, r.source, r.version]), [['n1', 'channel', 1], ['n2', 'etcd', 42]])
  t.same(readdirSync(join(dir, 'sub')), ['n0.peers'], 'no temp file left')
  writeFileSync(file, Buffer.from([0xc1, 0x00]))
  t.throws(() => loadTable(file))
})

// Finding 6 of the security review: any source could claim any CIDR, and longest prefix won,
// so a /32 inside another node's pod CIDR took that pod's traffic.
t.test('a record speaks only for its own node: outside the cluster or over another peer\'s CIDR, refused; the first claimant keeps it', async (t) => {
  const rejects: string[] = []
  const native = new Map<string, NativePeer>()
  const apply = (c: NativePeerChanges): void => { for (const p of c.set) native.set(p.name, p); for (const n of c.remove) native.delete(n) }
  const tb = new PeerTable({ setTable: (x) => apply({ set: x.peers, remove: [] }), updatePeers: apply }, [parseCidr('10.0.0.0/24') as Cidr],
    { self: 'n0', vni: 1, clusterCIDRs: [parseCidr('10.0.0.0/8') as Cidr], onReject: (n, why) => rejects.push(`${n}: ${why}`) })
  const claim = (node: string, cidr: string, version = 1): VtepRecord => {
    const r = fromWire({ node, cidrs: [cidr], addr: '192.0.2.50', port: 8472, vni: 1, mac: '02:00:00:00:00:09', ver: version }, 'channel')
    if (typeof r === 'string') throw new Error(r)
    return r
  }
  tb.update('channel', { set: [rec(1), rec(2)] }) // 10.0.1.0/24, 10.0.2.0/24
  tb.update('channel', { set: [claim('evil', '10.0.1.7/32')] })
  t.same(rejects.pop(), 'evil: pod CIDR 10.0.1.7/32 overlaps n1\'s, which claimed it first', 'a /32 inside n1\'s CIDR')
  tb.update('channel', { set: [claim('evil', '10.0.0.0/16')] })
  t.same(rejects.pop(), 'evil: pod CIDR overlaps this node\'s', 'a CIDR around this node\'s')
  tb.update('channel', { set: [claim('evil', '10.0.2.0/24')] })
  t.same(rejects.pop(), 'evil: pod CIDR 10.0.2.0/24 overlaps n2\'s, which claimed it first', 'the same CIDR as n2')
  tb.update('channel', { set: [claim('evil', '10.1.0.0/16')] }) // around no one's: accepted
  tb.update('channel', { set: [claim('late', '10.1.3.0/24')] })
  t.same(rejects.pop(), 'late: pod CIDR 10.1.3.0/24 overlaps evil\'s, which claimed it first', 'inside an earlier, wider claim')
  tb.update('channel', { set: [claim('far', '192.168.0.0/24')] })
  t.same(rejects.pop(), 'far: pod CIDR 192.168.0.0/24 is outside the cluster\'s 10.0.0.0/8')
  t.equal(tb.refused, 5, 'each refusal counted')
  t.same([...native.keys()].sort(), ['evil', 'n1', 'n2'], 'only what was accepted forwards')
  t.same(native.get('n1')?.cidrs.map((c) => c.length), [24], 'n1 keeps its CIDR')

  // A node moving its own CIDR is no conflict with itself; what it leaves is free for the next.
  tb.update('channel', { set: [claim('n1', '10.0.1.0/25', 2)] })
  t.equal(rejects.length, 0, 'n1 narrows its own CIDR')
  tb.update('channel', { set: [claim('n9', '10.0.1.128/25')] })
  t.equal(rejects.length, 0, 'the half n1 left is claimed by n9')
  tb.update('channel', { remove: ['evil'] })
  tb.update('channel', { set: [claim('late', '10.1.3.0/24', 2)] })
  t.equal(rejects.length, 0, 'once evil is gone, late\'s claim is free')
})

// With encryption on, a table that records every listener call.
function encrypting (strict: boolean, own = publicKeyOf(generatePrivateKey())): {
  table: PeerTable, pushes: Push[], calls: Array<{ changed: string[], removed: string[], rekeyed: string[] }>, rejects: string[]
} {
  const pushes: Push[] = []
  const rejects: string[] = []
  const calls: Array<{ changed: string[], removed: string[], rekeyed: string[] }> = []
  const table = new PeerTable({
    setTable: (tb) => { pushes.push({ whole: true, set: tb.peers.map((p) => p.name), remove: [] }) },
    updatePeers: (c) => { pushes.push({ whole: false, set: c.set.map((p) => p.name), remove: c.remove }) },
  }, [parseCidr('10.0.0.0/24') as Cidr], { self: 'n0', vni: 1, onReject: (n, why) => rejects.push(`${n}: ${why}`), encryption: { strict, publicKey: own, port: 51820 } })
  table.onChange((changed, removed, rekeyed) => calls.push({ changed: changed.map((p) => p.nodeName), removed, rekeyed: rekeyed.map((p) => p.nodeName) }))
  return { table, pushes, calls, rejects }
}

const keyed = (i: number, key: Buffer, version = 1): VtepRecord => ({ ...rec(i, 'channel', version), wgKey: key })

t.test('encryption states: wireguard with a key, plain without one, blocked without one when strict; counted', async (t) => {
  const [k1, k2] = [publicKeyOf(generatePrivateKey()), publicKeyOf(generatePrivateKey())]
  const { table: tb } = encrypting(false)
  tb.update('channel', { set: [keyed(1, k1), keyed(2, k2), rec(3)] })
  t.same(tb.list().map((p) => [p.nodeName, tb.encryptionOf(p)]), [['n1', 'wireguard'], ['n2', 'wireguard'], ['n3', 'plain']])
  t.same(tb.encryptionCounts(), { wireguard: 2, plain: 1, blocked: 0 })
  t.same(tb.get('n1')?.wgKey, k1, 'each peer carries its key')
  const strict = encrypting(true).table
  strict.update('channel', { set: [keyed(1, k1), rec(3)] })
  t.same(strict.list().map((p) => strict.encryptionOf(p)), ['wireguard', 'blocked'])
  t.same(strict.encryptionCounts(), { wireguard: 1, plain: 0, blocked: 1 })
  const { table: off } = table()
  off.update('channel', { set: [keyed(1, k1), rec(3)] })
  t.equal(off.encryptionCounts(), undefined, 'encryption none: no states at all')
  t.equal(off.encryptionOf(off.list()[0]), undefined)
  t.same(off.get('n1')?.wgKey, k1, 'the key is still kept (and persisted) for when it is switched on')
})

t.test('a key that changes updates the peer in place: no native push, no removal, reported as rekeyed', async (t) => {
  const [k1, k2] = [publicKeyOf(generatePrivateKey()), publicKeyOf(generatePrivateKey())]
  const { table: tb, pushes, calls } = encrypting(false)
  tb.update('channel', { set: [keyed(1, k1), rec(2)] })
  const since = tb.get('n1')?.since
  t.same(calls.pop(), { changed: ['n1', 'n2'], removed: [], rekeyed: [] })
  tb.update('channel', { set: [keyed(1, k2, 2)] })
  t.same(tb.get('n1')?.wgKey, k2, 'the new key')
  t.equal(tb.get('n1')?.since, since, 'the same peer, not re-added')
  t.equal(pushes.length, 1, 'forwarding unchanged: nothing pushed to the data plane')
  t.same(calls.pop(), { changed: [], removed: [], rekeyed: ['n1'] }, 'listeners (the state file, the data path) hear of it')
  tb.update('channel', { set: [rec(2, 'channel', 2)] })
  t.equal(calls.length, 0, 'the same record again: no call')
  // A key published or withdrawn changes how traffic to the peer goes: pushed, as a change.
  tb.update('channel', { set: [{ ...keyed(2, publicKeyOf(generatePrivateKey()), 3) }] })
  t.same(calls.pop(), { changed: ['n2'], removed: [], rekeyed: [] }, 'a key published for the first time (a node switching encryption on)')
  t.same(pushes.pop(), { whole: false, set: ['n2'], remove: [] }, 'the data plane now seals its traffic')
  tb.update('channel', { set: [rec(2, 'channel', 4)] })
  t.same(calls.pop(), { changed: ['n2'], removed: [], rekeyed: [] }, 'and withdrawn')
  t.same(pushes.pop(), { whole: false, set: ['n2'], remove: [] }, 'plain VXLAN again')
  t.equal(tb.encryptionOf(tb.get('n2') as VtepRecord), 'plain')
  tb.update('channel', { set: [{ ...keyed(1, k1, 3), port: 9999 }] })
  t.same(calls.pop(), { changed: ['n1'], removed: [], rekeyed: [] }, 'VTEP and key at once: a forwarding change, which carries the key')
})

t.test('a key names one peer: this node\'s own, or another peer\'s, refuses the record', async (t) => {
  const own = publicKeyOf(generatePrivateKey())
  const k1 = publicKeyOf(generatePrivateKey())
  const { table: tb, rejects } = encrypting(false, own)
  tb.update('channel', { set: [keyed(1, own)] })
  t.same(rejects.pop(), 'n1: WireGuard public key is this node\'s own (a copied key file?)')
  tb.update('channel', { set: [keyed(1, k1), keyed(2, k1)] })
  t.same(rejects.pop(), 'n2: WireGuard public key is n1\'s, which published it first')
  t.same(tb.list().map((p) => p.nodeName), ['n1'])
  tb.update('channel', { set: [keyed(1, publicKeyOf(generatePrivateKey()), 2)] }) // n1 rotates
  tb.update('channel', { set: [keyed(2, k1)] })
  t.equal(rejects.length, 0, 'a key n1 no longer holds is free')
  tb.update('channel', { remove: ['n2'] })
  tb.update('channel', { set: [keyed(3, k1)] })
  t.equal(rejects.length, 0, 'nor one held by a peer that is gone')
  const { table: off, rejects: none } = table()
  off.update('channel', { set: [keyed(1, k1), keyed(2, k1)] })
  t.equal(none.length, 0, 'with encryption off keys are not checked: they are not used')
})

t.test('a WireGuard-only peer (no VTEP MAC): taken when this node encrypts, at its own port or ours; refused, saying why, when it does not', async (t) => {
  const key = publicKeyOf(generatePrivateKey())
  const wgOnly = (i: number, wgPort?: number): VtepRecord => {
    const r = fromWire({ node: `n${i}`, cidrs: [`10.0.${i}.0/24`], addr: `192.0.2.${i}`, port: 8472, vni: 1, ver: 1, wg: publicKeyOf(generatePrivateKey()).toString('base64'), ...(wgPort ? { wgPort } : {}) }, 'kubernetes')
    if (typeof r === 'string') throw new Error(r)
    return r
  }
  const native: NativePeer[] = []
  const tb = new PeerTable({ setTable: (x) => { native.push(...x.peers) }, updatePeers: (c) => { native.push(...c.set) } },
    [parseCidr('10.0.0.0/24') as Cidr], { self: 'n0', vni: 1, encryption: { strict: false, publicKey: key, port: 51820 } })
  tb.update('kubernetes', { set: [wgOnly(1, 51821), wgOnly(2)] })
  t.same(tb.list().map((p) => tb.encryptionOf(p)), ['wireguard', 'wireguard'])
  t.same(native.map((p) => [p.name, p.encryption, p.wgPort]), [['n1', 'wireguard', 51821], ['n2', 'wireguard', 51820]], 'its port, else this node\'s')
  const { table: off, rejects } = table()
  off.update('kubernetes', { set: [wgOnly(3)] })
  t.equal(off.size, 0)
  t.same(rejects, ['n3: speaks WireGuard only (no VTEP MAC), and this node does not encrypt: set "encryption": "wireguard"'])
})
