// The package's version, as the CLI, the logs and the metrics name it: package.json beside
// src/ (tests) or dist/src/ (the built CLI and the image).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

function read (): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'flatnet' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return 'unknown'
}

export const VERSION = read()
