// The image as the DaemonSet runs it: built from this tree (deploy/image/build.sh),
// run by podman with runc in a lab node's namespace, with exactly the manifest's
// capabilities, no privilege escalation and a read-only /proc/sys. Its pod and a
// plain lab node's pod reach each other both ways, by ping and by TCP with the
// sender's own pod IP. Under podman's default seccomp profile (as RuntimeDefault)
// bpf() needs CAP_SYS_ADMIN, so `workers: auto` runs the pipeline; unconfined (what
// Kubernetes gives a pod without seccompProfile, unless the kubelet's
// --seccomp-default is on) CAP_BPF suffices and it runs per-cpu. With encryption "wireguard" its
// pod and a wireguard-go node's reach each other, sealed, and a key rotation goes through.
import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { queryControl } from '../../src/control-socket.js'
import type { DataplaneInfo } from '../../src/native.js'
import { daemonSetCapabilities, daemonSetMemoryLimit } from '../lib/daemonset.js'
import { containerName, containerPid, containerRunner, ensureImage, ulimitFlags } from '../lib/image.js'
import { pingFlood } from '../../src/lab/ping-flood.js'
import { until } from '../../src/lab/until.js'
import { pingFrom } from '../lib/echo.js'
import { labSkipReason, ping, startPeerEcho, tcpSeenAs, withCluster } from '../lib/lab.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

// A clean build (bases, npm ci, apt) takes minutes: more than tap's 300 s default leaves.
t.setTimeout(900_000)

// Bit numbers in /proc/<pid>/status's Cap* masks (linux/capability.h).
const CAP_BITS: Record<string, number> = { NET_ADMIN: 12, NET_RAW: 13, BPF: 39 }
const EPERM = 1
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor (ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (await until(ok, timeoutMs, 50) < 0) throw new Error(`timed out: ${what}`)
}

/** n1 the image in a container (with `flags`), n2 a plain lab node: checks the container, then traffic both ways; resolves to n1's data plane. */
async function imageNode (t: Test, image: string, flags: string[]): Promise<{ info: DataplaneInfo, log: string } | undefined> {
  const cluster = await withCluster(t, { tag: 'img', nodes: [{ kind: 'flatnet', runner: containerRunner(image, flags) }, { kind: 'flatnet' }] })
  if (!cluster) return undefined
  const [n1] = cluster.nodes
  const [a, b] = cluster.nodes.map((n) => n.pods[0])
  ;[a, b].forEach(startPeerEcho)

  const log = cluster.log(n1)
  t.comment(`n1 (container) ready line: ${log.split('\n').find((l) => l.includes('"msg":"ready"'))}`)
  const pid = containerPid(n1)
  t.ok(pid > 0, `n1's daemon runs in container ${n1.ns.name} (host pid ${pid})`)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): string => new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(status)?.[1] ?? ''
  const want = daemonSetCapabilities().reduce((mask, c) => mask | (1n << BigInt(CAP_BITS[c])), 0n)
  t.equal(BigInt(`0x${field('CapEff')}`), want, `effective capabilities: exactly ${daemonSetCapabilities().join(', ')}`)
  t.equal(BigInt(`0x${field('CapBnd')}`), want, 'and nothing more in the bounding set')
  t.equal(field('NoNewPrivs'), '1', 'no privilege escalation')
  t.equal(Number(execFileSync('podman', ['inspect', '--format', '{{.HostConfig.Memory}}', n1.ns.name], { encoding: 'utf8' })), daemonSetMemoryLimit(),
    'the manifest\'s memory limit')
  // mountinfo(5): mount point is field 5, its options field 6. The daemon got this far on a read-only root.
  const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/')
  t.match(root?.[5], /^ro(,|$)/, 'a read-only root filesystem (readOnlyRootFilesystem), and it runs')
  t.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '), /^node \/app\/bin\/flatnet\.js daemon --config \/etc\/flatnet\/config\.json/,
    'the image\'s own command')

  t.ok(await ping(a, b.ip), 'n1 (container) pod -> n2 pod: ping')
  t.ok(await ping(b, a.ip), 'n2 pod -> n1 (container) pod: ping')
  t.equal(await tcpSeenAs(a, b), a.ip, 'n1 (container) pod -> n2 pod: TCP, receiver sees the sender\'s pod IP')
  t.equal(await tcpSeenAs(b, a), b.ip, 'n2 pod -> n1 (container) pod: TCP, receiver sees the sender\'s pod IP')

  const { info } = await queryControl(join(cluster.dir, `${n1.name}.sock`), 'stats') as unknown as { info: DataplaneInfo }
  const { code, ms } = await cluster.stopDaemon(n1)
  t.equal(code, 0, `n1 (container): SIGTERM through podman exits 0 (${ms} ms)`)
  t.notOk(n1.ns.ip('link').includes('flatnet0'), 'n1: TUN removed')
  return { info, log }
}

