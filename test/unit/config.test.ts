// Config validation: every bad field is named with what is wrong; defaults fill in.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, FLAG_FIELDS, loadConfig, parseConfig } from '../../src/config.js'
import { formatMac, macFromName } from '../../src/net/mac.js'
import { DEFAULT_WIREGUARD_PORT } from '../../src/wireguard/config.js'

const KEY = Buffer.alloc(32, 7).toString('base64') // any 32 bytes: the config checks the form, not the curve

const base = () => ({
  nodeName: 'n1',
  clusterCIDR: '10.244.0.0/16',
  podCIDR: '10.244.1.0/24',
  underlay: { address: '192.0.2.1', port: 8472 },
  peers: [{ nodeName: 'n2', podCIDR: '10.244.2.0/24', address: '192.0.2.2', vtepMAC: '02:00:00:00:00:02' }],
})

t.test('defaults', async (t) => {
  const c = parseConfig(base())
  t.equal(c.vni, 1)
  t.equal(c.tun.name, 'flatnet0')
  t.equal(c.offloads, true)
  t.equal(c.workers, 'auto', 'per-cpu workers where their steering programs load, else the pipeline')
  t.equal(parseConfig({ ...base(), workers: 'per-cpu' }).workers, 'per-cpu')
  t.equal(parseConfig({ ...base(), workers: 'pipeline' }).workers, 'pipeline')
  t.equal(c.mtu, undefined, 'MTU left to detection from the underlay')
  t.equal(formatMac(c.vtepMAC), formatMac(macFromName('n1')), 'VTEP MAC derived from the node name')
  t.equal(c.peers[0].port, 8472, 'peer port defaults to our own')
  t.equal(c.vtepMAC[0] & 3, 2, 'derived MAC is locally administered unicast')
  t.same(macFromName('n1'), macFromName('n1'), 'same name, same MAC across restarts')
  t.notSame(macFromName('n1'), macFromName('n2'))
})

t.test('dual-stack CIDRs', async (t) => {
  const c = parseConfig({ ...base(), clusterCIDR: ['10.244.0.0/16', 'fd00:10:244::/56'], podCIDR: ['10.244.1.0/24', 'fd00:10:244:1::/64'] })
  t.equal(c.podCIDRs.length, 2)
  t.equal(c.podCIDRs[1].family, 6)
})

