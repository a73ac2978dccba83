// The native forwarding table as the control plane changes it in place: random
// set / replace / remove sequences (and whole-table diffs) checked after every step
// against a plain model, peers sharing CIDRs and VTEP addresses included; and the
// workers' lock-free reads racing a writer that frees what it replaced (run under
// ASan in CI: `npm run test:asan test/unit`).
import t from 'tap'
import { type NativePeer, type NativeTable } from '../../src/native.js'
import { testing } from '../lib/testing-addon.js'
import { contains, formatCidr, parseAddress, parseCidr, type Address, type Cidr } from '../../src/net/cidr.js'

const { Table, fibStress } = testing

// The documented behaviour, kept simple: per CIDR and per VTEP address, every peer
// claiming it in claim order (a peer that changes keeps its place); the last one wins.
interface Claims { cidr?: Cidr, names: string[] }

class Model {
  readonly peers = new Map<string, { cidrs: Cidr[], vtep: string }>()
  private readonly routes = new Map<string, Claims>()
  private readonly vteps = new Map<string, Claims>()

  set (p: NativePeer): void {
    const old = this.peers.get(p.name)
    const cidrs = p.cidrs.map((c): Cidr => ({ family: c.address.length === 4 ? 4 : 6, bytes: c.address, length: c.length }))
    const vtep = p.address.toString('hex')
    for (const c of cidrs) claim(this.routes, formatCidr(c), p.name, c)
    claim(this.vteps, vtep, p.name)
    for (const c of old?.cidrs ?? []) if (!cidrs.some((n) => formatCidr(n) === formatCidr(c))) release(this.routes, formatCidr(c), p.name)
    if (old && old.vtep !== vtep) release(this.vteps, old.vtep, p.name)
    this.peers.set(p.name, { cidrs, vtep })
  }

  remove (name: string): void {
    const old = this.peers.get(name)
    if (!old) return
    for (const c of old.cidrs) release(this.routes, formatCidr(c), name)
    release(this.vteps, old.vtep, name)
    this.peers.delete(name)
  }

  setTable (table: NativeTable): void {
    for (const p of table.peers) this.set(p)
    const keep = new Set(table.peers.map((p) => p.name))
    for (const name of [...this.peers.keys()]) if (!keep.has(name)) this.remove(name)
  }

  lookup (a: Address): string | null {
    let best: Claims | undefined
    for (const r of this.routes.values()) {
      if (r.cidr && contains(r.cidr, a) && (!best?.cidr || r.cidr.length > best.cidr.length)) best = r
    }
    return best?.names.at(-1) ?? null
  }

  peerByAddress (a: Address): string | null {
    return this.vteps.get(a.bytes.toString('hex'))?.names.at(-1) ?? null
  }
}

function claim (map: Map<string, Claims>, key: string, name: string, cidr?: Cidr): void {
  const c = map.get(key) ?? { cidr, names: [] }
  if (!c.names.includes(name)) c.names.push(name)
  map.set(key, c)
}

function release (map: Map<string, Claims>, key: string, name: string): void {
  const c = map.get(key)
  if (!c) return
  c.names = c.names.filter((n) => n !== name)
  if (c.names.length === 0) map.delete(key)
}

const address = (text: string): Address => parseAddress(text) as Address

// A small world so that peers often collide: 12 names, 6 VTEP addresses, CIDRs
// nested (/16 under /24 under /25) and in both families.
const CIDRS = ['10.0.0.0/16', '10.0.1.0/24', '10.0.2.0/24', '10.0.1.0/25', '10.0.1.128/25', '10.1.0.0/24',
  'fd00:1::/64', 'fd00:2::/64', 'fd00::/48', 'fd00:1::/80'].map((c) => parseCidr(c) as Cidr)
const VTEPS = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '2001:db8::1', '2001:db8::2', '198.51.100.7'].map(address)
const PROBES = ['10.0.1.1', '10.0.1.200', '10.0.2.9', '10.0.3.1', '10.1.0.1', '10.2.0.1', 'fd00:1::1', 'fd00:1::1:0:0:1',
  'fd00:2::5', 'fd00:3::1', 'fd01::1', '192.0.2.1'].map(address)

