// What the daemon writes for the kubelet and for nftables, without root: the
// conflist, subnet.env, the masquerade ruleset text, and the config fields behind them.
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { conflist, DEFAULT_CNI, subnetEnv, writeCniFiles } from '../../src/cni.js'
import { ConfigError, parseConfig } from '../../src/config.js'
import { type Cidr, parseCidr } from '../../src/net/cidr.js'
import { masqueradeRules } from '../../src/net/masquerade.js'

const cidr = (s: string): Cidr => parseCidr(s) as Cidr
const dual = {
  clusterCIDRs: [cidr('10.244.0.0/16'), cidr('fd00:10:244::/48')],
  podCIDRs: [cidr('10.244.3.0/24'), cidr('fd00:10:244:3::/64')],
  mtu: 1430,
  ipMasq: true,
}

t.test('conflist: bridge + host-local per family + portmap, then flatnet-cni', async (t) => {
  const c = conflist(dual, { ...DEFAULT_CNI, ipamDataDir: '/tmp/ipam' }) as any
  t.equal(c.cniVersion, '1.0.0')
  t.equal(c.name, 'flatnet')
  t.same(c.plugins.map((p: any) => p.type), ['bridge', 'portmap', 'flatnet-cni'])
  t.same(c.plugins[2], { type: 'flatnet-cni', socket: '/run/flatnet/cni.sock' }, 'last: it gets the others\' result, names the daemon\'s socket')
  t.match(c.plugins[0], { bridge: 'cni0', isGateway: true, hairpinMode: true, ipMasq: false, mtu: 1430 })
  t.same(c.plugins[0].ipam, {
    type: 'host-local',
    ranges: [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }], [{ subnet: 'fd00:10:244:3::/64', gateway: 'fd00:10:244:3::1' }]],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
    dataDir: '/tmp/ipam',
  })
  t.equal((conflist({ ...dual, podCIDRs: [dual.podCIDRs[0]] }, DEFAULT_CNI) as any).plugins[0].ipam.dataDir, undefined,
    'no dataDir: host-local\'s default')
})

t.test('subnet.env like flannel\'s', async (t) => {
  t.equal(subnetEnv(dual), 'FLATNET_NETWORK=10.244.0.0/16,fd00:10:244::/48\nFLATNET_SUBNET=10.244.3.1/24,fd00:10:244:3::1/64\nFLATNET_MTU=1430\nFLATNET_IPMASQ=true\n')
})

t.test('files written whole, no temporaries left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-cni-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = writeCniFiles(dual, { ...DEFAULT_CNI, confDir: join(dir, 'net.d'), subnetFile: join(dir, 'run', 'subnet.env') })
  t.equal(out.conflist, join(dir, 'net.d', '10-flatnet.conflist'))
  t.same(JSON.parse(readFileSync(out.conflist, 'utf8')), conflist(dual, DEFAULT_CNI))
  t.equal(readFileSync(out.subnetFile, 'utf8'), subnetEnv(dual))
  writeCniFiles(dual, { ...DEFAULT_CNI, confDir: join(dir, 'net.d'), subnetFile: join(dir, 'run', 'subnet.env') })
  t.same(readdirSync(join(dir, 'net.d')), ['10-flatnet.conflist'], 'rewriting leaves one file')
})

t.test('masquerade rules: pod-to-cluster first, per family', async (t) => {
  t.equal(masqueradeRules(4, dual.podCIDRs, dual.clusterCIDRs), [
    'table ip flatnet {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    '    ip saddr { 10.244.3.0/24 } ip daddr { 10.244.0.0/16 } return',
    '    ip saddr { 10.244.3.0/24 } ip daddr != 224.0.0.0/4 masquerade fully-random',
    '    ip saddr != { 10.244.0.0/16 } ip daddr { 10.244.3.0/24 } return',
    '    ip saddr != { 10.244.0.0/16 } ip daddr { 10.244.0.0/16 } masquerade fully-random',
    '  }',
    '}',
  ].join('\n'))
  const v6 = masqueradeRules(6, dual.podCIDRs, dual.clusterCIDRs)
  t.match(v6, /^table ip6 flatnet \{/)
  t.match(v6, 'ip6 saddr { fd00:10:244:3::/64 } ip6 daddr != ff00::/8 masquerade')
  t.notMatch(v6, '10.244.', 'no IPv4 prefixes in the ip6 table')
})

t.test('config: ipMasq and cni', async (t) => {
  const base = { nodeName: 'n1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', underlay: { address: '192.0.2.1' } }
  const c = parseConfig(base)
  t.equal(c.ipMasq, true, 'ipMasq on by default')
  t.same(c.cni, { confDir: '/etc/cni/net.d', subnetFile: '/run/flatnet/subnet.env', ipamDataDir: undefined, binDir: '/opt/cni/bin', socket: '/run/flatnet/cni.sock', bridge: 'cni0' })
  t.throws(() => parseConfig({ ...base, cni: { socket: 'cni.sock' } }), new ConfigError('cni.socket', 'must be an absolute path'))
  t.throws(() => parseConfig({ ...base, cni: { binDir: 'bin' } }), new ConfigError('cni.binDir', 'must be an absolute path'))
  t.equal(parseConfig({ ...base, cni: false }).cni, undefined, 'cni: false writes nothing')
  t.equal(parseConfig({ ...base, bridge: { name: 'br-pods' } }).cni?.bridge, 'br-pods', 'the conflist uses the configured bridge')
  t.equal(parseConfig({ ...base, ipMasq: false }).ipMasq, false)
  t.throws(() => parseConfig({ ...base, cni: { confDir: 'relative' } }), new ConfigError('cni.confDir', 'must be an absolute path'))
  t.throws(() => parseConfig({ ...base, cni: { dir: '/x' } }), /config\.cni\.dir: unknown field/)
  t.throws(() => parseConfig({ ...base, ipMasq: 'yes' }), /config\.ipMasq: "yes" must be true or false/)
})
