// This node's WireGuard key file: generated once (0600 from the first byte, `wg genkey`'s form),
// read back unchanged on every later start, never replaced under another process, and refused,
// saying what to do, when it is malformed, not a regular file, or readable by others.
import t, { type Test } from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeyFileError, loadOrCreateKey, readKey, writeKey } from '../../src/wireguard/key-file.js'
import { generatePrivateKey, parseKey, publicKeyOf } from '../../src/wireguard/keys.js'

function dir (t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'flatnet-wgkey-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

t.test('generated on first start, 0600, one line of base64; the same key on every later start', async (t) => {
  const file = join(dir(t), 'state', 'wireguard.key') // the directory too is created
  const first = loadOrCreateKey(file)
  t.equal(first.created, true)
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.equal(statSync(join(file, '..')).mode & 0o077, 0, 'a directory made for it is the daemon\'s alone')
  const text = readFileSync(file, 'utf8')
  t.match(text, /^[A-Za-z0-9+/]{43}=\n$/, 'as `wg genkey` writes it')
  t.same(parseKey(text), first.privateKey)
  t.same(first.publicKey, publicKeyOf(first.privateKey))
  t.equal(first.privateKey[0] & 7, 0, 'clamped')
  const again = loadOrCreateKey(file)
  t.equal(again.created, false)
  t.same(again.privateKey, first.privateKey, 'survives a restart')
  t.same(again.publicKey, first.publicKey)
  t.same(readdirSync(join(file, '..')), ['wireguard.key'], 'no temporary file left behind')
})

t.test('a key `wg genkey` wrote is taken as it is', async (t) => {
  const file = join(dir(t), 'wireguard.key')
  const key = generatePrivateKey()
  writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600 })
  const k = loadOrCreateKey(file)
  t.same([k.created, k.privateKey], [false, key])
})

t.test('the temporary file is 0600 whatever the umask, and a key someone else wrote first is never replaced', async (t) => {
  const d = dir(t)
  const file = join(d, 'wireguard.key')
  const old = process.umask(0)
  try {
    t.equal(writeKey(file, generatePrivateKey()), true)
  } finally {
    process.umask(old)
  }
  t.equal(statSync(file).mode & 0o777, 0o600, 'umask 0: still 0600')
  const theirs = readKey(file)
  t.equal(writeKey(file, generatePrivateKey()), false, 'a file there: not written')
  t.same(readKey(file), theirs, 'the first key stays')
  t.same(readdirSync(d), ['wireguard.key'])
})

t.test('refused, saying what to do: group- or world-readable, malformed, a symlink, a directory', async (t) => {
  const d = dir(t)
  const file = join(d, 'wireguard.key')
  writeFileSync(file, `${generatePrivateKey().toString('base64')}\n`, { mode: 0o600 })
  for (const mode of [0o644, 0o640, 0o604, 0o620]) {
    chmodSync(file, mode)
    t.throws(() => loadOrCreateKey(file), new KeyFileError(`${file}: the private key is readable or writable by group or others (mode 0${mode.toString(8)}); ` +
      'delete it to have a new key generated (peers re-handshake), or chmod 600 it if nobody else can have read it'), mode.toString(8))
  }
  chmodSync(file, 0o400)
  t.ok(loadOrCreateKey(file), '0400 is fine')
  for (const bad of ['', 'not a key\n', Buffer.alloc(31).toString('base64'), `${Buffer.alloc(32).toString('hex')}\n`]) {
    writeFileSync(file, bad, { mode: 0o600 })
    chmodSync(file, 0o600)
    t.throws(() => loadOrCreateKey(file), { message: /wireguard\.key: does not hold a WireGuard private key \(32 bytes in base64, as `wg genkey` writes\); delete it/ },
      JSON.stringify(bad))
    t.equal(readFileSync(file, 'utf8'), bad, 'a malformed file is left for the operator, not overwritten')
  }
  const real = join(d, 'real.key')
  writeFileSync(real, `${generatePrivateKey().toString('base64')}\n`, { mode: 0o600 })
  const link = join(d, 'link.key')
  symlinkSync(real, link)
  t.throws(() => loadOrCreateKey(link), { message: /link\.key: is a symbolic link/ })
  const sub = join(d, 'sub.key')
  mkdirSync(sub)
  t.throws(() => loadOrCreateKey(sub), { message: /sub\.key: is not a regular file/ })
})

t.test('a directory it cannot make: refused, naming the file and what to do', { timeout: 5000 }, async (t) => {
  const d = dir(t)
  symlinkSync(join(d, 'nowhere'), join(d, 'state')) // a dangling link where the directory should be: fails for root too
  const file = join(d, 'state', 'wireguard.key')
  t.throws(() => loadOrCreateKey(file), { message: /state\/wireguard\.key: cannot write a new private key: .*; make the directory writable .*, or set wireguard\.privateKeyFile$/ })
  t.same(readdirSync(d), ['state'], 'nothing written')
})
