// NetworkPolicy at a mid-size cluster, as the DaemonSet runs it: one lab node against
// the lab's API server serving 1,000 nodes, 30,030 pods of real size (~190 MB of JSON)
// and 100 policies. After churn (pod changes elsewhere, on this node, policy changes), the
// node's ruleset built from the objects it applied must equal the one built from the
// server's objects as they are now: the reflectors missed nothing, and every change the
// relevance filter passed over really left the model as it was. Its peak RSS must stay
// under the DaemonSet's memory limit. Speed is bench:scale's business, not this test's.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { queryControl } from '../../src/control-socket.js'
import { clusterPod, clusterPolicy, type ClusterSpec } from '../../src/lab/kube-cluster.js'
import { scaleLab } from '../../src/lab/scale-lab.js'
import { compile } from '../../src/policy/compile.js'
import type { Manifests } from '../../src/policy/manifests.js'
import { policyRuleset } from '../../src/policy/nftables.js'
import { peakRssMB } from '../../bench/process-usage.js'
import { labSkipReason } from '../lib/lab.js'

t.setTimeout(600_000)

/** The flatnet container's memory limit in deploy/daemonset.yaml, in MiB. */
function manifestLimitMiB (): number {
  const text = readFileSync(join(process.cwd(), 'deploy', 'daemonset.yaml'), 'utf8')
  const ds = parseAllDocuments(text).map((d) => d.toJS()).find((d) => d?.kind === 'DaemonSet')
  const limit = String(ds.spec.template.spec.containers.find((c: { name: string }) => c.name === 'flatnet').resources.limits.memory)
  const m = /^(\d+)Mi$/.exec(limit)
  if (!m) throw new Error(`memory limit ${limit}: expected NNNMi`)
  return Number(m[1])
}

t.test('1,000 nodes, 30,030 pods, 100 policies: after churn, the applied model is the server\'s', async (t) => {
  const why = labSkipReason('the mid-size NetworkPolicy test', ['nft'])
  if (why) return t.pass(`skipped: ${why}`, { skip: true })
  const spec: ClusterSpec = { nodes: 1000, podsPerNode: 30, namespaces: 100, policies: 100, self: { name: '', podCIDR: '' } }
  const lab = await scaleLab(spec, { tag: 'polscale', apiHeapMB: 4096 })
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

  const nodePods = { nodeName: node.name, podCIDRs: [node.podCIDR] }
  const ruleset = (m: Manifests): ReturnType<typeof policyRuleset> => policyRuleset(compile(m.namespaces, m.pods, m.policies, { node: node.name }), nodePods)
  const server = await api.policyObjects()
  // A cluster's objects run to megabytes: the frame limit `flatnet policy --node` uses.
  const { objects } = await queryControl(join(lab.cluster.dir, `${node.name}.sock`), 'policy-objects', 30_000, 1 << 28) as unknown as { objects: Manifests }
  t.equal(server.pods.length, spec.nodes * spec.podsPerNode + spec.podsPerNode - removed, `the server holds ${server.pods.length} pods`)
  const want = ruleset(server)
  t.ok(want.pods === spec.podsPerNode && want.rules > 0, `a ruleset of substance: ${want.pods} local pods, ${want.rules} allow entries, ${(want.script.length / 1e3).toFixed(0)} KB`)
  t.ok(ruleset(objects).script === want.script, 'the ruleset from the node\'s applied objects is the one from the server\'s objects now')

  const peak = peakRssMB(node.daemon?.pid as number)
  const limit = manifestLimitMiB()
  t.ok(peak < limit, `peak RSS ${peak.toFixed(0)} MiB is under the DaemonSet's limit of ${limit} MiB`)
})
