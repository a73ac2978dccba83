// NetworkPolicy at a mid-size cluster, as the DaemonSet runs it: one lab node against
// the lab's API server serving 1,000 nodes, 30,030 pods of real size (~190 MB of JSON)
// and 100 policies. After churn (pod changes elsewhere, on this node, policy changes), the
// table the node kept change by change must hold what one built from scratch from the
// server's objects as they are now holds: the reflectors missed nothing, and no change
// was lost or misapplied on the way to nftables, through a relist after 410 Gone too. Its
// peak RSS must stay under the DaemonSet's memory limit. Speed is bench:scale's business, not this test's.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { clusterPod, clusterPolicy, type ClusterSpec } from '../../src/lab/kube-cluster.js'
import { scaleLab } from '../../src/lab/scale-lab.js'
import { Namespace as Netns } from '../../src/lab/netns.js'
import { tableOf } from '../../src/policy/enforce.js'
import { peakRssMB } from '../../bench/process-usage.js'
import { daemonSetEnv, daemonSetMemoryLimit } from '../lib/daemonset.js'
import { labSkipReason } from '../lib/lab.js'
import { tableIn } from '../policy/table-canon.js'

t.setTimeout(600_000)

t.test('1,000 nodes, 30,030 pods, 100 policies: after churn, the applied model is the server\'s', async (t) => {
  const why = labSkipReason('the mid-size NetworkPolicy test', ['nft'])
  if (why) return t.pass(`skipped: ${why}`, { skip: true })
  const spec: ClusterSpec = { nodes: 1000, podsPerNode: 30, namespaces: 100, policies: 100, self: { name: '', podCIDR: '' } }
  // The daemon runs with the DaemonSet's environment: its V8 heap cap is part of what keeps it under the limit.
  const lab = await scaleLab(spec, { tag: 'polscale', apiHeapMB: 4096, launcher: ['env', ...daemonSetEnv()] })
  t.teardown(lab.destroy)
  const { api, node } = lab
  const all = { Namespace: lab.generated.resourceVersion, Pod: lab.generated.resourceVersion, NetworkPolicy: lab.generated.resourceVersion }
  await lab.applied(all)
  t.equal(await lab.peers(), spec.nodes, `the peer table holds all ${spec.nodes} nodes`)

  // Churn: pods elsewhere relabelled (100/s for 10 s), this node's pods relabelled,
  // policies changed; last (so that no later change rebuilds the model anyway), pods
  // elsewhere moved into the peer sets of the policies selecting this node's pods, and deleted.
  const churn = await api.churn(spec, 100, 10)
  let pod = churn.lastVersion
  for (let k = 0; k < 10; k++) pod = await api.put(clusterPod(spec, -1, k, { rev: `local${k}` }))
  let policy = 0
  for (let k = 0; k < 5; k++) {
    const p = clusterPolicy(spec, k)
    ;((p.spec as { ingress: Array<{ ports: unknown[] }> }).ingress[0].ports).push({ port: 7000 + k })
    policy = await api.put(p)
  }
  await lab.applied({ Pod: pod, NetworkPolicy: policy })
  let removed = 0
  for (let i = 0; i < 40; i++) {
    const p = clusterPod(spec, i, 0)
    const ns = Number((p.metadata.namespace as string).replace('ns-', ''))
    // Policy k lives in ns-k and admits app-(k+1) of its namespace (kube-cluster.ts).
    if (i % 2 === 0) {
      pod = await api.put(clusterPod(spec, i, 0, { app: `app-${(ns + 1) % 50}` }))
    } else {
      pod = await api.delete('Pod', p.metadata.name, p.metadata.namespace as string)
      removed++
    }
  }
  await lab.applied({ Pod: pod, NetworkPolicy: policy })

  // A 410 at this size, as after an etcd compaction and an API server restart: history
  // forgotten, watches closed. The reflectors must relist, and the pods deleted meanwhile
  // must leave the table; the relist must not take the peak past the limit.
  const from = (await api.requestLog()).length
  await api.compact()
  await api.closeWatches()
  for (let i = 40; i < 50; i++) {
    const p = clusterPod(spec, i, 0)
    pod = await api.delete('Pod', p.metadata.name, p.metadata.namespace as string)
    removed++
  }
  await lab.applied({ Pod: pod, NetworkPolicy: policy })
  const relists = (await api.requestLog(from)).filter((r) => r.kind === 'Pod' && r.method === 'GET' && !r.watch && r.query.continue === undefined)
  t.ok(relists.length >= 1, `the Pod reflector relisted after the 410 (${relists.length} list${relists.length === 1 ? '' : 's'})`)

  // The table the node kept, change by change, against one built from scratch from the server's objects as they are now.
  const server = await api.policyObjects()
  t.equal(server.pods.length, spec.nodes * spec.podsPerNode + spec.podsPerNode - removed, `the server holds ${server.pods.length} pods`)
  const table = tableOf({ nodeName: node.name, podCIDRs: [node.podCIDR] }, server)
  const counts = table.counts()
  const script = table.script()
  t.ok(counts.localPods === spec.podsPerNode && counts.rules > 0, `a table of substance: ${counts.localPods} local pods, ${counts.rules} rules, ${(script.length / 1e3).toFixed(0)} KB`)
  const scratch = Netns.create(`flatnet-polscale-scratch-${process.pid}`)
  t.teardown(async () => await scratch.destroy())
  const file = join(lab.cluster.dir, 'scratch.nft')
  writeFileSync(file, script)
  await scratch.execAsync('nft', ['-f', file], 120_000)
  const want = await tableIn(scratch)
  const got = await tableIn(node.ns)
  t.ok(JSON.stringify(got) === JSON.stringify(want), `the node's table is the one built from the server's objects now (${Object.values(want.maps).reduce((n, m) => n + Object.keys(m).length, 0)} map entries, ${want.sets} sets, ${want.chains} chains)`)

  const peak = peakRssMB(node.daemon?.pid as number)
  const limit = daemonSetMemoryLimit() / 2 ** 20
  t.ok(peak < limit, `peak RSS ${peak.toFixed(0)} MiB is under the DaemonSet's limit of ${limit} MiB`)
})
