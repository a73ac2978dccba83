// The lab's Kubernetes objects: of the size real ones are (a kubeadm cluster's Node,
// a Deployment's Pod, a Namespace, a kubectl-applied NetworkPolicy, within 15%), the
// same from run to run, and with every field a daemon reads exactly as passed.
import t, { type Test } from 'tap'
import { realNamespace, realNetworkPolicy, realNode, realPod } from '../../src/lab/kube-objects.js'

const size = (o: unknown): number => Buffer.byteLength(JSON.stringify(o))
const within = (t: Test, what: string, bytes: number, target: number): void => {
  t.ok(Math.abs(bytes - target) <= target * 0.15, `${what}: ${bytes} bytes, ~${target} ±15%`)
}
const wire = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T

const ANNOTATIONS = { 'flatnet.io/vtep-mac': '02:00:00:00:02:01', 'flatnet.io/vtep-port': '8472', 'flatnet.io/vni': '1' }
const PORTS = [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { containerPort: 9090, protocol: 'TCP', name: 'metrics' }]
const SPEC = {
  podSelector: { matchLabels: { app: 'checkout' } },
  policyTypes: ['Ingress', 'Egress'],
  ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } }, podSelector: { matchLabels: { app: 'frontend' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }],
  egress: [
    { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
    { to: [{ podSelector: { matchLabels: { app: 'postgres' } } }], ports: [{ protocol: 'TCP', port: 5432 }] },
  ],
}

t.test('sizes of real objects', async (t) => {
  within(t, 'Node', size(realNode('node-0001', ['10.244.1.0/24'], '10.0.1.17', ANNOTATIONS)), 13_800)
  within(t, 'Pod', size(realPod({ namespace: 'shop', name: 'checkout-7d4b9c8f6-x2k9q', labels: { app: 'checkout', 'pod-template-hash': '7d4b9c8f6' }, nodeName: 'node-0001', ips: ['10.244.1.23'], ports: PORTS.slice(0, 1) })), 5_900)
  within(t, 'Namespace', size(realNamespace('shop', { team: 'payments' })), 500)
  within(t, 'NetworkPolicy', size(realNetworkPolicy('shop', 'checkout-allow', SPEC)), 2_100)
})

t.test('deterministic', async (t) => {
  const pod = { namespace: 'x', name: 'a', labels: { pod: 'a' }, nodeName: 'n1', ips: ['10.244.1.2'] }
  t.same(realNode('n1', ['10.244.1.0/24'], '192.0.2.1'), realNode('n1', ['10.244.1.0/24'], '192.0.2.1'))
  t.same(realPod(pod), realPod(pod))
  t.not(realPod(pod).metadata.uid, realPod({ ...pod, name: 'b' }).metadata.uid, 'uids differ by name')
  t.match(realNode('n1', [], '192.0.2.1').metadata.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'uids are UUIDs')
})

t.test('the fields a daemon reads, as passed', async (t) => {
  const node = wire(realNode('node-7', ['10.244.7.0/24', 'fd00:10:244:7::/64'], '192.0.2.7', ANNOTATIONS))
  t.equal(node.metadata.name, 'node-7')
  t.same(node.spec.podCIDRs, ['10.244.7.0/24', 'fd00:10:244:7::/64'])
  t.equal(node.spec.podCIDR, '10.244.7.0/24')
  t.same(node.status.addresses.find((a) => a.type === 'InternalIP'), { type: 'InternalIP', address: '192.0.2.7' })
  t.match(node.metadata.annotations, ANNOTATIONS, 'the annotations passed, beside kubeadm\'s and the controllers\'')
  t.equal(node.metadata.labels['kubernetes.io/hostname'], 'node-7')
  t.equal((node.status as unknown as { images: unknown[] }).images.length, 32)
  t.equal((node.status as unknown as { conditions: unknown[] }).conditions.length, 5)

  const labels = { app: 'web', tier: 'front' }
  const pod = wire(realPod({ namespace: 'shop', name: 'web-0', labels, nodeName: 'node-7', ips: ['10.244.7.9', 'fd00:10:244:7::9'], phase: 'Pending', ports: PORTS, hostNetwork: true }))
  const spec = pod.spec as { nodeName: string, hostNetwork?: boolean, containers: Array<{ ports?: unknown }> }
  const status = pod.status as { phase: string, podIP: string, podIPs: Array<{ ip: string }> }
  t.same([pod.metadata.namespace, pod.metadata.name, pod.metadata.labels], ['shop', 'web-0', labels])
  t.equal(spec.nodeName, 'node-7')
  t.equal(spec.hostNetwork, true)
  t.same(spec.containers[0].ports, PORTS)
  t.same([status.phase, status.podIP, status.podIPs], ['Pending', '10.244.7.9', [{ ip: '10.244.7.9' }, { ip: 'fd00:10:244:7::9' }]])
  const plain = wire(realPod({ namespace: 'x', name: 'a', labels: {}, nodeName: 'n', ips: [] }))
  t.notOk('hostNetwork' in (plain.spec as object), 'hostNetwork left out when false, as the API server writes it')
  t.notOk('ports' in (plain.spec as { containers: object[] }).containers[0], 'no ports unless given')
  t.equal((plain.status as { phase: string }).phase, 'Running', 'Running by default')
  t.notOk('podIP' in (plain.status as object), 'no IPs: no podIP')

  const ns = wire(realNamespace('shop', { team: 'payments' }))
  t.same(ns.metadata.labels, { 'kubernetes.io/metadata.name': 'shop', team: 'payments' })

  const np = wire(realNetworkPolicy('shop', 'checkout-allow', SPEC))
  t.same([np.metadata.namespace, np.metadata.name, np.spec], ['shop', 'checkout-allow', SPEC])
  const applied = JSON.parse((np.metadata.annotations as Record<string, string>)['kubectl.kubernetes.io/last-applied-configuration']) as { spec: unknown }
  t.same(applied.spec, SPEC, 'last-applied-configuration holds the spec')
})
