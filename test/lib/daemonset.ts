// Runs a lab daemon with exactly the capabilities deploy/daemonset.yaml gives its
// container, so a test of what the DaemonSet gets follows the manifest.
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

// From the sources (test/lib) or their build (dist/test/lib, which bench:scale runs): the repository's.
const manifest = [new URL('../../deploy/daemonset.yaml', import.meta.url), new URL('../../../deploy/daemonset.yaml', import.meta.url)]
  .map((u) => fileURLToPath(u)).find((f) => existsSync(f)) ?? fileURLToPath(new URL('../../deploy/daemonset.yaml', import.meta.url))

interface Container {
  name: string
  env?: Array<{ name: string, value?: string }>
  securityContext?: { capabilities?: { add?: string[] }, readOnlyRootFilesystem?: boolean }
  resources?: { limits?: { memory?: string } }
}

/** The DaemonSet's flatnet container, as parsed from the manifest. */
function flatnetContainer (): Container | undefined {
  const ds = parseAllDocuments(readFileSync(manifest, 'utf8')).map((d) => d.toJS()).find((d) => d?.kind === 'DaemonSet')
  return ds?.spec?.template?.spec?.containers?.find((c: Container) => c.name === 'flatnet')
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

/** The flatnet container's memory limit in bytes (resources.limits.memory: Ki, Mi or Gi). */
export function daemonSetMemoryLimit (): number {
  const limit = String(flatnetContainer()?.resources?.limits?.memory ?? '')
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(limit)
  if (!m) throw new Error(`${manifest}: the flatnet container's memory limit "${limit}" is not N Ki, Mi or Gi`)
  return Number(m[1]) * 1024 ** (['Ki', 'Mi', 'Gi'].indexOf(m[2]) + 1)
}

/** The flatnet container's literal environment (NAME=value; those from the downward API are the lab's own). */
export function daemonSetEnv (): string[] {
  return (flatnetContainer()?.env ?? []).filter((e) => e.value !== undefined).map((e) => `${e.name}=${e.value as string}`)
}
