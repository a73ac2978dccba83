// What the bench reads around a test, on fixed samples: UDP loss from iperf3's JSON and
// the pod's socket drops, and the machine's busy CPU time from /proc/stat.
import t from 'tap'
import { udpLoss, type IperfJson } from '../../bench/iperf.js'
import { busyCpuSeconds } from '../../bench/proc-stat.js'
import { CLK_TCK } from '../../bench/process-usage.js'

// The shape of iperf3 3.12's `-u -J` end section (sum_received.packets is the sender's count).
function iperfUdp (sent: number, gaps: number, read: number): IperfJson {
  return {
    end: {
      sum_sent: { packets: sent, seconds: 5 },
      sum_received: { bits_per_second: read * 64 * 8 / 5, bytes: read * 64, packets: sent, lost_packets: gaps, lost_percent: 100 * gaps / sent, seconds: 5.0002 },
    },
  }
}

t.test('UDP loss: both figures of the datagrams sent, so the pod\'s share is part of the loss', async (t) => {
  // A flood of 1,000,000: 306,000 gaps in the sequence the receiver read, and a tail of 1,500
  // that never reached it (iperf3 cannot see a gap after the last datagram it read); the pod's
  // socket dropped 307,000, the tail's included. iperf3 said 30.6% lost, the socket 30.7%.
  const r = udpLoss(iperfUdp(1_000_000, 306_000, 692_500), 307_000)
  t.equal(r.iperf3LostPct.toFixed(1), '30.6')
  t.equal(r.podLossPct.toFixed(1), '30.7')
  t.equal(r.lossPct.toFixed(2), '30.75', 'sent minus read, the tail included')
  t.ok(r.podLossPct <= r.lossPct)
  t.equal(r.read, 692_500)
  t.equal(r.sent, 1_000_000)
  t.equal(r.pps.toFixed(0), (692_500 / 5.0002).toFixed(0), 'what the pod read, per second of the receiver')
  t.equal(r.sentPps, 200_000)

  const clean = udpLoss(iperfUdp(1000, 0, 1000), 0)
  t.same([clean.lossPct, clean.podLossPct], [0, 0])
  t.throws(() => udpLoss({ end: { sum_received: iperfUdp(1, 0, 1).end?.sum_received } }, 0), /no UDP sum_sent packets/)
  t.throws(() => udpLoss({}, 0), /no UDP sum_received/)
})

t.test('busy CPU seconds: user, nice, system, irq, softirq of all CPUs; not idle, iowait or steal', async (t) => {
  const stat = [
    'cpu  1000 20 300 90000 50 7 170 400 0 0',
    'cpu0 500 10 150 45000 25 3 85 200 0 0',
    'intr 12345',
    'ctxt 999',
  ].join('\n')
  t.equal(busyCpuSeconds(stat), (1000 + 20 + 300 + 7 + 170) / CLK_TCK)
  t.throws(() => busyCpuSeconds('ctxt 1\n'), /no cpu line/)
  t.ok(busyCpuSeconds() > 0, 'this machine\'s /proc/stat')
})