const cases: Array<[string, (c: any) => void, string, RegExp]> = [
  ['missing nodeName', (c) => { delete c.nodeName }, 'nodeName', /is required|not a node name/],
  ['podCIDR not a CIDR', (c) => { c.podCIDR = '10.244.1.0/33' }, 'podCIDR', /not a CIDR/],
  ['podCIDR host bits', (c) => { c.podCIDR = '10.244.1.5/24' }, 'podCIDR', /host bits/],
  ['podCIDR outside cluster', (c) => { c.podCIDR = '10.245.1.0/24' }, 'podCIDR', /not inside clusterCIDR/],
  ['bad underlay address', (c) => { c.underlay.address = '192.0.2.300' }, 'underlay.address', /not an IP/],
  ['missing underlay', (c) => { delete c.underlay }, 'underlay', /is required/],
  ['port out of range', (c) => { c.underlay.port = 70000 }, 'underlay.port', /integer from 1 to 65535/],
  ['vni too big', (c) => { c.vni = 1 << 24 }, 'vni', /integer from 1 to 16777215/],
  ['multicast MAC', (c) => { c.vtepMAC = '01:00:5e:00:00:01' }, 'vtepMAC', /multicast/],
  ['bad MAC', (c) => { c.vtepMAC = 'zz' }, 'vtepMAC', /not a MAC/],
  ['mtu too small', (c) => { c.mtu = 100 }, 'mtu', /integer from 576/],
  ['unknown field', (c) => { c.colour = 'blue' }, 'colour', /unknown field/],
  ['bad tun name', (c) => { c.tun = { name: 'a-name-longer-than-15' } }, 'tun.name', /not an interface name/],
  ['offloads not boolean', (c) => { c.offloads = 'yes' }, 'offloads', /true or false/],
  ['unknown worker layout', (c) => { c.workers = 'many' }, 'workers', /one of auto, pipeline, per-cpu/],
  ['peer overlaps own podCIDR', (c) => { c.peers[0].podCIDR = '10.244.1.0/24' }, 'peers[0].podCIDR', /overlaps this node/],
  ['peer outside clusterCIDR', (c) => { c.peers[0].podCIDR = '10.99.2.0/24' }, 'peers[0].podCIDR', /10\.99\.2\.0\/24 is outside clusterCIDR \(10\.244\.0\.0\/16\)/],
  ['peers overlap each other', (c) => { c.peers.push({ ...c.peers[0], nodeName: 'n3', address: '192.0.2.3' }) }, 'peers[1].podCIDR', /overlaps n2/],
  ['peer is self', (c) => { c.peers[0].nodeName = 'n1' }, 'peers[0].nodeName', /is this node/],
  ['peer missing MAC', (c) => { delete c.peers[0].vtepMAC }, 'peers[0].vtepMAC', /is required/],
  ['two IPv4 pod CIDRs', (c) => { c.podCIDR = ['10.244.1.0/24', '10.244.2.0/24'] }, 'podCIDR', /one IPv4 and one IPv6/],
  ['a peer twice', (c) => { c.peers.push({ ...c.peers[0], podCIDR: '10.244.3.0/24' }) }, 'peers[1].nodeName', /"n2" is also peers\[0\]: keep one entry per node/],
  ['unknown encryption', (c) => { c.encryption = 'ipsec' }, 'encryption', /must be one of none, wireguard/],
  ['wireguard not an object', (c) => { c.wireguard = true }, 'wireguard', /must be an object/],
  ['wireguard unknown field', (c) => { c.wireguard = { psk: 'x' } }, 'wireguard.psk', /unknown field \(known: port, strict, presharedKeyFile, privateKeyFile, rekeyAfterSeconds\)/],
  ['wireguard port out of range', (c) => { c.wireguard = { port: 0 } }, 'wireguard.port', /integer from 1 to 65535/],
  ['wireguard port is the VTEP\'s', (c) => { c.encryption = 'wireguard'; c.wireguard = { port: 8472 } }, 'wireguard.port', /8472 is underlay\.port too/],
  ['wireguard strict not boolean', (c) => { c.wireguard = { strict: 'yes' } }, 'wireguard.strict', /true or false/],
  ['wireguard presharedKeyFile relative', (c) => { c.wireguard = { presharedKeyFile: 'psk' } }, 'wireguard.presharedKeyFile', /absolute path/],
  ['wireguard privateKeyFile relative', (c) => { c.wireguard = { privateKeyFile: 'wg.key' } }, 'wireguard.privateKeyFile', /absolute path/],
  ['peer key not base64 of 32 bytes', (c) => { c.peers[0].wireguardPublicKey = 'AAAA' }, 'peers[0].wireguardPublicKey', /"AAAA" is not a WireGuard public key/],
  ['peer key not a string', (c) => { c.peers[0].wireguardPublicKey = 42 }, 'peers[0].wireguardPublicKey', /not a WireGuard public key/],
  ['two peers with one key', (c) => {
    c.peers[0].wireguardPublicKey = KEY
    c.peers.push({ nodeName: 'n3', podCIDR: '10.244.3.0/24', address: '192.0.2.3', vtepMAC: '02:00:00:00:00:03', wireguardPublicKey: KEY })
  }, 'peers[1].wireguardPublicKey', /is n2's too: each node has its own key/],
  ['a WireGuard-only peer of a node that does not encrypt', (c) => { c.peers[0].wireguardPublicKey = KEY; delete c.peers[0].vtepMAC }, 'peers[0].vtepMAC', /is required unless "encryption" is "wireguard"/],
  ['peer wireguardPort out of range', (c) => { c.peers[0].wireguardPort = 65536 }, 'peers[0].wireguardPort', /integer from 1 to 65535/],
]

for (const [name, mutate, field, message] of cases) {
  t.test(name, async (t) => {
    const c = base()
    mutate(c)
    const err = (() => {
      try {
        parseConfig(c)
      } catch (e) {
        return e
      }
    })()
    t.type(err, ConfigError)
    const e = err as ConfigError
    t.equal(e.field, field)
    t.match(e.message, message)
    t.ok(e.message.startsWith(`config.${field}: `), e.message)
  })
}

t.test('the CLI exits 2 naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'bad.json')
  writeFileSync(file, JSON.stringify({ ...base(), podCIDR: '10.244.1.0/33' }))
  const cli = new URL('../../bin/flatnet.js', import.meta.url).pathname
  const bad = spawnSync(process.execPath, [cli, 'daemon', '--config', file], { encoding: 'utf8' })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /config\.podCIDR: "10\.244\.1\.0\/33" is not a CIDR/)
  writeFileSync(file, '{ not json')
  const unreadable = spawnSync(process.execPath, [cli, 'daemon', '--config', file], { encoding: 'utf8' })
  t.equal(unreadable.status, 2)
  t.match(unreadable.stderr, /not valid JSON/)
  const flag = spawnSync(process.execPath, [cli, 'daemon', '--config', file, '--offloads', 'maybe'], { encoding: 'utf8' })
  t.equal(flag.status, 2)
  t.match(flag.stderr, /--offloads takes on or off/)
})

