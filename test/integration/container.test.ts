// The daemon as the DaemonSet's container runs it: /proc/sys and /sys read-only,
// no_new_privs and only the manifest's capabilities (test/lib/daemonset.ts). It must
// start (IP forwarding already on, as kubeadm requires of a node), forward pod traffic
// both ways with per-cpu workers and with the pipeline, and refuse to start, naming the
// sysctl, where forwarding is off and it cannot switch it on.
import t from 'tap'
import { join } from 'node:path'
import { queryControl } from '../../src/control-socket.js'
import type { DataplaneInfo } from '../../src/native.js'
import { asDaemonSetContainer, daemonSetCapabilities } from '../lib/daemonset.js'
import { labTools, ping, startPeerEcho, tcpSeenAs, withCluster } from '../lib/lab.js'

labTools('ping')

// include/uapi/linux/capability.h
const CAPABILITY_BITS: Record<string, number> = { NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21, BPF: 39 }

t.test('under the container\'s restrictions: per-cpu and pipeline nodes forward both ways', async (t) => {
  const container = asDaemonSetContainer()
  const cluster = await withCluster(t, {
    nodes: [
      { kind: 'flatnet', launcher: container, extra: { workers: 'auto' } },
      { kind: 'flatnet', launcher: container, extra: { workers: 'pipeline' } },
    ],
  })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  // The lab is as strict as the runtime: a write to /proc/sys or /sys fails there.
  const probe = await n1.ns.execAsync(container[0], [...container.slice(1), 'sh', '-c',
    '(echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1; (echo 1 > /sys/class/net/lo/tx_queue_len) 2>&1; grep -E "^(NoNewPrivs|CapEff)" /proc/self/status'])
    .catch((err: { stdout?: string }) => err.stdout ?? '')
  t.equal(probe.split('Read-only file system').length - 1, 2, '/proc/sys and /sys are read-only for it')
  t.match(probe, /NoNewPrivs:\s+1/, 'no_new_privs')
  const mask = daemonSetCapabilities().reduce((m, c) => m | (1n << BigInt(CAPABILITY_BITS[c])), 0n)
  t.match(probe, new RegExp(`CapEff:\\s+${mask.toString(16).padStart(16, '0')}\\n`), `only the manifest's capabilities (${daemonSetCapabilities().join(', ')})`)
  const info = async (name: string): Promise<DataplaneInfo> =>
    ((await queryControl(join(cluster.dir, `${name}.sock`), 'stats')) as unknown as { info: DataplaneInfo }).info
  t.equal((await info(n1.name)).workers, 'per-cpu', 'n1: per-cpu workers (CAP_BPF from the manifest)')
  t.equal((await info(n2.name)).workers, 'pipeline', 'n2: the pipeline')
  const [a, b] = cluster.nodes.map((n) => n.pods[0])
  ;[a, b].forEach(startPeerEcho)
  t.ok(await ping(a, b.ip), 'n1 pod -> n2 pod: ping')
  t.ok(await ping(b, a.ip), 'n2 pod -> n1 pod: ping')
  t.equal(await tcpSeenAs(a, b), a.ip, 'n1 pod -> n2 pod: TCP, seen with its own IP')
  t.equal(await tcpSeenAs(b, a), b.ip, 'n2 pod -> n1 pod: TCP, seen with its own IP')
  for (const n of cluster.nodes) t.equal((await cluster.stopDaemon(n)).code, 0, `${n.name}: SIGTERM exits 0`)
})

t.test('forwarding off and /proc/sys read-only: exit 1 naming the sysctl the node must set', async (t) => {
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet', launcher: asDaemonSetContainer() }, { kind: 'host-gw' }] })
  if (!cluster) return
  const [n1] = cluster.nodes
  await cluster.stopDaemon(n1)
  n1.ns.sysctl('net.ipv4.ip_forward', '0')
  const err = await cluster.startDaemon(n1).then(() => undefined, (e: Error) => e)
  t.match(err?.message, /daemon exited \(1\)/, 'exits 1')
  t.match(err?.message, /net\.ipv4\.ip_forward is 0 on this node and \/proc\/sys\/net\/ipv4\/ip_forward is read-only here \(EROFS/, 'says why')
  t.match(err?.message, /set net\.ipv4\.ip_forward=1 on the node/, 'and what to do')
  t.notOk(n1.ns.ip('link').includes('flatnet0'), 'leaves no TUN behind')
})
