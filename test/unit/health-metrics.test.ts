// flatnet_policy_enforced: present only where NetworkPolicy is configured, so an alert on
// `flatnet_policy_enforced == 0` fires where enforcement failed, never on nodes without policy.
import t from 'tap'
import { dataplaneMetrics, type HealthChecks } from '../../src/health.js'
import type { Dataplane } from '../../src/native.js'
import type { PolicyState } from '../../src/policy/enforce.js'
import type { EncryptionState } from '../../src/peer-table.js'
import { MAX_PEER_SERIES } from '../../src/reach/peer-health.js'

const state: PolicyState = { applies: 1, rebuilds: 0, policies: 2, localPods: 3, rules: 4, lastApplyMs: 5, skipped: [] }

async function enforced (policy: PolicyState | undefined): Promise<number[]> {
  const checks = { policy: () => policy } as unknown as HealthChecks
  const metric = dataplaneMetrics({} as Dataplane, checks).getSingleMetric('flatnet_policy_enforced')
  return (await metric?.get())?.values.map((v) => v.value) ?? []
}

t.test('flatnet_policy_enforced', async (t) => {
  t.same(await enforced(undefined), [], 'NetworkPolicy not configured: no sample')
  t.same(await enforced(state), [1], 'enforced')
  t.same(await enforced({ ...state, error: 'nft: table refused' }), [0], 'enforcement failed')
})

t.test('flatnet_peers_encryption: peers by state with encryption on; no series at all with encryption none', async (t) => {
  const samples = async (counts: Record<EncryptionState, number> | undefined): Promise<Array<[string, number]>> => {
    const checks = { policy: () => undefined, encryption: () => counts } as unknown as HealthChecks
    const metric = dataplaneMetrics({} as Dataplane, checks).getSingleMetric('flatnet_peers_encryption')
    return (await metric?.get())?.values.map((v) => [String(v.labels.state), v.value] as [string, number]) ?? []
  }
  t.same(await samples(undefined), [], 'encryption none: absent, as policy metrics are without NetworkPolicy')
  t.same(await samples({ wireguard: 3, plain: 1, blocked: 0 }), [['wireguard', 3], ['plain', 1], ['blocked', 0]])
})

t.test('per-peer series: the busiest peers only, however many the node has; the counters read once per render', async (t) => {
  // 5,000 peers, as a node of a 5,000-node cluster has: peer i carried i bytes each way.
  const peers = Array.from({ length: 5000 }, (_, i) => ({ name: `node-${i}`, txPackets: i, txBytes: i, rxPackets: i, rxBytes: i }))
  let reads = 0
  const dataplane = {
    // As the addon picks them: the maxPeers busiest, busiest first.
    stats: (maxPeers = Infinity) => {
      reads++
      const w = { packets: 0, bytes: 0, batches: 0, syscalls: 0, coalesced: 0, partialChecksums: 0 }
      return { tx: w, rx: w, drops: {}, peers: [...peers].sort((a, b) => b.txBytes + b.rxBytes - a.txBytes - a.rxBytes).slice(0, maxPeers), queues: [] }
    },
    info: () => ({}),
  } as unknown as Dataplane
  const checks = { policy: () => undefined, kernelDrops: () => ({}), peers: () => 5000, peersRefused: () => 0, sourceHealthy: () => ({}), ready: () => undefined, live: () => undefined } as unknown as HealthChecks
  const registry = dataplaneMetrics(dataplane, checks)
  const bytes = (await registry.getSingleMetric('flatnet_peer_bytes_total')?.get())?.values ?? []
  const named = [...new Set(bytes.map((v) => String(v.labels.peer)))]
  t.equal(named.length, MAX_PEER_SERIES, `${MAX_PEER_SERIES} peers have series, not 5,000`)
  t.same(named.slice(0, 3), ['node-4999', 'node-4998', 'node-4997'], 'the busiest first')
  t.notOk(named.includes('node-0'), 'an idle peer has none')
  await new Promise((resolve) => setImmediate(resolve))
  const before = reads
  await registry.metrics()
  t.equal(reads - before, 1, 'one read of the native counters for the whole render')
})
