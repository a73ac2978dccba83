// The CLI by the ecosystem's conventions: --help and -h on every command answer (exit 0, the
// usage on stdout), --version names the package's version; the daemon's logs are JSON lines
// with level names and ISO times (what kubectl logs readers and shippers parse).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createLogger } from '../../src/log.js'
import { COMMIT } from '../../src/version.js'

const cli = new URL('../../bin/flatnet.js', import.meta.url).pathname
const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
const run = (...args: string[]): { status: number | null, stdout: string, stderr: string } => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })

t.test('--help and -h on every command: the usage, exit 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['help'], ['daemon', '--help'], ['peers', '-h'], ['stats', '--help'], ['install-cni-plugins', '--help'], ['policy', 'explain', '-h'], ['policy', 'matrix', '--help'],
    ['status', '--help'], ['status', '--all', '-h'], ['uninstall', '--help'], ['policy', 'drops', '--help']]) {
    const r = run(...args)
    t.equal(r.status, 0, `flatnet ${args.join(' ')}: exit 0`)
    t.match(r.stdout, /^usage: flatnet/, `flatnet ${args.join(' ')}: the usage on stdout`)
  }
  t.equal(run('nonsense').status, 2, 'an unknown command is still a usage error')
})

t.test('--version names the package\'s version and commit', async (t) => {
  t.same([run('--version').status, run('--version').stdout], [0, `flatnet ${version} (${COMMIT})\n`])
  t.match(COMMIT, /^[0-9a-f]{12}$/, 'and the commit, from the checkout\'s .git')
})

t.test('log lines: JSON with the level by name and an ISO time', async (t) => {
  const lines: string[] = []
  const log = createLogger('info', 'flatnet', { write: (l: string) => { lines.push(l) } })
  log.warn({ peer: 'n2' }, 'peer refused')
  const line = JSON.parse(lines[0]) as { level: string, time: string, msg: string }
  t.equal(line.level, 'warn')
  t.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.equal(line.msg, 'peer refused')
})
