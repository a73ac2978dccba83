// Runs a lab daemon with exactly the capabilities deploy/daemonset.yaml gives its
// container, so a test of what the DaemonSet gets follows the manifest. Also reads the
// other containers of the deploy/ manifests (the uninstall DaemonSet's init container,
// the CNI plugins' installer) for the tests that run them as their pods would.
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

/** A file of the repository, from the sources (test/lib) or their build (dist/test/lib, which bench:scale runs). */
function repoFile (path: string): string {
  return [new URL(`../../${path}`, import.meta.url), new URL(`../../../${path}`, import.meta.url)]
    .map((u) => fileURLToPath(u)).find((f) => existsSync(f)) ?? fileURLToPath(new URL(`../../${path}`, import.meta.url))
}

const manifest = repoFile('deploy/daemonset.yaml')

/** A container of a pod template, the fields the tests run it by. */
export interface PodContainer {
  name: string
  args?: string[]
  env?: Array<{ name: string, value?: string, valueFrom?: { fieldRef?: { fieldPath: string } } }>
  securityContext?: {
    capabilities?: { add?: string[], drop?: string[] }
    readOnlyRootFilesystem?: boolean
    allowPrivilegeEscalation?: boolean
  }
  resources?: { limits?: { memory?: string } }
  volumeMounts?: Array<{ name: string, mountPath: string, readOnly?: boolean }>
}

/** A container (or init container) of the DaemonSet in one of the repository's manifests; throws if there is none. */
export function manifestContainer (path: 'deploy/daemonset.yaml' | 'deploy/uninstall/daemonset.yaml', name: string): PodContainer {
  const file = repoFile(path)
  const ds = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()).find((d) => d?.kind === 'DaemonSet')
  const spec = ds?.spec?.template?.spec
  const c = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((x: PodContainer) => x.name === name) as PodContainer | undefined
  if (!c) throw new Error(`${file}: no container ${name} in the DaemonSet's pod template`)
  return c
}

/** The DaemonSet's flatnet container, as parsed from the manifest. */
function flatnetContainer (): PodContainer | undefined {
  const ds = parseAllDocuments(readFileSync(manifest, 'utf8')).map((d) => d.toJS()).find((d) => d?.kind === 'DaemonSet')
  return ds?.spec?.template?.spec?.containers?.find((c: PodContainer) => c.name === 'flatnet')
}

/** The capabilities the DaemonSet's flatnet container adds (it drops all others). */
export function daemonSetCapabilities (): string[] {
  const add = flatnetContainer()?.securityContext?.capabilities?.add
  if (!add) throw new Error(`${manifest}: no capabilities.add on the flatnet container`)
  return add
}

/** The flatnet container's root filesystem is read-only (securityContext.readOnlyRootFilesystem). */
export function daemonSetReadOnlyRoot (): boolean {
  return flatnetContainer()?.securityContext?.readOnlyRootFilesystem === true
}

/** A launcher (setpriv) that leaves a root daemon only the DaemonSet's capabilities. */
export function asDaemonSet (): string[] {
  const caps = daemonSetCapabilities().map((c) => `+${c.toLowerCase()}`).join(',')
  return ['setpriv', `--bounding-set=-all,${caps}`, '--inh-caps=-all', '--']
}

/**
 * A launcher that runs the daemon as the container runtime runs the DaemonSet's container:
 * /proc/sys and /sys read-only (containerd, CRI-O and runc mount them so for every
 * non-privileged container, whatever its capabilities), no_new_privs
 * (allowPrivilegeEscalation: false), and exactly the manifest's capabilities. The mounts
 * are made read-only per mount (bind, remount), in a mount namespace of its own.
 */
export function asDaemonSetContainer (): string[] {
  const restrict = 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && mount -o remount,bind,ro /sys && exec "$@"'
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', restrict, 'flatnet-container',
    ...asDaemonSet().slice(0, -1), '--no-new-privs', '--']
}

/** A memory quantity of a manifest (N Ki, Mi or Gi) in bytes. */
export function memoryBytes (limit: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(limit)
  if (!m) throw new Error(`memory limit "${limit}" is not N Ki, Mi or Gi`)
  return Number(m[1]) * 1024 ** (['Ki', 'Mi', 'Gi'].indexOf(m[2]) + 1)
}

/** The flatnet container's memory limit in bytes (resources.limits.memory: Ki, Mi or Gi). */
export function daemonSetMemoryLimit (): number {
  const limit = String(flatnetContainer()?.resources?.limits?.memory ?? '')
  try {
    return memoryBytes(limit)
  } catch {
    throw new Error(`${manifest}: the flatnet container's memory limit "${limit}" is not N Ki, Mi or Gi`)
  }
}

/**
 * A container's environment as NAME=value: its literal values and, given the values of
 * the fields its downward API entries name (`fields`, e.g. spec.nodeName: the lab node's
 * name), those too. Without `fields` the downward API entries are left out.
 */
export function containerEnv (c: PodContainer | undefined, fields?: Record<string, string>): string[] {
  return (c?.env ?? []).flatMap((e) => {
    if (e.value !== undefined) return [`${e.name}=${e.value}`]
    const path = e.valueFrom?.fieldRef?.fieldPath
    if (fields === undefined || path === undefined) return []
    if (fields[path] === undefined) throw new Error(`container ${c?.name ?? ''}: env ${e.name} comes from ${path}, which the test gave no value`)
    return [`${e.name}=${fields[path]}`]
  })
}

/** A container's args with $(VAR) replaced by its environment's VAR, as the kubelet expands them. */
export function containerArgs (c: PodContainer, env: string[]): string[] {
  const vars = new Map(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
  return (c.args ?? []).map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => vars.get(name) ?? whole))
}

/**
 * The flatnet container's environment (NAME=value): its literal entries, and with `fields`
 * (the downward API's values for this node: spec.nodeName, status.hostIP) NODE_NAME and
 * HOST_IP as the kubelet fills them in.
 */
export function daemonSetEnv (fields?: Record<string, string>): string[] {
  return containerEnv(flatnetContainer(), fields)
}
