// The rest of finding 9 of the security review: a new pod's packets left before the model knew
// it (the API server learns a pod's IPs only after its CNI ADD), so a pod whose policies isolate
// its egress could send freely for its first second. Now flatnet-cni's ADD puts the pod, with
// the addresses IPAM just gave it, into the node's table before the kubelet starts its
// containers; a local address the table does not know can neither send nor be reached.
// Pods wired by the conflist as the runtime does, named in CNI_ARGS as the kubelet names them;
// NetworkPolicy from the lab's API server, as the DaemonSet runs it.
import t from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { LabNode } from '../../src/lab/cluster.js'
import { realNamespace, realNetworkPolicy, realPod } from '../../src/lab/kube-objects.js'
import type { Namespace } from '../../src/lab/netns.js'
import { until } from '../../src/lab/until.js'
import type { PolicyState } from '../../src/policy/enforce.js'
import { type Attachment, CniError, CniRuntime } from '../lib/cni.js'
import { pingFrom } from '../lib/echo.js'
import { apiPolicyNode, labApiServer } from '../lib/kube.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('ping', 'cni-plugins')

t.test('CNI ADD puts a pod\'s policies in before it runs; an unknown local pod neither sends nor is reached', async (t) => {
  const node = apiPolicyNode(t)
  const cluster = await withCluster(t, { nodes: [node, node], cniPods: true, underlay: 'bridge', tag: 'admit' })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const api = await labApiServer(t, cluster)

  // Pods as the scheduler leaves them: bound to a node, no IP yet. x/locked may send nowhere.
  await api.put(realNamespace('x', { ns: 'x' }))
  const pod = (name: string, labels: Record<string, string>, on: LabNode): Promise<number> =>
    api.put(realPod({ namespace: 'x', name, labels, nodeName: on.name, ips: [], phase: 'Pending' }))
  await pod('target', { app: 'target' }, n2)
  await pod('free', { app: 'free' }, n1)
  await pod('locked', { app: 'locked' }, n1)
  await api.put(realNetworkPolicy('x', 'locked-egress', { podSelector: { matchLabels: { app: 'locked' } }, policyTypes: ['Egress'], egress: [] }))
  const policyOf = async (n: LabNode): Promise<PolicyState> => ((await queryControl(join(cluster.dir, `${n.name}.sock`), 'policy')) as unknown as { policy: PolicyState }).policy
  t.ok(await until(async () => (await Promise.all(cluster.nodes.map(policyOf))).every((s) => s.applies > 0), 30_000) >= 0, 'both nodes applied the API server\'s objects')

  const runtimes = new Map(cluster.nodes.map((n) => [n, new CniRuntime(n.ns, join(n.cniDir, 'net.d', '10-flatnet.conflist'))]))
  const attach = async (n: LabNode, name: string, args: string | undefined): Promise<{ ns: Namespace, a: Attachment, ip: string, ms: number }> => {
    const ns = cluster.ns(`${n.name}${name}`)
    const a = { containerId: `${name}-${cluster.tag}`, netns: `/var/run/netns/${ns.name}`, ifname: 'eth0', args }
    const started = performance.now()
    const r = await runtimes.get(n)!.add(a)
    return { ns, a, ip: r.ips?.[0]?.address.split('/')[0] ?? '', ms: performance.now() - started }
  }
  const k8s = (name: string): string => `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${name}-${cluster.tag}`

  const target = await attach(n2, 'target', k8s('target'))
  const free = await attach(n1, 'free', k8s('free'))
  t.comment(`ADD with admission: ${free.ms.toFixed(0)} ms (the pod into the table, nft applied)`)
  // The first packet after ADD, before the API server knows either pod's IP: no gap.
  t.ok(await pingFrom(free.ns, target.ip, 1), `x/free reaches x/target with its first ping after ADD (${free.ip} -> ${target.ip})`)

  const locked = await attach(n1, 'locked', k8s('locked'))
  t.notOk(await pingFrom(locked.ns, target.ip, 2), 'x/locked sends nothing from its first packet: its egress policy was in before it ran')

  // A pod the API server does not have: ADD waits for its watch event a while, then refuses.
  const refused = await attach(n1, 'ghost', k8s('ghost')).then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof CniError && refused.plugin === 'flatnet-cni', 'ADD of a pod the API server does not have: refused by flatnet-cni')
  t.match((refused as CniError).output, /"code":11.*the Pod x\/ghost is not known to this node yet/, 'try again later, and why')

  // Attached without naming a pod (a runtime that does not): the table never learns it.
  const anon = await attach(n1, 'anon', undefined)
  t.notOk(await pingFrom(anon.ns, target.ip, 2), 'an address the table does not know cannot send')
  t.notOk(await pingFrom(target.ns, anon.ip, 2), 'and cannot be reached')

  // The kubelet reports the IPs: the API server's word replaces the stand-in, nothing changes.
  await api.put(realPod({ namespace: 'x', name: 'free', labels: { app: 'free' }, nodeName: n1.name, ips: [free.ip] }))
  await api.put(realPod({ namespace: 'x', name: 'target', labels: { app: 'target' }, nodeName: n2.name, ips: [target.ip] }))
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.ok(await pingFrom(free.ns, target.ip, 1), 'x/free still reaches x/target once the API server has both IPs')
})
