// The memory limit this process runs under (its cgroup's, the tightest of the
// cgroup and its ancestors), so per-cpu workers can be sized to it: a DaemonSet's
// memory limit is fixed while nodes' CPU counts are not, and each busy worker
// holds ~2.8 MB of packet buffers (info.packetMemoryPerWorker).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Share of the limit the packet buffers may take: the rest is V8's heap, the addon's
 *  tables and the kernel's socket buffers, which a cgroup also charges. */
export const PACKET_MEMORY_SHARE = 0.5

/**
 * The limit in bytes, or undefined when there is none (or no cgroup filesystem).
 * cgroup v1: the memory controller's memory.limit_in_bytes, where "no limit" is a
 * huge number; v2: memory.max along /proc/self/cgroup's path (in a container's
 * cgroup namespace that path is "/", its own cgroup).
 */
export function memoryLimit (root = '/sys/fs/cgroup', selfCgroup = '/proc/self/cgroup'): number | undefined {
  let lines: string[]
  try {
    lines = readFileSync(selfCgroup, 'utf8').split('\n')
  } catch {
    return undefined
  }
  // A v1 memory controller (hybrid hosts mount v2 beside it, without controllers) first.
  const v1 = lines.map((l) => l.split(':')).find((f) => f.length >= 3 && f[1].split(',').includes('memory'))
  if (v1 !== undefined) return tightest(join(root, 'memory'), v1.slice(2).join(':'), 'memory.limit_in_bytes')
  const v2 = lines.find((l) => l.startsWith('0::'))
  if (v2 !== undefined) return tightest(root, v2.slice(3), 'memory.max')
  return undefined
}

// The smallest limit from the cgroup at path up to the root of the hierarchy.
function tightest (root: string, path: string, file: string): number | undefined {
  let limit: number | undefined
  const parts = path.split('/').filter(Boolean)
  for (let depth = parts.length; depth >= 0; depth--) {
    const value = readLimit(join(root, ...parts.slice(0, depth), file))
    if (value !== undefined && (limit === undefined || value < limit)) limit = value
  }
  return limit
}

function readLimit (file: string): number | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch {
    return undefined // the root cgroup has no limit file
  }
  const n = Number(text)
  // "max" (v2), or v1's page-rounded LONG_MAX: no limit.
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/** Bytes the data plane's packet buffers may take under the limit (0: no bound). */
export function packetMemoryBudget (limit: number | undefined): number {
  return limit === undefined ? 0 : Math.floor(limit * PACKET_MEMORY_SHARE)
}
