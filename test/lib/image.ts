// The flatnet image for tests: built by deploy/image/build.sh (once per source tree:
// tagged by a hash of the sources), and run by podman as the DaemonSet runs it.
import { execFile, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { DaemonRunner, LabNode } from '../../src/lab/cluster.js'
import { containerEnv, daemonSetCapabilities, daemonSetEnv, daemonSetMemoryLimit, daemonSetReadOnlyRoot, memoryBytes, type PodContainer } from './daemonset.js'

const execFileAsync = promisify(execFile)
const REPO = fileURLToPath(new URL('../../', import.meta.url))
const BUILD = join(REPO, 'deploy/image/build.sh')

/** A hash of what `COPY . .` sees (the tracked and untracked files git does not ignore, less .dockerignore's plain
 *  paths: test/, deploy/, ...) and of the recipe that makes the bases. */
export function sourceHash (): string {
  const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && !/[*?[]/.test(l))
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' })
    .split('\0').filter((f) => f && !ignored.some((p) => f === p || f.startsWith(`${p}/`))).concat('deploy/image/build.sh').sort()
  const hash = createHash('sha256')
  for (const file of files) {
    let content: Buffer
    try { content = readFileSync(join(REPO, file)) } catch { continue } // deleted, not yet staged
    hash.update(file).update('\0').update(content).update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

function imageExists (image: string): boolean {
  try {
    execFileSync('podman', ['image', 'exists', image], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Untags the images of other source trees (~80 MB of layers each), so edits do not pile them up. */
function removeOlderImages (keep: string): void {
  const tags = execFileSync('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'localhost/flatnet'], { encoding: 'utf8' })
    .split('\n').filter((tag) => tag.startsWith('localhost/flatnet:src-') && tag !== keep)
  for (const tag of tags) {
    try { execFileSync('podman', ['rmi', tag], { stdio: 'ignore' }) } catch { /* in use by a container: left */ }
  }
}

/** The image of this source tree, built unless it exists; `seconds` is 0 when reused. */
export async function ensureImage (): Promise<{ image: string, seconds: number, output: string }> {
  const image = `localhost/flatnet:src-${sourceHash()}`
  if (imageExists(image)) return { image, seconds: 0, output: '' }
  const start = Date.now()
  try {
    const { stdout, stderr } = await execFileAsync(BUILD, [image], { cwd: REPO, maxBuffer: 256 << 20, timeout: 20 * 60_000 })
    removeOlderImages(image)
    return { image, seconds: (Date.now() - start) / 1000, output: `${stdout}${stderr}` }
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, message: string }
    const tail = `${e.stdout ?? ''}${e.stderr ?? ''}`.trimEnd().split('\n').slice(-30).join('\n')
    throw new Error(`${BUILD} ${image} failed (${e.message.split('\n')[0]}); run it by hand to see the whole build:\n${tail}`)
  }
}

/** The ulimits deploy/image/build.sh gives runc: podman's defaults exceed some machines' hard limits. */
export function ulimitFlags (): string[] {
  const [files, procs] = execFileSync('bash', ['-c', 'ulimit -Hn; ulimit -Hu'], { encoding: 'utf8' }).trim().split('\n')
  const limit = (have: string, want: number): number => have === 'unlimited' ? want : Math.min(Number(have), want)
  return ['--ulimit', `nofile=${limit(files, 8192)}`, '--ulimit', `nproc=${limit(procs, 4096)}`]
}

/** The downward API's values for a lab node, as the kubelet gives them to its DaemonSet pod (hostNetwork: the node's address). */
export const nodeFields = (n: LabNode): Record<string, string> => ({ 'spec.nodeName': n.name, 'status.hostIP': n.underlayIP })

/**
 * The podman flags of the DaemonSet's pod spec (deploy/daemonset.yaml): its capabilities, no privilege escalation, the TUN
 * hostPath, the memory limit, its environment (with `fields`, the downward API's NODE_NAME and HOST_IP too).
 */
export function daemonSetFlags (fields?: Record<string, string>): string[] {
  return [
    '--cap-drop=all', `--cap-add=${daemonSetCapabilities().join(',')}`,
    `--memory=${daemonSetMemoryLimit()}`, // what per-cpu workers are sized to (src/memory-limit.ts)
    ...daemonSetEnv(fields).flatMap((e) => ['--env', e]), // the V8 heap cap; NODE_NAME, which `flatnet status` finds its daemon by
    '--security-opt', 'no-new-privileges', // allowPrivilegeEscalation: false
    // readOnlyRootFilesystem, and no tmpfs on /tmp either: the kubelet adds none.
    ...(daemonSetReadOnlyRoot() ? ['--read-only', '--read-only-tmpfs=false'] : []),
    '-v', '/dev/net/tun:/dev/net/tun', // the hostPath volume, not a device podman adds
  ]
}

/** Container name for a lab node: its namespace's (flatnet-<tag>-<node>), so runs of different tags do not meet. */
export const containerName = (n: LabNode): string => n.ns.name

/**
 * Runs a lab node's daemon as the image: the image's own entrypoint and command
 * (`node /app/bin/flatnet.js daemon --config /etc/flatnet/config.json`), in the node's
 * namespace and no other, with the node's config mounted there. The lab's per-node files
 * (CNI dir, state file, control socket) are mounted at the paths the config names.
 * `flags`: more `podman run` flags (e.g. a seccomp profile).
 */
export function containerRunner (image: string, flags: string[] = []): DaemonRunner {
  return {
    command: (n) => {
      const configFile = n.configFile as string
      const labDir = dirname(configFile)
      return ['podman', 'run', '--rm', '--name', containerName(n), '--pull=never', '--runtime', 'runc', ...ulimitFlags(),
        '--network', `ns:/var/run/netns/${n.ns.name}`,
        ...daemonSetFlags(nodeFields(n)), ...flags,
        '-v', `${configFile}:/etc/flatnet/config.json:ro`,
        '-v', `${labDir}:${labDir}`,
        image]
    },
    cleanup: (n) => {
      try {
        execFileSync('podman', ['rm', '--force', '--ignore', '--time', '2', containerName(n)], { stdio: 'ignore' })
      } catch { /* podman gone or failing: the namespace's removal kills the processes anyway */ }
    },
  }
}

/** The container's main process as the host sees it (for /proc/<pid>/status), or 0 when not running. */
export function containerPid (n: LabNode): number {
  try {
    return Number(execFileSync('podman', ['inspect', '--format', '{{.State.Pid}}', containerName(n)], { encoding: 'utf8' }).trim())
  } catch {
    return 0
  }
}

/**
 * The podman flags that run a manifest's container as its pod spec says: its capabilities
 * (all dropped but those added), no privilege escalation, a read-only root (and no tmpfs
 * on /tmp: the kubelet adds none), its memory limit, its environment (`fields`: the
 * downward API's values), and each of its volumeMounts from the host path `volumes` maps
 * the volume's name to (the lab's stand-in for the hostPath or ConfigMap), read-only where
 * the mount is.
 */
export function podmanFlags (c: PodContainer, volumes: Record<string, string>, fields: Record<string, string> = {}): string[] {
  const sc = c.securityContext ?? {}
  const drop = sc.capabilities?.drop ?? []
  const add = sc.capabilities?.add ?? []
  const memory = c.resources?.limits?.memory
  return [
    ...(drop.includes('ALL') ? ['--cap-drop=all'] : drop.map((cap) => `--cap-drop=${cap}`)),
    ...(add.length ? [`--cap-add=${add.join(',')}`] : []),
    ...(sc.allowPrivilegeEscalation === false ? ['--security-opt', 'no-new-privileges'] : []),
    ...(sc.readOnlyRootFilesystem === true ? ['--read-only', '--read-only-tmpfs=false'] : []),
    ...(memory ? [`--memory=${memoryBytes(memory)}`] : []),
    ...containerEnv(c, fields).flatMap((e) => ['--env', e]),
    ...(c.volumeMounts ?? []).flatMap((m) => {
      const host = volumes[m.name]
      if (host === undefined) throw new Error(`container ${c.name}: the test maps no host path to its volume ${m.name} (${m.mountPath})`)
      return ['-v', `${host}:${m.mountPath}${m.readOnly === true ? ':ro' : ''}`]
    }),
  ]
}