t.test('networkPolicy: a manifests directory, or the API server through the kubernetes source', async (t) => {
  const base = { nodeName: 'n1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', underlay: { address: '192.0.2.1' } }
  t.same(parseConfig({ ...base, networkPolicy: { manifests: '/etc/flatnet/policies' } }).networkPolicy, { manifests: '/etc/flatnet/policies' })
  t.same(parseConfig({ ...base, kubernetes: {}, networkPolicy: {} }).networkPolicy, {})
  t.throws(() => parseConfig({ ...base, networkPolicy: {} }), /config\.networkPolicy: give "manifests": DIR, or configure the "kubernetes" source/)
  t.throws(() => parseConfig({ ...base, networkPolicy: { manifests: 'policies' } }), /config\.networkPolicy\.manifests: must be the absolute path of a directory/)
  t.throws(() => parseConfig({ ...base, networkPolicy: { dir: '/x' } }), /config\.networkPolicy\.dir: unknown field/)
})

t.test('etcd: TLS files and a user, each checked at start, naming the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-etcd-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const f of ['ca.crt', 'node.crt', 'node.key', 'password']) writeFileSync(join(dir, f), 'x')
  const etcd = (e: Record<string, unknown>): Record<string, unknown> => ({ ...base(), etcd: { endpoints: ['https://10.0.0.5:2379'], ...e } })
  const full = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'node.crt'), keyFile: join(dir, 'node.key'), username: 'flatnet', passwordFile: join(dir, 'password') }
  t.same(parseConfig(etcd(full)).sources.etcd, {
    endpoints: ['https://10.0.0.5:2379'],
    prefix: '/flatnet/nodes/',
    ttlSeconds: 10,
    tls: { caFile: full.caFile, certFile: full.certFile, keyFile: full.keyFile },
    username: 'flatnet',
    passwordFile: full.passwordFile,
  })
  t.same(parseConfig(etcd({})).sources.etcd, { endpoints: ['https://10.0.0.5:2379'], prefix: '/flatnet/nodes/', ttlSeconds: 10 }, 'neither: none')
  t.throws(() => parseConfig(etcd({ caFile: join(dir, 'missing.crt') })), /config\.etcd\.caFile: cannot read .*missing\.crt/)
  t.throws(() => parseConfig(etcd({ certFile: full.certFile })), /config\.etcd\.keyFile: certFile and keyFile go together/)
  t.throws(() => parseConfig(etcd({ username: 'flatnet' })), /config\.etcd\.passwordFile: username and passwordFile go together/)
  t.throws(() => parseConfig(etcd({ caFile: 'ca.crt' })), /config\.etcd\.caFile: must be an absolute path/)
  t.throws(() => parseConfig({ ...base(), etcd: { endpoints: ['http://10.0.0.5:2379'], caFile: full.caFile } }), /config\.etcd\.endpoints: caFile, certFile and keyFile are for https:\/\/ endpoints/)
})

