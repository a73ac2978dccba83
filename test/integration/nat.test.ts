// NAT outgoing (ipMasq, on by default): a pod reaching a host outside the cluster
// CIDR shows up there as its node's underlay address; pods reaching pods keep their
// own. The "outside" host is another namespace on the underlay bridge. The rules sit
// in flatnet's own nftables table, survive a crash-restart as one table (not two),
// and are gone after a clean stop.
import t from 'tap'
import { once } from 'node:events'
import { labTools, ping, startPeerEcho, tcpSeenAs, withCluster } from '../lib/lab.js'
import { pingFrom } from '../lib/echo.js'
import { seenAs, startEcho } from '../../src/lab/traffic.js'

labTools('ping')

const OUTSIDE = '192.168.77.200' // on the underlay subnet, in a namespace: never a real host

t.test('ipMasq: pods masqueraded to outside hosts, never to each other', async (t) => {
  const cluster = await withCluster(t, {
    nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet', extra: { ipMasq: false } }],
  })
  if (!cluster) return
  const [n1, n2, n3] = cluster.nodes
  const outside = cluster.attachToUnderlay('out', OUTSIDE)
  startEcho(outside)
  const pods = cluster.nodes.map((n) => n.pods[0])
  pods.forEach(startPeerEcho)

  t.ok(await pingFrom(pods[0].ns, OUTSIDE), 'n1 pod pings the outside host')
  t.equal(await seenAs(pods[0].ns, OUTSIDE), n1.underlayIP, 'n1 pod -> outside: seen as n1\'s underlay address')
  t.equal(await seenAs(pods[1].ns, OUTSIDE), n2.underlayIP, 'n2 pod -> outside: seen as n2\'s underlay address')
  t.equal(await tcpSeenAs(pods[0], pods[1]), pods[0].ip, 'n1 pod -> n2 pod: seen as the pod\'s own IP')
  t.equal(await tcpSeenAs(pods[1], pods[0]), pods[1].ip, 'n2 pod -> n1 pod: seen as the pod\'s own IP')
  t.equal(await tcpSeenAs(pods[2], pods[0]), pods[2].ip, 'n3 pod (ipMasq off) -> n1 pod: own IP')

  // Without masquerading the outside host sees the pod's address (given a route back).
  outside.ip('route', 'add', '10.244.3.0/24', 'via', n3.underlayIP)
  t.equal(await seenAs(pods[2].ns, OUTSIDE), pods[2].ip, 'n3 (ipMasq: false) -> outside: not masqueraded')
  t.notOk(tables(n3), 'n3 (ipMasq: false): no flatnet table')

  const rules = n1.ns.exec('nft', 'list', 'table', 'ip', 'flatnet')
  t.match(rules, /ip saddr 10\.244\.1\.0\/24 ip daddr 10\.244\.0\.0\/16 return/, 'n1: pod -> cluster returns first')
  t.match(rules, /ip saddr 10\.244\.1\.0\/24 ip daddr != 224\.0\.0\.0\/4 masquerade/, 'n1: pod -> elsewhere masquerades')
  t.match(rules, /hook postrouting priority srcnat/, 'n1: in the postrouting NAT hook')
  t.equal(tables(n1), 'table ip flatnet', 'n1: only an IPv4 table on an IPv4-only node')

  // A crashed daemon leaves its table; the restarted one replaces it whole.
  const d = n1.daemon
  d?.kill('SIGKILL')
  if (d) await once(d, 'exit')
  t.equal(tables(n1), 'table ip flatnet', 'n1: after SIGKILL the table is still there')
  await cluster.startDaemon(n1)
  const again = n1.ns.exec('nft', 'list', 'table', 'ip', 'flatnet')
  t.equal(again, rules, 'n1: restart re-applies the same rules, nothing doubled')
  t.equal(await seenAs(pods[0].ns, OUTSIDE), n1.underlayIP, 'n1 pod -> outside after restart: still masqueraded')
  t.ok(await ping(pods[1], pods[0].ip), 'n2 pod -> n1 pod after restart')

  for (const n of [n1, n2]) {
    const { code } = await cluster.stopDaemon(n)
    t.equal(code, 0, `${n.name}: SIGTERM exits 0`)
    t.equal(tables(n), '', `${n.name}: table removed on shutdown`)
  }
})

function tables (n: { ns: { exec: (cmd: string, ...args: string[]) => string } }): string {
  // NAT's tables (ip, ip6 flatnet); the pod port table (bridge flatnet-guard) outlives the daemon.
  return n.ns.exec('nft', 'list', 'tables').split('\n').filter((l) => /^table ip6? flatnet$/.test(l.trim())).join('\n')
}
