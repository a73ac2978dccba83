// Peer table scale, at 10 / 1,000 / 5,000 peers: ns per update of one peer (the
// PeerTable and its push of that one peer), per control-plane lookup (PeerTable.get),
// and per packet for the workers' route lookup in the native table (every peer's
// pod CIDR in turn). The push goes first to a no-op, which measures the TypeScript
// side alone; then, as root, to a running Dataplane (updatePeers, with its wait for
// the workers), in a child run inside a throwaway namespace because it opens a TUN.
// Run: sudo npm run bench:peers
import { PeerTable } from '../src/peer-table.js'
import { fromWire, type VtepRecord } from '../src/control/vtep.js'
import { parseCidr, type Cidr } from '../src/net/cidr.js'
import { addon, type Dataplane } from '../src/native.js'
import { testing } from '../test/lib/testing-addon.js'
import { labUnavailable, Namespace, reapOnSignals } from '../src/lab/netns.js'

type Sink = Pick<Dataplane, 'setTable' | 'updatePeers'>

function rec (i: number, port = 8472): VtepRecord {
  const r = fromWire({ node: `n${i}`, cidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`], addr: `192.0.2.${i & 255}`, port, vni: 1, mac: '02:00:00:00:00:09', ver: 1 }, 'channel')
  if (typeof r === 'string') throw new Error(r)
  return r
}

function sink (): { dp: Sink, kind: string } {
  if (!NATIVE) return { dp: { setTable: () => {}, updatePeers: () => {} }, kind: 'no-op push (TypeScript side only)' }
  const dp = new addon.Dataplane({ tunName: 'flbench0', offloads: false, underlayAddress: Buffer.from([127, 0, 0, 1]), port: 18472, vni: 1, vtepMAC: Buffer.from([2, 0, 0, 0, 0, 1]), sendSockets: 1, batch: 32, busyPollMicros: 0, workers: 'pipeline', memoryBudget: 0 })
  dp.start()
  process.on('exit', () => dp.stop())
  return { dp, kind: 'native updatePeers on a running Dataplane' }
}

const NATIVE = process.env.FLATNET_BENCH_NATIVE === '1'
const { dp, kind } = sink()
const local = [parseCidr('172.16.0.0/24') as Cidr]
console.log(`push: ${kind}`)
for (const n of [10, 1000, 5000]) {
  const table = new PeerTable(dp, local, { self: 'self', vni: 1 })
  const fib = new testing.Table() // the same peers in a native table of its own, for the packet lookups
  const records = Array.from({ length: n }, (_, i) => rec(i + 1))
  table.update('channel', { set: records })
  new PeerTable(fib, local, { self: 'self', vni: 1 }).update('channel', { set: records })

  const updates = 20_000
  const variants = [rec(1, 8472), rec(1, 8473)]
  const change = (i: number): void => table.update('channel', { set: [variants[i & 1]] }) // a real change each time
  for (let i = 0; i < 2000; i++) change(i) // warm-up: the first size would pay for the JIT
  let t0 = process.hrtime.bigint()
  for (let i = 0; i < updates; i++) change(i)
  const updateNs = Number(process.hrtime.bigint() - t0) / updates

  const lookups = 1_000_000
  const names = Array.from({ length: 64 }, (_, i) => `n${(i * 7919) % n + 1}`)
  let hits = 0
  t0 = process.hrtime.bigint()
  for (let i = 0; i < lookups; i++) if (table.get(names[i & 63])) hits++
  const lookupNs = Number(process.hrtime.bigint() - t0) / lookups

  const dsts = records.map((_, k) => { const i = (k * 7919) % n + 1; return Buffer.from([10, (i >> 8) & 255, i & 255, 1]) })
  const repeat = Math.ceil(4_000_000 / n)
  t0 = process.hrtime.bigint()
  const routed = fib.benchLookup(dsts, repeat)
  const fibNs = Number(process.hrtime.bigint() - t0) / (repeat * n)
  const ok = hits === lookups && routed === repeat * n ? 'ok' : 'miss'
  console.log(`${String(n).padStart(5)} peers: update of one peer ${updateNs.toFixed(0).padStart(6)} ns   lookup ${lookupNs.toFixed(1).padStart(5)} ns   fib lookup ${fibNs.toFixed(1).padStart(5)} ns/packet  (${ok})`)
}

if (!NATIVE) {
  const why = labUnavailable()
  if (why) {
    console.log(`native push skipped: ${why}`)
  } else {
    reapOnSignals()
    const ns = Namespace.create(`flatnet-peers${process.pid}`)
    try {
      await ns.execAsync('env', ['FLATNET_BENCH_NATIVE=1', process.execPath, process.argv[1]], 300_000).then((out) => process.stdout.write(out))
    } finally {
      await ns.destroy()
    }
  }
}