t.test('an override\'s error names the flag the user typed; the file\'s fields stay config.FIELD', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'node.json')
  writeFileSync(file, JSON.stringify({ ...base(), channel: { key: 'k'.repeat(16) } }))
  const flags: Array<[string, unknown, RegExp]> = [
    ['node-name', 'N_1', /^--node-name: "N_1" is not a node name/],
    ['pod-cidr', '10.245.1.0/24', /^--pod-cidr: 10\.245\.1\.0\/24 is not inside clusterCIDR/],
    ['pod-cidr', ['10.244.1.0/24', '10.244.9.0/33'], /^--pod-cidr: "10\.244\.9\.0\/33"/],
    ['pod-cidr-from-node', '10.245.1.0/24', /^--pod-cidr-from-node: 10\.245\.1\.0\/24 is not inside clusterCIDR/],
    ['underlay-address', '192.0.2.300', /^--underlay-address: "192\.0\.2\.300" is not an IP address/],
    ['join', '192.0.2.7:99999', /^--join: "192\.0\.2\.7:99999": port must be 1-65535/],
    ['offloads', 'maybe', /^--offloads: "maybe" must be true or false/],
    ['log-level', 'verbose', /^--log-level: must be one of trace, debug, info, warn, error/],
  ]
  t.same([...new Set(flags.map(([f]) => f))].sort(), Object.keys(FLAG_FIELDS).sort(), 'every flag that overrides a field')
  for (const [flag, value, message] of flags) {
    t.throws(() => loadConfig(file, { [flag]: value }), { message }, `--${flag}`)
  }
  t.throws(() => loadConfig(file, { 'node-name': 'n2' }), { message: /^config\.peers\[0\]\.nodeName: "n2" is this node/ },
    'a file field\'s error stays config.FIELD, even when a flag\'s value set it off')
  writeFileSync(file, JSON.stringify({ ...base(), vni: 0 }))
  t.throws(() => loadConfig(file, { 'log-level': 'info' }), { message: /^config\.vni: / })
  writeFileSync(file, JSON.stringify({ ...base(), underlay: { address: '192.0.2.1', port: 4789 }, channel: { key: 'k'.repeat(16) } }))
  const c = loadConfig(file, { 'underlay-address': '192.0.2.9', join: '192.0.2.8' })
  t.same([c.underlay.port, c.sources.channel?.join, c.sources.channel?.key.length], [4789, [{ host: '192.0.2.8', port: 8473 }], 16],
    'a nested override keeps the file\'s other fields')
})

t.test('a JSON syntax error: FILE:LINE:COLUMN and the parser\'s words', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'node.json')
  writeFileSync(file, '{\n  "nodeName": "n1",\n  "logLevel": verbose\n}\n')
  t.throws(() => loadConfig(file), { message: `${file}:3:15: Unexpected token 'v' (not valid JSON)` })
  writeFileSync(file, '{\n  "nodeName": "n1",\n}\n')
  t.throws(() => loadConfig(file), { message: `${file}:3:1: Expected double-quoted property name (not valid JSON)` })
  writeFileSync(file, '[1]')
  t.throws(() => loadConfig(file), { message: `${file}: must hold a JSON object` })
  t.throws(() => loadConfig(join(dir, 'missing.json')), new RegExp(`^${join(dir, 'missing.json')}: cannot read it: ENOENT`))
})

