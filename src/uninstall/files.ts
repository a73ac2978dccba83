// Files uninstall removes: each by its exact path, with the temporary files an atomic
// write (`<file>.<pid>.tmp`) leaves when a process dies between writing and renaming.
import { lstatSync, readdirSync, rmdirSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

export function present (path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** path's leftover temporary files, as writeAtomic and saveTable name them. */
function leftovers (path: string): string[] {
  const name = basename(path)
  try {
    return readdirSync(dirname(path)).filter((f) => f.startsWith(`${name}.`) && /\.\d+\.tmp$/.test(f)).map((f) => join(dirname(path), f))
  } catch {
    return []
  }
}

/** Removes the file (a symlink itself, not its target) and its leftovers; returns what was there. */
export function removeFile (path: string): string[] {
  const removed = [path, ...leftovers(path)].filter(present)
  for (const f of removed) rmSync(f, { force: true })
  return removed
}

/** The files of dir whose names pass `match`; none when dir does not exist. */
export function filesIn (dir: string, match: (name: string) => boolean): string[] {
  try {
    return readdirSync(dir).filter(match).sort().map((f) => join(dir, f))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

export function removeTree (path: string): void {
  rmSync(path, { recursive: true, force: true })
}

/** Removes an empty directory: 'removed', 'absent', 'mount' (a mount point, as in a pod) or 'not empty'. */
export function removeEmptyDir (path: string): 'removed' | 'absent' | 'mount' | 'not empty' {
  try {
    rmdirSync(path)
    return 'removed'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return 'absent'
    // A mount point; on a read-only root (the uninstall pod's readOnlyRootFilesystem) rmdir
    // meets the read-only parent before the busy mount point, and fails EROFS instead.
    if (code === 'EBUSY' || code === 'EROFS') return 'mount'
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'not empty'
    throw err
  }
}
