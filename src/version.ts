// The package's version and the commit built, as the CLI, the logs and the metrics name
// them: package.json beside src/ (tests) or dist/src/ (the built CLI and the image); the
// commit from the image's FLATNET_COMMIT (deploy/image/build.sh), else the checkout's .git.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function packageDir (): { dir: string, version: string } | undefined {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const path = fileURLToPath(new URL(rel, import.meta.url))
      const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'flatnet' && typeof pkg.version === 'string') return { dir: dirname(path), version: pkg.version }
    } catch {}
  }
  return undefined
}

/** HEAD's commit from the files git keeps (no child process): a branch's ref file or packed-refs. */
export function gitCommit (repo: string): string | undefined {
  try {
    const head = readFileSync(join(repo, '.git', 'HEAD'), 'utf8').trim()
    const ref = /^ref: (\S+)$/.exec(head)?.[1]
    if (!ref) return /^[0-9a-f]{40}$/.test(head) ? head.slice(0, 12) : undefined
    try {
      return readFileSync(join(repo, '.git', ref), 'utf8').trim().slice(0, 12)
    } catch {
      const line = readFileSync(join(repo, '.git', 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`))
      return line?.slice(0, 12)
    }
  } catch {
    return undefined
  }
}

const pkg = packageDir()
export const VERSION = pkg?.version ?? 'unknown'
export const COMMIT = process.env.FLATNET_COMMIT || (pkg && gitCommit(pkg.dir)) || 'unknown'
