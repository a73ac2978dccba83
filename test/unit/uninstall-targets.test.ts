// What `flatnet uninstall` reads from the daemon's config: the same fields name the same
// paths; the DaemonSet's per-node placeholders are no error; without a node name the
// per-node files are found by pattern in flatnet's own directories.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { uninstallTargets } from '../../src/uninstall/targets.js'

const dir = mkdtempSync(join(tmpdir(), 'flatnet-uninstall-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
function configFile (config: Record<string, unknown>): string {
  const file = join(dir, `c${n++}.json`)
  writeFileSync(file, JSON.stringify(config))
  return file
}

const PLACEHOLDERS = {
  nodeName: 'set by --node-name',
  clusterCIDR: '10.244.0.0/16',
  podCIDR: 'set by --pod-cidr-from-node',
  underlay: { address: 'set by --underlay-address', port: 8472 },
  kubernetes: {},
  networkPolicy: {},
}

t.test('no config: the defaults, each node\'s files found by pattern', async (t) => {
  t.same(uninstallTargets(undefined), {
    node: undefined,
    tun: 'flatnet0',
    bridge: 'cni0',
    cni: { confDir: '/etc/cni/net.d', subnetFile: '/run/flatnet/subnet.env', ipamDataDir: undefined, binDir: '/opt/cni/bin', socket: '/run/flatnet/cni.sock', bridge: 'cni0' },
    control: { dir: '/run/flatnet' },
    state: { dir: '/var/lib/flatnet' },
    wireguardKey: '/var/lib/flatnet/wireguard.key',
    ownDirs: ['/run/flatnet', '/var/lib/flatnet'],
  })
})

t.test('the DaemonSet\'s ConfigMap: placeholders are no error; --node-name names the node\'s files', async (t) => {
  const file = configFile(PLACEHOLDERS)
  t.same(uninstallTargets(file).control, { dir: '/run/flatnet' }, 'no node name: every socket in /run/flatnet')
  const named = uninstallTargets(file, 'node-a')
  t.equal(named.node, 'node-a')
  t.same(named.control, { socket: '/run/flatnet/node-a.sock' })
  t.same(named.state, { file: '/var/lib/flatnet/node-a.peers' })
  t.throws(() => uninstallTargets(file, 'Node_A'), { field: 'nodeName', message: /--node-name "Node_A" is not a node name/ }, 'a bad --node-name is a config error (exit 2)')
})

t.test('a custom config names its own device, bridge and paths; "cni": false and "stateFile": false remove none', async (t) => {
  const custom = uninstallTargets(configFile({
    ...PLACEHOLDERS,
    nodeName: 'n1',
    tun: { name: 'ovl0' },
    bridge: { name: 'pods0' },
    cni: { confDir: '/x/net.d', subnetFile: '/x/subnet.env', binDir: '/x/bin', socket: '/x/cni.sock', ipamDataDir: '/x/ipam' },
    controlSocket: '/x/n1.sock',
    stateFile: '/x/n1.peers',
  }))
  t.match(custom, { node: 'n1', tun: 'ovl0', bridge: 'pods0', cni: { confDir: '/x/net.d', binDir: '/x/bin', ipamDataDir: '/x/ipam' } })
  t.same(custom.control, { socket: '/x/n1.sock' })
  t.same(custom.state, { file: '/x/n1.peers' })
  t.same(custom.ownDirs, [], 'no default directory in use: none removed')
  t.equal(custom.wireguardKey, '/x/wireguard.key', 'the WireGuard key beside the peer table, as the daemon keeps it')
  t.equal(uninstallTargets(configFile({ ...PLACEHOLDERS, wireguard: { privateKeyFile: '/keys/wg.key' } })).wireguardKey, '/keys/wg.key', 'or where wireguard.privateKeyFile says')
  const none = uninstallTargets(configFile({ ...PLACEHOLDERS, cni: false, stateFile: false }))
  t.equal(none.cni, undefined)
  t.equal(none.state, undefined)
})

t.test('a config the daemon would refuse is refused too', async (t) => {
  t.throws(() => uninstallTargets(configFile({ ...PLACEHOLDERS, tun: { name: 'a/b' } })), { field: 'tun.name', message: /not an interface name/ }, 'a bad tun.name')
  t.throws(() => uninstallTargets(join(dir, 'missing.json')), { field: '(file)', message: /cannot read/ }, 'no such file')
})