t.test('encryption: none by default; wireguard with its defaults, the key beside the peer table', async (t) => {
  const off = parseConfig(base())
  t.equal(off.encryption, 'none')
  t.equal(off.wireguard, undefined, 'nothing WireGuard with encryption off')
  t.equal(parseConfig({ ...base(), wireguard: { port: 51900 } }).wireguard, undefined, 'a wireguard object is checked, but unused while encryption is none')
  const on = parseConfig({ ...base(), encryption: 'wireguard' })
  t.equal(on.encryption, 'wireguard')
  t.same(on.wireguard, { port: DEFAULT_WIREGUARD_PORT, strict: false, privateKeyFile: '/var/lib/flatnet/wireguard.key', rekeyAfterMs: 120_000 },
    'port 51820, not strict, the key in the DaemonSet\'s state mount, rekeyed after the whitepaper\'s 120 s')
  t.equal(DEFAULT_WIREGUARD_PORT, 51820)
  t.equal(parseConfig({ ...base(), encryption: 'wireguard', stateFile: '/srv/flatnet/n1.peers' }).wireguard?.privateKeyFile, '/srv/flatnet/wireguard.key',
    'in the state file\'s directory')
  t.equal(parseConfig({ ...base(), encryption: 'wireguard', stateFile: false }).wireguard?.privateKeyFile, '/var/lib/flatnet/wireguard.key',
    'no state file: the default state directory')
  const custom = parseConfig({ ...base(), encryption: 'wireguard', wireguard: { port: 51821, strict: true, privateKeyFile: '/etc/flatnet/wg/n1.key', rekeyAfterSeconds: 30 } })
  t.same(custom.wireguard, { port: 51821, strict: true, privateKeyFile: '/etc/flatnet/wg/n1.key', rekeyAfterMs: 30_000 })
  for (const bad of [4, 121, 2.5, '60']) {
    t.throws(() => parseConfig({ ...base(), encryption: 'wireguard', wireguard: { rekeyAfterSeconds: bad } }), /^config\.wireguard\.rekeyAfterSeconds: /, `rekeyAfterSeconds ${JSON.stringify(bad)}: refused, naming the field`)
  }
  const peers = parseConfig({ ...base(), peers: [{ ...base().peers[0], wireguardPublicKey: KEY }] }).peers
  t.same(peers[0].wgKey, Buffer.alloc(32, 7), 'a static peer\'s key, raw')
  t.notOk('wgKey' in off.peers[0], 'a static peer without one has none')
  const { vtepMAC, ...flannelPeer } = base().peers[0]
  const [wgOnly] = parseConfig({ ...base(), encryption: 'wireguard', peers: [{ ...flannelPeer, wireguardPublicKey: KEY, wireguardPort: 51821 }] }).peers
  t.equal(wgOnly.vtepMAC, undefined, `a node of flannel's wireguard backend: a key and no VTEP MAC (the others' was ${vtepMAC})`)
  t.equal(wgOnly.wgPort, 51821, 'at its own WireGuard port')
})

t.test('wireguard.presharedKeyFile: read at start, as `wg genpsk` writes it; a bad one names the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-psk-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const psk = Buffer.alloc(32, 9)
  const file = join(dir, 'psk')
  writeFileSync(file, `${psk.toString('base64')}\n`)
  const c = parseConfig({ ...base(), encryption: 'wireguard', wireguard: { presharedKeyFile: file } })
  t.same(c.wireguard?.presharedKey, psk)
  t.equal(c.wireguard?.presharedKeyFile, file)
  t.throws(() => parseConfig({ ...base(), encryption: 'wireguard', wireguard: { presharedKeyFile: join(dir, 'missing') } }),
    /^config\.wireguard\.presharedKeyFile: cannot read .*missing: ENOENT/)
  for (const bad of ['', 'not a key', psk.toString('hex'), Buffer.alloc(31).toString('base64'), Buffer.alloc(33).toString('base64')]) {
    writeFileSync(file, bad)
    t.throws(() => parseConfig({ ...base(), encryption: 'wireguard', wireguard: { presharedKeyFile: file } }),
      /^config\.wireguard\.presharedKeyFile: .*psk does not hold a pre-shared key \(32 bytes in base64, as `wg genpsk` writes\)/, JSON.stringify(bad))
  }
  const cli = new URL('../../bin/flatnet.js', import.meta.url).pathname
  const config = join(dir, 'node.json')
  writeFileSync(config, JSON.stringify({ ...base(), encryption: 'wireguard', wireguard: { presharedKeyFile: file } }))
  const run = spawnSync(process.execPath, [cli, 'daemon', '--config', config], { encoding: 'utf8' })
  t.equal(run.status, 2, 'the CLI exits 2')
  t.match(run.stderr, /config\.wireguard\.presharedKeyFile: .* does not hold a pre-shared key/)
})
