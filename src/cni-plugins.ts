// The reference CNI plugins the conflist delegates to, in the kubelet's CNI binary
// directory. The daemon checks they are there (a pod cannot start without them); the
// DaemonSet's init container installs the missing ones from the image, never replacing
// one the node already has, as flannel's init container installs its plugin.
import { accessSync, chmodSync, constants, copyFileSync, mkdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'

export const CNI_PLUGINS = ['bridge', 'host-local', 'portmap'] as const
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin' // the kubelet's and containerd's default

function executable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The plugins the conflist needs that binDir lacks. */
export function missingPlugins (binDir: string): string[] {
  return CNI_PLUGINS.filter((p) => !executable(join(binDir, p)))
}

/** Copies each plugin binDir lacks from `from` (temp file, then rename: the kubelet never runs half a binary). */
export function installPlugins (from: string, binDir: string): { installed: string[], kept: string[] } {
  const missing = missingPlugins(binDir)
  const unavailable = missing.filter((p) => !executable(join(from, p)))
  if (unavailable.length) throw new Error(`${unavailable.join(', ')} not found in ${from}: the image should carry Debian's containernetworking-plugins there`)
  mkdirSync(binDir, { recursive: true })
  for (const p of missing) {
    const tmp = join(binDir, `.${p}.${process.pid}.tmp`)
    copyFileSync(join(from, p), tmp)
    chmodSync(tmp, 0o755)
    renameSync(tmp, join(binDir, p))
  }
  return { installed: missing, kept: CNI_PLUGINS.filter((p) => !missing.includes(p)) }
}
