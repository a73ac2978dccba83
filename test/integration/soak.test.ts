// The short soak CI runs (`npm run soak` is the long one, bench/soak.ts): 10 s of
// iperf3 flows starting and stopping through two daemons, then 10 s of peers
// joining and leaving every 100 ms while a flow to a stable peer runs.
import t from 'tap'
import { soakChurn, soakLoad } from '../../bench/soak.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('iperf3')

t.test('soak: 10 s of flows, then 10 s of peer churn under a flow', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }, { kind: 'flatnet' }] })
  if (!cluster) return
  const load = await soakLoad(cluster, 10, (l) => t.comment(l))
  t.comment(JSON.stringify(load))
  t.ok(load.flows >= 4 && load.gbytes > 0, `${load.flows} flows carried ${load.gbytes.toFixed(2)} GB`)
  for (const d of load.daemons) {
    t.ok(d.rssGrowthMB < 5, `${d.node}: RSS ${d.rssStartMB.toFixed(1)} -> ${d.rssEndMB.toFixed(1)} MB (growth < 5 MB)`)
    t.ok(d.fdEnd <= d.fdStart, `${d.node}: file descriptors ${d.fdStart} -> ${d.fdEnd} (no growth)`)
  }
  for (const a of load.accounts) {
    t.equal(a.unexplained, 0, `${a.from} -> ${a.to}: every datagram accounted for (sent ${a.sent}, admitted ${a.admitted}, ` +
      `kernel UDP errors ${a.kernelUdpErrors}, link drops ${a.linkDrops}, daemon drops ${JSON.stringify(a.receiverDrops)})`)
    t.same(a.receiverDrops, {}, `${a.from} -> ${a.to}: the receiver refused nothing of honest traffic`)
  }
  for (const [node, drops] of Object.entries(load.senderDrops)) {
    t.notOk(drops.bad_tun_packet || drops.no_route, `${node}: no malformed or unroutable packet from the TUN (${JSON.stringify(drops)})`)
  }

  const churn = await soakChurn(cluster, 10, 20, (l) => t.comment(l))
  t.comment(JSON.stringify(churn))
  t.ok(churn.daemonAlive, 'the daemon survived the churn')
  t.ok(churn.reloads >= 50, `${churn.reloads} reloads applied (up to ${churn.peersMax} churning peers)`)
  t.ok(churn.flowGbytes > 0 && churn.flowStalls === 0, `the flow to the stable peer survived: ${churn.flowGbytes.toFixed(2)} GB, ${churn.flowStalls} stalled seconds`)
  t.ok(churn.pingSent - churn.pingReceived <= 2, `pings to the stable peer: ${churn.pingReceived}/${churn.pingSent}`)
  t.ok(churn.fdGrowth <= 0, `no fd growth under churn (${churn.fdGrowth})`)
  // RSS grows here while V8 sizes its young generation for the reload garbage (heapTotal
  // to ~48 MB, levelling off near +35 MB RSS in 90 s); what is live must not grow.
  t.ok(churn.heapUsedMB[1] - churn.heapUsedMB[0] < 10, // heapUsed includes garbage not yet collected
     `live JS heap ${churn.heapUsedMB[0]} -> ${churn.heapUsedMB[1]} MB (RSS +${churn.rssGrowthMB.toFixed(1)} MB)`)
})
