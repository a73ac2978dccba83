// The lab's tools table against what CI installs: a tool the tests drive that .ci/run
// does not install would make CI fail on a fresh machine (and a newcomer's skip reason
// name a package nobody checked).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ALL_TOOLS, installCommand, missingTools, packageOf, toolsMissing } from '../../src/lab/tools.js'

const ciRun = readFileSync(fileURLToPath(new URL('../../.ci/run', import.meta.url)), 'utf8')
const ciPackages = /^packages=\(([^)]*)\)/m.exec(ciRun)?.[1].split(/\s+/).filter(Boolean) ?? []

t.test('.ci/run installs the package of every tool the tests drive', async (t) => {
  t.ok(ciPackages.length > 0, 'found .ci/run\'s package list')
  for (const tool of ALL_TOOLS) t.ok(ciPackages.includes(packageOf(tool)), `${tool}: ${packageOf(tool)}`)
})

t.test('skip reasons name the missing tools and the one line that installs them', async (t) => {
  t.same(missingTools(['no-such-tool-here', 'sh']), ['no-such-tool-here'])
  t.equal(installCommand(['ping', 'nft', 'ping']), 'apt-get install iputils-ping nftables')
  t.equal(toolsMissing(['sh']), undefined)
  t.equal(toolsMissing(['no-such-tool-here']), 'needs no-such-tool-here: apt-get install no-such-tool-here')
})
