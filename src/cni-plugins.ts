// The CNI plugins the conflist delegates to, in the kubelet's CNI binary directory. The
// daemon checks they are there (a pod cannot start without them); the DaemonSet's init
// container installs the missing reference plugins from the image, never replacing one
// the node already has, and flatnet's own plugin whenever it differs from the image's,
// as flannel's init container installs its plugin.
import { accessSync, chmodSync, constants, copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { CNI_PLUGIN } from './guard/cni-server.js'

export const REFERENCE_PLUGINS = ['bridge', 'host-local', 'portmap'] as const
export const CNI_PLUGINS = [...REFERENCE_PLUGINS, CNI_PLUGIN] as const
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

function same (a: string, b: string): boolean {
  try {
    return readFileSync(a).equals(readFileSync(b))
  } catch {
    return false
  }
}

/**
 * Copies each reference plugin binDir lacks from `from`, and flatnet-cni unless binDir's is
 * the same file (temp file, then rename: the kubelet never runs half a binary).
 */
export function installPlugins (from: string, binDir: string): { installed: string[], kept: string[] } {
  const missing = CNI_PLUGINS.filter((p) => p === CNI_PLUGIN ? !same(join(from, p), join(binDir, p)) : !executable(join(binDir, p)))
  const unavailable = missing.filter((p) => !executable(join(from, p)))
  if (unavailable.length) throw new Error(`${unavailable.join(', ')} not found in ${from}: the image should carry Debian's containernetworking-plugins and ${CNI_PLUGIN} there`)
  mkdirSync(binDir, { recursive: true })
  for (const p of missing) {
    const tmp = join(binDir, `.${p}.${process.pid}.tmp`)
    copyFileSync(join(from, p), tmp)
    chmodSync(tmp, 0o755)
    renameSync(tmp, join(binDir, p))
  }
  return { installed: missing, kept: CNI_PLUGINS.filter((p) => !missing.includes(p)) }
}
