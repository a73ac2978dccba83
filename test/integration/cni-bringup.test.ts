// Node bring-up as in a DaemonSet: `flatnet daemon --pod-cidr-from-node` reads its
// pod CIDR from its own Node (a small API server inside the node's namespace, slow
// to allocate it), writes the conflist for that CIDR only once ready, marks the
// Node's NetworkUnavailable condition False and annotates its VTEP; pods forward.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { labTools, ping, withCluster } from '../lib/lab.js'

labTools('ping')

const NODE_API = fileURLToPath(new URL('../fixtures/node-api.mjs', import.meta.url))
const API_PORT = '6443'

t.test('--pod-cidr-from-node: CIDR from the Node, conflist after ready, NetworkUnavailable=False', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  await cluster.stopDaemon(n1)
  const conflist = join(n1.cniDir, 'net.d', '10-flatnet.conflist')
  writeFileSync(conflist, '{}') // stale: the restarted daemon must replace it

  // The API answers without spec.podCIDRs twice, as before kube-controller-manager allocates.
  n1.ns.spawn(process.execPath, [NODE_API, API_PORT, n1.name, n1.podCIDR, '2'])
  const kubeconfig = join(cluster.dir, 'kubeconfig')
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'lab',
    clusters: [{ name: 'lab', cluster: { server: `http://127.0.0.1:${API_PORT}`, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'lab', user: { token: 'lab' } }],
    contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'lab' } }],
  }))
  writeFileSync(n1.configFile as string, JSON.stringify({
    ...cluster.flatnetConfig(n1), podCIDR: 'set by --pod-cidr-from-node', kubernetes: { kubeconfig },
  }))
  n1.spec.args = ['--pod-cidr-from-node']
  await cluster.startDaemon(n1, 20_000)

  const log = cluster.log(n1)
  t.match(log, /has no spec.podCIDRs yet.*"msg":"waiting for this node's pod CIDRs"/, 'waited while the Node had no pod CIDR')
  t.match(log, new RegExp(`"podCIDRs":\\["${n1.podCIDR.replace(/\./g, '\\.')}"\\],"msg":"pod CIDRs from the Node object"`), 'took the Node\'s pod CIDR')
  const conf = JSON.parse(readFileSync(conflist, 'utf8'))
  t.same(conf.plugins[0].ipam.ranges, [[{ subnet: n1.podCIDR, gateway: n1.podCIDR.replace('.0/24', '.1') }]], 'conflist for that CIDR')
  t.ok(await ping(n1.pods[0], n2.pods[0].ip), 'n1 pod -> n2 pod')
  t.ok(await ping(n2.pods[0], n1.pods[0].ip), 'n2 pod -> n1 pod')

  type Req = { method: string, path: string, contentType?: string, body?: any }
  let requests: Req[] = []
  for (let i = 0; i < 50; i++) {
    requests = JSON.parse(await n1.ns.execAsync(process.execPath, ['-e',
      `fetch('http://127.0.0.1:${API_PORT}/_requests').then((r) => r.text()).then((s) => process.stdout.write(s))`]))
    if (requests.filter((r) => r.method === 'PATCH' && r.path === `/api/v1/nodes/${n1.name}/status`).length >= 2) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // Both writes go through the status subresource: the ClusterRole grants no patch of Nodes.
  t.notOk(requests.some((r) => r.method !== 'GET' && r.path === `/api/v1/nodes/${n1.name}`), 'no write to the Node itself')
  const status = requests.find((r) => r.method === 'PATCH' && r.path === `/api/v1/nodes/${n1.name}/status` && r.contentType === 'application/strategic-merge-patch+json')
  t.equal(status?.contentType, 'application/strategic-merge-patch+json', 'status patched (strategic merge)')
  t.match(status?.body, { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'FlatnetIsUp' }] } },
    'NetworkUnavailable=False')
  const annotate = requests.find((r) => r.method === 'PATCH' && r.path === `/api/v1/nodes/${n1.name}/status` && r.contentType === 'application/merge-patch+json')
  t.equal(annotate?.body?.metadata?.annotations?.['flatnet.io/vtep-mac'], n1.vtepMAC, 'VTEP MAC annotated on the Node, through its status')
  t.match(cluster.log(n1), /Node condition NetworkUnavailable=False/, 'logged')

  // A conflist that cannot be written fails the start (exit 1) and leaves nothing running or installed.
  await cluster.stopDaemon(n2)
  writeFileSync(n2.configFile as string, JSON.stringify({ ...cluster.flatnetConfig(n2), cni: { confDir: join(n2.configFile as string, 'net.d') } }))
  const err = await cluster.startDaemon(n2).then(() => undefined, (e: Error) => e)
  t.match(err?.message, /daemon exited \(1\)/, 'unwritable confDir: the daemon exits 1')
  t.match(cluster.log(n2), /ENOTDIR.*"msg":"daemon failed"/, 'and says why')
  // Only the pod port table its pods were bound in before this start: it outlives any one daemon.
  t.equal(n2.ns.exec('nft', 'list', 'tables').trim(), 'table bridge flatnet-guard', 'no nft table left but the pod port table')
  t.notOk(n2.ns.ip('link').includes('flatnet0'), 'no TUN left')
})
