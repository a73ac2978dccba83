// Peer table scale: ns per update of one peer (including the table push) and per
// control-plane lookup, at 10 / 1,000 / 5,000 peers. With FLATNET_BENCH_NATIVE=1 (root,
// run inside a throwaway namespace: it opens a TUN) the push goes to the real native
// setTable; otherwise to a no-op, which measures the TypeScript side alone.
// Run: node dist/bench/peers.js
import { PeerTable } from '../src/peer-table.js'
import { fromWire, type VtepRecord } from '../src/control/vtep.js'
import { parseCidr, type Cidr } from '../src/net/cidr.js'
import type { NativePeerChanges, NativeTable } from '../src/native.js'

function rec (i: number, port = 8472): VtepRecord {
  const r = fromWire({ node: `n${i}`, cidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`], addr: `192.0.2.${i & 255}`, port, vni: 1, mac: '02:00:00:00:00:09', ver: 1 }, 'channel')
  if (typeof r === 'string') throw new Error(r)
  return r
}

async function sink (): Promise<{ setTable: (t: NativeTable) => void, updatePeers: (c: NativePeerChanges) => void, kind: string }> {
  if (process.env.FLATNET_BENCH_NATIVE !== '1') return { setTable: () => {}, updatePeers: () => {}, kind: 'no-op push (TypeScript side only)' }
  const { addon } = await import('../src/native.js')
  const dp = new addon.Dataplane({ tunName: 'flbench0', offloads: false, underlayAddress: Buffer.from([127, 0, 0, 1]), port: 18472, vni: 1, vtepMAC: Buffer.from([2, 0, 0, 0, 0, 1]), sendSockets: 1, batch: 32, busyPollMicros: 0 })
  process.on('exit', () => dp.stop())
  return { setTable: (t) => dp.setTable(t), updatePeers: (c) => dp.updatePeers(c), kind: 'native updatePeers' }
}

const dp = await sink()
console.log(`push: ${dp.kind}`)
for (const n of [10, 1000, 5000]) {
  const table = new PeerTable(dp, [parseCidr('172.16.0.0/24') as Cidr], { self: 'self', vni: 1 })
  table.update('channel', { set: Array.from({ length: n }, (_, i) => rec(i + 1)) })
  const updates = Math.max(200, Math.min(20_000, 2_000_000 / n))
  const variants = [rec(1, 8472), rec(1, 8473)]
  let t0 = process.hrtime.bigint()
  for (let i = 0; i < updates; i++) table.update('channel', { set: [variants[i & 1]] }) // a real change each time
  const updateNs = Number(process.hrtime.bigint() - t0) / updates
  const lookups = 1_000_000
  const names = Array.from({ length: 64 }, (_, i) => `n${(i * 7919) % n + 1}`)
  let hits = 0
  t0 = process.hrtime.bigint()
  for (let i = 0; i < lookups; i++) if (table.get(names[i & 63])) hits++
  const lookupNs = Number(process.hrtime.bigint() - t0) / lookups
  console.log(`${String(n).padStart(5)} peers: update of one peer ${updateNs.toFixed(0).padStart(9)} ns   lookup ${lookupNs.toFixed(1).padStart(6)} ns  (${hits === lookups ? 'ok' : 'miss'})`)
}