const why = labSkipReason('the image test', ['podman', 'runc', 'mmdebstrap'])
t.test('the image as the DaemonSet runs it', { skip: why ?? false }, async (t) => {
  const { image, seconds } = await ensureImage()
  t.comment(seconds ? `built ${image} in ${seconds.toFixed(0)} s` : `reused ${image}`)
  const perCpu = availableParallelism() > 1

  t.test('the runtime image: the daemon, its tools and the CNI plugins; no compiler, dev dependencies, lab, tests or benchmarks', async (t) => {
    const root = execFileSync('podman', ['image', 'mount', image], { encoding: 'utf8' }).trim()
    t.teardown(() => { execFileSync('podman', ['image', 'unmount', image], { stdio: 'ignore' }) })
    const has = (path: string): boolean => existsSync(join(root, path))
    for (const path of ['app/bin/flatnet.js', 'usr/local/bin/flatnet', 'app/dist/src/daemon.js', 'app/build/Release/flatnet.node', 'usr/local/bin/node', 'usr/sbin/nft', 'usr/bin/ip',
      ...['bridge', 'host-local', 'portmap', 'flatnet-cni'].map((p) => `usr/lib/cni/${p}`)]) t.ok(has(path), `has /${path}`)
    for (const path of ['app/dist/src/lab', 'app/dist/bench', 'app/dist/test', 'app/test', 'app/bench', 'app/src', 'app/native',
      'app/node_modules/typescript', 'app/node_modules/tap', 'app/node_modules/eslint', 'usr/bin/gcc', 'usr/bin/g++', 'usr/bin/make', 'usr/bin/python3', 'usr/local/bin/npm']) {
      t.notOk(has(path), `no /${path}`)
    }
    // On the PATH, as `kubectl exec ... -- flatnet` uses it; no network at all for this one.
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
    t.match(execFileSync('podman', ['run', '--rm', '--network', 'none', '--runtime', 'runc', ...ulimitFlags(), '--entrypoint', 'flatnet', image, '--version'], { encoding: 'utf8' }),
      new RegExp(`^flatnet ${version.replace(/\./g, '\\.')} \\([0-9a-f]{12}\\)\n$`), '`flatnet --version` on the PATH, with the commit built (FLATNET_COMMIT)')
  })

  t.test('podman\'s default seccomp profile (RuntimeDefault): the pipeline, saying why', async (t) => {
    const r = await imageNode(t, image, [])
    if (!r) return
    t.same([r.info.workers, r.info.perCpuErrno], ['pipeline', perCpu ? EPERM : 0], 'bpf() refused despite CAP_BPF: workers auto runs the pipeline')
    if (perCpu) t.match(r.log, /"seccomp":true,"msg":"workers auto: the pipeline, bpf\(\) refused by seccomp"/, 'the log names seccomp, not a missing capability')
  })

  t.test('unconfined (a pod without seccompProfile): per-cpu, steered', async (t) => {
    const r = await imageNode(t, image, ['--security-opt', 'seccomp=unconfined'])
    if (!r) return
    if (!perCpu) return t.comment('one CPU: the pipeline either way')
    t.same([r.info.workers, r.info.perCpuErrno, r.info.tunSteeringErrno, r.info.socketSteering], ['per-cpu', 0, 0, 'flow'],
      'CAP_BPF suffices: per-cpu workers, both steering programs attached')
  })

  // Encryption in the DaemonSet's container: WireGuard's UDP socket and the AEAD on the packet
  // threads under the container's seccomp profile and capabilities, the key under the state
  // directory (a host mount: the only writable place), against a node of flannel's wireguard
  // backend; then the documented key rotation (delete the key, restart).
  t.test('encryption "wireguard" in the container: sealed pod traffic with wireguard-go, a key rotation', async (t) => {
    const cluster = await withCluster(t, { tag: 'imgwg', nodes: [{ kind: 'flatnet', runner: containerRunner(image) }, { kind: 'wireguard-go' }], wireguard: true })
    if (!cluster) return
    const [n1, n2] = cluster.nodes
    const [a, b] = cluster.nodes.map((n) => n.pods[0])
    const sock = join(cluster.dir, `${n1.name}.sock`)
    const publicKey = async (): Promise<string> => ((await queryControl(sock, 'status')) as unknown as { encryption: { publicKey: string } }).encryption.publicKey
    // The first answer may wait for wireguard-go's handshake retry (5 s): waited for, not timed.
    t.ok(await pingFrom(a.ns, b.ip, 1, 10), 'n1 (container) pod -> n2 (wireguard-go) pod: ping')
    t.ok(await pingFrom(b.ns, a.ip, 3), 'n2 pod -> n1 (container) pod: ping')
    const drops = ((await queryControl(sock, 'stats')) as unknown as { stats: { drops: Record<string, number> } }).stats.drops
    t.equal((drops.wg_decrypt ?? 0) + (drops.wg_no_session ?? 0), 0, 'nothing dropped for decryption or want of a session')

    const keyFile = (cluster.flatnetConfig(n1).wireguard as { privateKeyFile: string }).privateKeyFile
    const old = await publicKey()
    await cluster.stopDaemon(n1)
    rmSync(keyFile)
    await cluster.startDaemon(n1)
    const rotated = await publicKey()
    t.not(rotated, old, 'a new key, made by the daemon in the container')
    t.equal(statSync(keyFile).mode & 0o777, 0o600, 'written 0600')
    // What flannel's node does when n1's Node shows the new key: the peer replaced.
    const device = cluster.wgDevice(n2)
    n2.ns.exec('wg', 'set', device, 'peer', old, 'remove')
    n2.ns.exec('wg', 'set', device, 'peer', rotated, 'allowed-ips', n1.podCIDR, 'endpoint', `${n1.underlayIP}:51820`)
    t.ok(await pingFrom(b.ns, a.ip, 1, 10), 'n2 pod -> n1 pod under the new key')
    t.ok(await pingFrom(a.ns, b.ip, 3), 'n1 pod -> n2 pod under the new key')
  })

  // A DaemonSet update: the new pod's container starts beside the old one's, on the same
  // host directories; the old one's SIGTERM (from the kubelet, here from podman) hands over.
  t.test('an update: a second container of the image takes the data plane over, no ping lost', async (t) => {
    const runner = containerRunner(image)
    const cluster = await withCluster(t, { tag: 'imgho', nodes: [{ kind: 'flatnet', runner }, { kind: 'flatnet' }] })
    if (!cluster) return
    const [n1] = cluster.nodes
    const [a, b] = cluster.nodes.map((n) => n.pods[0])
    const [cmd, ...args] = runner.command(n1)
    const nextName = `${containerName(n1)}-next`
    args[args.indexOf('--name') + 1] = nextName
    t.teardown(() => { execFileSync('podman', ['rm', '--force', '--ignore', '--time', '2', nextName], { stdio: 'ignore' }) })
    const flood = pingFlood(b.ns, a.ip, join(cluster.dir, 'flood.log'))
    await sleep(300)
    const from = cluster.log(n1).length
    const out = openSync(n1.logFile!, 'a')
    const next = spawn(cmd, args, { stdio: ['ignore', out, out] })
    await waitFor(() => cluster.log(n1).slice(from).includes('"msg":"a successor waits'), 30_000, 'the running container registers the new one')
    const old = n1.daemon!
    const exited = once(old, 'exit') as Promise<[number | null]>
    execFileSync('podman', ['kill', '--signal', 'TERM', containerName(n1)], { stdio: 'ignore' })
    n1.daemon = next
    await waitFor(() => cluster.log(n1).slice(from).includes('"msg":"ready"'), 30_000, 'the new container is ready')
    t.equal((await exited)[0], 0, 'the old container exits 0')
    const { sent, lost } = await flood.stop()
    t.ok(sent > 0, `the flood ran across the update (${sent} echoes)`)
    t.same(lost, [], 'no ping lost')
    t.ok(await ping(a, b.ip), 'n1 (the new container) pod -> n2 pod')
    t.match(cluster.log(n1).slice(from), /"msg":"took over the data plane"/, 'the new container says it took over')
  })
})