function random (seed: number): () => number { // mulberry32: the same sequence every run
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('random changes: lookups match the model after every step', async (t) => {
  const rnd = random(7)
  const pick = <T>(list: T[]): T => list[Math.floor(rnd() * list.length)]
  const peer = (): NativePeer => ({
    name: `n${Math.floor(rnd() * 12)}`,
    address: pick(VTEPS).bytes,
    port: 8472 + Math.floor(rnd() * 3),
    mac: Buffer.from([2, 0, 0, 0, 0, Math.floor(rnd() * 256)]),
    cidrs: Array.from({ length: Math.floor(rnd() * 3) }, () => pick(CIDRS)).map((c) => ({ address: c.bytes, length: c.length })),
  })
  const table = new Table()
  const model = new Model()
  const local = [{ address: address('10.9.0.0').bytes, length: 24 }]
  let mismatches = 0
  for (let step = 0; step < 3000; step++) {
    const r = rnd()
    if (r < 0.05) {
      const tb = { local, peers: Array.from({ length: Math.floor(rnd() * 8) }, peer).filter((p, i, all) => all.findIndex((q) => q.name === p.name) === i) }
      table.setTable(tb)
      model.setTable(tb)
    } else {
      const changes = { set: Array.from({ length: Math.floor(rnd() * 3) }, peer), remove: r < 0.4 ? [`n${Math.floor(rnd() * 12)}`] : [] }
      changes.set = changes.set.filter((p, i, all) => all.findIndex((q) => q.name === p.name) === i && !changes.remove.includes(p.name))
      table.updatePeers(changes)
      for (const p of changes.set) model.set(p)
      for (const name of changes.remove) model.remove(name)
    }
    for (const a of PROBES) {
      const got = [table.lookup(a.bytes), table.peerByAddress(a.bytes)]
      const want = [model.lookup(a), model.peerByAddress(a)]
      if (got[0] !== want[0] || got[1] !== want[1]) mismatches++
    }
    for (const a of VTEPS) if (table.peerByAddress(a.bytes) !== model.peerByAddress(a)) mismatches++
    if ([...table.peers()].sort().join() !== [...model.peers.keys()].sort().join()) mismatches++
    if (mismatches) { t.fail(`step ${step}: native and model differ`); break }
  }
  t.equal(mismatches, 0, '3,000 steps, every probe agrees')
  t.ok(table.isLocal(address('10.9.0.77').bytes) && !table.isLocal(address('10.0.1.1').bytes), 'local CIDRs from setTable')
})

t.test('a node replaced by another with the same CIDR and VTEP: the newer claim, then the older again', async (t) => {
  const table = new Table()
  const p = (name: string, port: number): NativePeer => ({ name, address: address('192.0.2.1').bytes, port, mac: Buffer.alloc(6), cidrs: [{ address: address('10.0.1.0').bytes, length: 24 }] })
  table.setTable({ local: [], peers: [p('old', 1)] })
  table.updatePeers({ set: [p('new', 2)], remove: [] })
  t.same([table.lookup(address('10.0.1.5').bytes), table.peerByAddress(address('192.0.2.1').bytes)], ['new', 'new'])
  table.updatePeers({ set: [p('old', 3)], remove: [] })
  t.equal(table.lookup(address('10.0.1.5').bytes), 'new', 'a change keeps the older claim\'s place')
  table.updatePeers({ set: [], remove: ['new'] })
  t.same([table.lookup(address('10.0.1.5').bytes), table.peerByAddress(address('192.0.2.1').bytes)], ['old', 'old'])
  table.setTable({ local: [], peers: [] })
  t.same([table.lookup(address('10.0.1.5').bytes), table.peers()], [null, []])
})

t.test('readers racing the writer: never a freed peer, never a wrong one', async (t) => {
  const r = fibStress(1500)
  t.ok(r.updates > 1000 && r.reclaims > 100, `${r.updates} updates, ${r.reclaims} grace periods`)
  t.ok(r.lookups > 100_000, `${r.lookups} lookups by 2 reader threads`)
  t.equal(r.wrong, 0, 'every peer found owns the destination')
  t.equal(r.missing, 0, 'a peer being replaced is always found')
})
