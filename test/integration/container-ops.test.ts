// The operator commands as users run them on a node, in the pods of the manifests, in
// the built image: `kubectl exec <flatnet pod> -- flatnet status` (and `peers`) inside the
// DaemonSet's container, and `flatnet uninstall` as deploy/uninstall/daemonset.yaml's init
// container runs it once that container is gone. Every container runs as its manifest
// says: its capabilities alone, no_new_privs, a read-only root, its args and environment
// (NODE_NAME and HOST_IP from the downward API are the lab node's), and its volumeMounts
// at their paths, each from a directory of the lab standing in for the node's hostPath or
// the ConfigMap. The runtime (runc) mounts /proc/sys and /sys read-only, as for any
// non-privileged container. n1 is that pod; n2 a plain lab node, the peer it probes.
import t from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { DaemonRunner, LabNode } from '../../src/lab/cluster.js'
import { until } from '../../src/lab/until.js'
import type { Status } from '../../src/status.js'
import { containerArgs, containerEnv, manifestContainer, type PodContainer } from '../lib/daemonset.js'
import { containerName, containerPid, ensureImage, nodeFields, podmanFlags, ulimitFlags } from '../lib/image.js'
import { labSkipReason, withCluster } from '../lib/lab.js'

// A clean image build (bases, npm ci, apt) takes minutes: more than tap's 300 s default leaves.
t.setTimeout(900_000)

interface Run { code: number | null, stdout: string, stderr: string }

async function run (cmd: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr })
    })
  })
}

const daemonContainer = manifestContainer('deploy/daemonset.yaml', 'flatnet')
const installContainer = manifestContainer('deploy/daemonset.yaml', 'install-cni-plugins')
const uninstallContainer = manifestContainer('deploy/uninstall/daemonset.yaml', 'uninstall')
const POLICY_DIR = '/etc/flatnet/policy'

/**
 * The node's directories the manifests' volumes name, as lab directories of this node
 * (beside its config, in the cluster's temp dir): the host's own /etc/cni/net.d,
 * /run/flatnet, /var/lib/flatnet and /opt/cni/bin stay untouched. `config` holds what
 * the ConfigMap would: the node's config.json, and here the NetworkPolicy manifests the
 * daemon enforces (the lab has no API server to read them from).
 */
function hostVolumes (n: LabNode): Record<string, string> {
  const root = join(dirname(n.configFile as string), `${n.name}-host`)
  const dirs = { config: 'etc-flatnet', 'cni-conf': 'etc-cni-net.d', run: 'run-flatnet', state: 'var-lib-flatnet', 'cni-bin': 'opt-cni-bin' }
  const volumes: Record<string, string> = { tun: '/dev/net/tun' }
  for (const [volume, dir] of Object.entries(dirs)) {
    volumes[volume] = join(root, dir)
    mkdirSync(volumes[volume], { recursive: true }) // hostPath type DirectoryOrCreate
  }
  return volumes
}

/** `podman run` of a manifest's container for node n, in n's namespace: the image's entrypoint (or `entrypoint`), `args` as the container's. */
function podmanRun (image: string, n: LabNode, name: string, c: PodContainer, args: string[], entrypoint?: string): string[] {
  return ['podman', 'run', '--rm', '--name', name, '--pull=never', '--runtime', 'runc', ...ulimitFlags(),
    '--network', `ns:/var/run/netns/${n.ns.name}`, // hostNetwork: the node's namespace, which the lab node is
    ...podmanFlags(c, hostVolumes(n), nodeFields(n)), ...(entrypoint ? ['--entrypoint', entrypoint] : []), image, ...args]
}

// Bit numbers in /proc/<pid>/status's Cap* masks (linux/capability.h).
const CAP_BITS: Record<string, number> = { NET_ADMIN: 12, NET_RAW: 13, BPF: 39 }
const capMask = (c: PodContainer): string =>
  (c.securityContext?.capabilities?.add ?? []).reduce((m, cap) => m | (1n << BigInt(CAP_BITS[cap])), 0n).toString(16).padStart(16, '0')

/**
 * The DaemonSet's pod for a lab node: the config written where the ConfigMap mounts it,
 * the init container installing the CNI plugins into the node's (empty) CNI bin
 * directory, then the flatnet container with the manifest's args.
 */
function podRunner (image: string): DaemonRunner {
  return {
    command: (n) => {
      const volumes = hostVolumes(n)
      copyFileSync(n.configFile as string, join(volumes.config, 'config.json'))
      mkdirSync(join(volumes.config, 'policy'), { recursive: true })
      writeFileSync(join(volumes.config, 'policy', 'cluster.json'), JSON.stringify({ kind: 'List', items: [] }))
      const install = podmanRun(image, n, `${containerName(n)}-install-cni`, installContainer, containerArgs(installContainer, []))
      execFileSync(install[0], install.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 })
      const env = containerEnv(daemonContainer, nodeFields(n))
      // The lab has no API server to read the Node's podCIDR from: the flag names it instead.
      const args = containerArgs(daemonContainer, env).map((a) => a === '--pod-cidr-from-node' ? `--pod-cidr=${n.podCIDR}` : a)
      return podmanRun(image, n, containerName(n), daemonContainer, args)
    },
    cleanup: (n) => {
      for (const name of [containerName(n), `${containerName(n)}-install-cni`, `${containerName(n)}-uninstall`]) {
        try {
          execFileSync('podman', ['rm', '--force', '--ignore', '--time', '2', name], { stdio: 'ignore' })
        } catch { /* podman gone or failing: the namespace's removal kills the processes anyway */ }
      }
    },
  }
}

