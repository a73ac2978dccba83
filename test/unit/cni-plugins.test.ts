// The CNI plugins the conflist delegates to: found missing, installed without
// replacing what the node has; flatnet's own kept the image's.
import t from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installPlugins, missingPlugins } from '../../src/cni-plugins.js'

const dir = mkdtempSync(join(tmpdir(), 'flatnet-cni-bin-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const plugin = (at: string, name: string, body: string): void => {
  mkdirSync(at, { recursive: true })
  writeFileSync(join(at, name), body)
  chmodSync(join(at, name), 0o755)
}

t.test('the missing plugins are installed, the node\'s own kept', async (t) => {
  const image = join(dir, 'image')
  const host = join(dir, 'host')
  for (const p of ['bridge', 'host-local', 'portmap', 'flatnet-cni']) plugin(image, p, `image ${p}`)
  plugin(host, 'bridge', 'the node\'s own bridge')
  t.same(missingPlugins(host), ['host-local', 'portmap', 'flatnet-cni'])
  t.same(installPlugins(image, host), { installed: ['host-local', 'portmap', 'flatnet-cni'], kept: ['bridge'] })
  t.equal(readFileSync(join(host, 'bridge'), 'utf8'), 'the node\'s own bridge', 'never replaced')
  t.equal(readFileSync(join(host, 'portmap'), 'utf8'), 'image portmap')
  t.same(missingPlugins(host), [])
  t.same(installPlugins(image, host), { installed: [], kept: ['bridge', 'host-local', 'portmap', 'flatnet-cni'] }, 'a second run changes nothing')
  // An update's image carries a new flatnet-cni: it replaces the node's, which an older daemon put there.
  plugin(image, 'flatnet-cni', 'image flatnet-cni, next version')
  t.same(installPlugins(image, host), { installed: ['flatnet-cni'], kept: ['bridge', 'host-local', 'portmap'] })
  t.equal(readFileSync(join(host, 'flatnet-cni'), 'utf8'), 'image flatnet-cni, next version', 'flatnet\'s own plugin follows the image')
})

t.test('a plugin neither the node nor the image has: an error naming it', async (t) => {
  const image = join(dir, 'thin-image')
  plugin(image, 'bridge', 'x')
  t.throws(() => installPlugins(image, join(dir, 'empty-host')), /host-local, portmap, flatnet-cni not found in .*thin-image/)
})
