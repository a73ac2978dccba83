// Changing the peer table under a running flow: n1's peer n3 is added and removed
// every 50 ms while a UDP flow runs from n1's pod to n2's. The native table is
// swapped whole each time; the flow to n2 must not lose a single packet.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { queryControl } from '../../src/control-socket.js'
import { stopProcess } from '../../src/lab/netns.js'
import { udpCounters } from '../../src/net/kernel-drops.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('iperf3')

t.test('peer churn loses no packet of flows to other peers', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const full = cluster.flatnetConfig(n1) as { peers: unknown[] }
  const withoutN3 = { ...full, peers: full.peers.slice(0, 1) }
  const server = n2.pods[0].ns.spawn('iperf3', ['-s', '-1'])
  await new Promise((resolve) => setTimeout(resolve, 300))
  const flow = n1.pods[0].ns.execAsync('iperf3', ['-c', n2.pods[0].ip, '-u', '-b', '20M', '-l', '1000', '-t', '3', '-J'], 30_000)
  let swaps = 0
  const churn = setInterval(() => {
    writeFileSync(n1.configFile as string, JSON.stringify(swaps % 2 ? full : withoutN3))
    n1.daemon?.kill('SIGHUP')
    swaps++
  }, 50)
  const result = JSON.parse(await flow)
  clearInterval(churn)
  await stopProcess(server)
  const stats = await queryControl(`${cluster.dir}/n1.sock`, 'stats') as { stats: { drops: Record<string, number> }, sources: { static: { reloads: number } } }
  t.ok(swaps >= 40, `${swaps} table changes during the flow`)
  t.ok(stats.sources.static.reloads >= 20, `${stats.sources.static.reloads} reloads applied`)
  t.ok(result.end.sum.packets > 5000, `${result.end.sum.packets} datagrams sent`)
  // On a busy machine the receiving iperf3 may not drain its socket in time: those
  // datagrams reached the pod and are counted there (UDP RcvbufErrors), not lost by us.
  const rcvbufErrors = udpCounters(n2.pods[0].ns.exec('cat', '/proc/net/snmp')).RcvbufErrors
  t.equal(result.end.sum.lost_packets - rcvbufErrors, 0,
    `none lost on the way (${result.end.sum.lost_packets} lost, ${rcvbufErrors} of them in the receiving socket's buffer)`)
  t.equal(stats.stats.drops.no_route, 0, 'no packet found the table without its route')
})
