// flatnet_policy_enforced: present only where NetworkPolicy is configured, so an alert on
// `flatnet_policy_enforced == 0` fires where enforcement failed, never on nodes without policy.
import t from 'tap'
import { dataplaneMetrics, type HealthChecks } from '../../src/health.js'
import type { Dataplane } from '../../src/native.js'
import type { PolicyState } from '../../src/policy/enforce.js'
import type { EncryptionState } from '../../src/peer-table.js'

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