/** What `kubectl exec <pod> -- flatnet ARGS` runs: the command in the running container, with its environment and restrictions. */
async function execInPod (n: LabNode, ...args: string[]): Promise<Run> {
  return await run('podman', ['exec', containerName(n), 'flatnet', ...args])
}

/** The uninstall DaemonSet's init container on node n, with its manifest's args. */
async function uninstallPod (image: string, n: LabNode): Promise<Run> {
  const env = containerEnv(uninstallContainer, nodeFields(n))
  const [cmd, ...args] = podmanRun(image, n, `${containerName(n)}-uninstall`, uninstallContainer, containerArgs(uninstallContainer, env))
  return await run(cmd, args)
}

const why = labSkipReason('the container operations test', ['podman', 'runc', 'mmdebstrap', 'nft'])
t.test('status, peers and uninstall in the manifests\' containers', { skip: why ?? false }, async (t) => {
  const { image, seconds } = await ensureImage()
  t.comment(seconds ? `built ${image} in ${seconds.toFixed(0)} s` : `reused ${image}`)
  const tag = `ctr-${Math.random().toString(36).slice(2, 6)}` // namespaces flatnet-ctr-*
  const cluster = await withCluster(t, {
    tag,
    nodes: [{
      kind: 'flatnet',
      runner: podRunner(image),
      // The ConfigMap's config: the per-node fields are placeholders the DaemonSet's flags
      // replace, and the node's files are at their default paths (the volumes' mount points).
      extra: {
        nodeName: 'set by --node-name',
        podCIDR: 'set by --pod-cidr-from-node',
        underlay: { address: 'set by --underlay-address', port: 8472 },
        cni: undefined,
        stateFile: undefined,
        controlSocket: undefined,
        networkPolicy: { manifests: POLICY_DIR },
      },
    }, { kind: 'flatnet' }],
  })
  if (!cluster) return
  const [n1, n2] = cluster.nodes
  const volumes = hostVolumes(n1)
  const conflist = join(volumes['cni-conf'], '10-flatnet.conflist')

  t.test('flatnet status and peers, as kubectl exec runs them in the flatnet container', async (t) => {
    const pid = containerPid(n1)
    const proc = readFileSync(`/proc/${pid}/status`, 'utf8')
    t.match(proc, new RegExp(`^CapEff:\\s+${capMask(daemonContainer)}$`, 'm'), `the daemon: only the manifest's capabilities (${(daemonContainer.securityContext?.capabilities?.add ?? []).join(', ')})`)
    t.match(proc, /^NoNewPrivs:\s+1$/m, 'the daemon: no_new_privs')
    const nodeName = await run('podman', ['exec', containerName(n1), 'printenv', 'NODE_NAME'])
    t.equal(nodeName.stdout.trim(), n1.name, 'the container has NODE_NAME (the downward API\'s spec.nodeName)')
    // The probes' first rounds answer within seconds; the bound only keeps a broken run from hanging.
    let status: Status | undefined
    const answered = await until(async () => {
      const r = await execInPod(n1, 'status', '--json')
      if (r.code !== 0) return false
      try {
        status = JSON.parse(r.stdout) as Status
      } catch {
        return false
      }
      const probes = status.peers.probes
      return probes !== null && probes.overlay.reachable === 1 && probes.underlay.reachable === 1
    }, 60_000, 250)
    t.ok(answered >= 0, `status --json parses, and n2 answers the probes on both paths: ${JSON.stringify(status?.peers)}`)
    t.equal(status?.node, n1.name, 'status --json: this node\'s daemon')
    t.equal(status?.ready, null, 'status --json: ready')
    t.equal(status?.peers.total, 1, 'status --json: one peer')

    const human = await execInPod(n1, 'status')
    t.comment(`flatnet status:\n${human.stdout}${human.stderr}`)
    t.equal(human.code, 0, 'flatnet status: exit 0')
    t.match(human.stdout, new RegExp(`^flatnet \\S+ \\([0-9a-f]{12}\\) on ${n1.name}: ready \\(up `), 'the first line: version, commit, node, ready')
    t.match(human.stdout, /^peers {7}overlay 1\/1 reachable; underlay 1\/1 reachable$/m, 'peers: 1/1 reachable on the overlay and on the underlay')
    t.match(human.stdout, /^policy {6}enforced; /m, 'policy: enforced')

    const peers = await execInPod(n1, 'peers')
    t.comment(`flatnet peers:\n${peers.stdout}${peers.stderr}`)
    t.equal(peers.code, 0, 'flatnet peers: exit 0')
    const [head, ...rows] = peers.stdout.trimEnd().split('\n')
    t.match(head, /^NODE\s+POD CIDRS\s+VTEP\s+SOURCE\s+AGE\s+OVERLAY\s+UNDERLAY\s+/, 'peers: the header')
    t.equal(rows.length, 1, 'peers: one row')
    t.match(rows[0], new RegExp(`^${n2.name}\\s+${n2.podCIDR.replace(/\./g, '\\.')}\\s+${n2.underlayIP.replace(/\./g, '\\.')}:8472\\s+\\S+\\s+\\d+s\\s+ok [\\d.]+ms\\s+ok [\\d.]+ms\\s`),
      'peers: n2, its pod CIDR and VTEP, reachable on both paths')
  })

  t.test('flatnet uninstall, as the uninstall DaemonSet\'s init container runs it', async (t) => {
    t.ok(existsSync(conflist), `the daemon wrote its conflist (${conflist})`)
    const refused = await uninstallPod(image, n1)
    t.equal(refused.code, 1, 'with the flatnet container running: exit 1 (the init container retries)')
    t.match(refused.stdout, /^daemon: running \(\/run\/flatnet\/\S+ answers\): nothing removed/m, 'it sees the daemon through the shared /run/flatnet')

    // The uninstall container's restrictions, seen from inside one like it: what the run below has to work with.
    const probeCmd = podmanRun(image, n1, `${containerName(n1)}-uninstall`, uninstallContainer, ['-c',
      'grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; (touch /probe) 2>&1; (echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1; true'], 'sh')
    const probe = await run(probeCmd[0], probeCmd.slice(1))
    t.match(probe.stdout, new RegExp(`^CapEff:\\s+${capMask(uninstallContainer)}$`, 'm'), `the uninstall container: only the manifest's capabilities (${(uninstallContainer.securityContext?.capabilities?.add ?? []).join(', ')})`)
    t.match(probe.stdout, /^NoNewPrivs:\s+1$/m, 'the uninstall container: no_new_privs')
    t.equal(probe.stdout.split('Read-only file system').length - 1, 2, 'the uninstall container: its root and /proc/sys are read-only')

    const { code } = await cluster.stopDaemon(n1)
    t.equal(code, 0, 'the flatnet container stops (SIGTERM) and exits 0')
    const tables = (): string => n1.ns.exec('nft', 'list', 'tables')
    t.match(tables(), 'table inet flatnet-policy', 'stopped: the NetworkPolicy table stays')
    t.match(tables(), 'table bridge flatnet-guard', 'stopped: the pod port guard stays')
    t.ok(existsSync(conflist), 'stopped: the conflist stays')

    const r = await uninstallPod(image, n1)
    t.comment(`flatnet uninstall (exit ${r.code}):\n${r.stdout}${r.stderr}`)
    t.equal(r.code, 0, 'exit 0')
    t.equal(r.stderr, '', 'nothing on stderr')
    t.match(r.stdout, /\nnode clean\n$/, 'the last line: node clean')
    t.notMatch(r.stdout, /FAILED/, 'no step failed')
    t.match(r.stdout, /^NetworkPolicy: removed table inet flatnet-policy/m, 'it removed the NetworkPolicy table')
    t.match(r.stdout, /^pod port guard: removed table bridge flatnet-guard$/m, 'and the pod port guard')
    t.match(r.stdout, /^conflist: removed \/etc\/cni\/net\.d\/10-flatnet\.conflist;/m, 'and the conflist')
    t.match(r.stdout, /^CNI plugin: removed \/opt\/cni\/bin\/flatnet-cni;/m, 'and flatnet-cni')
    t.match(r.stdout, `state: removed /var/lib/flatnet/${n1.name}.peers`, 'and the saved peer table')
    t.match(r.stdout, /^directories: \/run\/flatnet emptied \(a mount point here: left\); \/var\/lib\/flatnet emptied \(a mount point here: left\)$/m,
      'the mounted directories are emptied, and stay')

    const left = tables()
    t.notMatch(left, /flatnet/, `no flatnet nftables table in the node's namespace${left.trim() ? `: ${left.trim()}` : ''}`)
    t.notOk(n1.ns.ip('link').includes('flatnet0'), 'no TUN')
    t.notOk(existsSync(conflist), 'no conflist in the node\'s /etc/cni/net.d')
    t.same(readdirSync(volumes['cni-bin']).sort(), ['bridge', 'host-local', 'portmap'], 'the node\'s /opt/cni/bin: the reference plugins stay, flatnet-cni is gone')
    t.same(readdirSync(volumes.run), [], 'the node\'s /run/flatnet: empty')
    t.same(readdirSync(volumes.state), [], 'the node\'s /var/lib/flatnet: empty')

    const again = await uninstallPod(image, n1)
    t.equal(again.code, 0, 'a second run (the init container again, e.g. after a node reboot): exit 0')
    t.notMatch(again.stdout, /removed/, 'and it removes nothing')
  })
})
