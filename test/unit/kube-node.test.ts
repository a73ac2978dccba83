// A Node as a peer record: the flatnet.io/ annotations, with the WireGuard public key when the
// node encrypts; a malformed key refuses the node, saying why; a node of flannel's vxlan or
// wireguard backend from flannel's annotations; and what this node writes on its own Node (both
// sets), what it no longer publishes removed, read back as a flatnet node and as flannel reads it.
import t from 'tap'
import { ANNOTATION, FLANNEL, type NodeJson, nodeRecord, selfAnnotations } from '../../src/control/kube-node.js'
import { fromWire, type VtepRecord } from '../../src/control/vtep.js'
import { realNode } from '../../src/lab/kube-objects.js'
import { type Address, parseAddress } from '../../src/net/cidr.js'
import { formatMac } from '../../src/net/mac.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

const KEY = publicKeyOf(generatePrivateKey())
const DEFAULTS = { port: 8472, vni: 1 }
const VTEP = { [ANNOTATION.mac]: '02:00:00:00:02:02', [ANNOTATION.port]: '8472', [ANNOTATION.vni]: '1' }
// As the API server sends it: JSON, not the lab's object.
const node = (annotations: Record<string, string>, podCIDRs = ['10.244.2.0/24']): NodeJson => JSON.parse(JSON.stringify(realNode('k2', podCIDRs, '192.0.2.2', annotations)))
/** A merge patch applied to no annotations: a null removes the key. */
const patched = (patch: Record<string, string | null>): Record<string, string> => Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== null)) as Record<string, string>

t.test('the key annotation: raw on the record; none, no key', async (t) => {
  const keyed = nodeRecord(node({ ...VTEP, [ANNOTATION.wgKey]: KEY.toString('base64') }), DEFAULTS) as VtepRecord
  t.same(keyed.wgKey, KEY)
  t.equal(keyed.nodeName, 'k2')
  t.equal(keyed.source, 'kubernetes')
  const plain = nodeRecord(node(VTEP), DEFAULTS) as VtepRecord
  t.notOk('wgKey' in plain, 'a node that publishes no key (encryption none, or an older flatnet)')
  t.equal(ANNOTATION.wgKey, 'flatnet.io/wg-public-key')
})

t.test('a malformed key refuses the node, saying why; a node without flatnet\'s VTEP is no peer', async (t) => {
  t.equal(nodeRecord(node({ ...VTEP, [ANNOTATION.wgKey]: 'not-a-key' }), DEFAULTS), 'k2: wg "not-a-key" is not a WireGuard public key (32 bytes in base64)')
  t.equal(nodeRecord(node({ ...VTEP, [ANNOTATION.wgKey]: `${KEY.toString('base64')} ` }), DEFAULTS), `k2: wg "${KEY.toString('base64')} " is not a WireGuard public key (32 bytes in base64)`)
  t.equal(nodeRecord(node({ [ANNOTATION.wgKey]: KEY.toString('base64') }), DEFAULTS), null, 'a key without a VTEP: not a flatnet node')
})

t.test('this node\'s annotations: the key and port when it encrypts, a null (merge patch: remove) when it does not', async (t) => {
  const self = fromWire({ node: 'k1', cidrs: ['10.244.1.0/24'], addr: '192.0.2.1', port: 8472, vni: 1, mac: '02:00:00:00:02:01', ver: 0 }, 'kubernetes') as VtepRecord
  const plain = selfAnnotations(self)
  t.same(plain, {
    [ANNOTATION.mac]: '02:00:00:00:02:01',
    [ANNOTATION.port]: '8472',
    [ANNOTATION.vni]: '1',
    [ANNOTATION.wgKey]: null,
    [ANNOTATION.wgPort]: null,
    [FLANNEL.managed]: 'true',
    [FLANNEL.type]: 'vxlan',
    [FLANNEL.ip]: '192.0.2.1',
    [FLANNEL.data]: '{"VNI":1,"VtepMAC":"02:00:00:00:02:01"}',
    [FLANNEL.ip6]: null,
    [FLANNEL.data6]: null,
    [ANNOTATION.flannelData]: '{"VNI":1,"VtepMAC":"02:00:00:00:02:01"}',
  })
  const encrypting = selfAnnotations({ ...self, wgKey: KEY, wgPort: 51999 })
  t.equal(encrypting[ANNOTATION.wgKey], KEY.toString('base64'))
  t.equal(encrypting[FLANNEL.type], 'wireguard')
  t.same(JSON.parse(encrypting[FLANNEL.data] as string), { PublicKey: KEY.toString('base64'), Port: 51999 }, 'flannel\'s wireguardLeaseAttrs')
  const back = nodeRecord(node(patched(encrypting)), DEFAULTS) as VtepRecord
  t.same(back.wgKey, KEY, 'what a node writes, its peers read')
  t.equal(back.wgPort, 51999)
  t.equal(formatMac(back.vtepMAC as Buffer), '02:00:00:00:02:01', 'a flatnet node is read by its flatnet.io annotations (VXLAN to it stays possible)')
  t.equal(back.address.bytes.join('.'), '192.0.2.2', 'at its InternalIP')
  const v6 = selfAnnotations({ ...self, address: parseAddress('fd00:77::1') as Address })
  t.equal(v6[FLANNEL.ip], null, 'an IPv6 underlay: flannel\'s IPv4 pair removed')
  t.ok(v6[FLANNEL.ip6] !== null && v6[FLANNEL.data6] !== null, 'and the IPv6 pair written')
})

// As flannel's kube subnet manager writes them (pkg/subnet/kube, pkg/backend/*: newSubnetAttrs).
const flannelNode = (type: string, data: Record<string, unknown>, extra: Record<string, string> = {}): Record<string, string> =>
  ({ [FLANNEL.managed]: 'true', [FLANNEL.type]: type, [FLANNEL.ip]: '192.0.2.2', [FLANNEL.data]: JSON.stringify(data), ...extra })

t.test('a node of flannel\'s wireguard backend: a WireGuard-only peer at its public-ip', async (t) => {
  const r = nodeRecord(node(flannelNode('wireguard', { PublicKey: KEY.toString('base64'), Port: 51820 }, { [FLANNEL.ip]: '198.51.100.2' })), DEFAULTS) as VtepRecord
  t.same(r.wgKey, KEY)
  t.equal(r.wgPort, 51820)
  t.equal(r.vtepMAC, undefined, 'no VTEP: reached by WireGuard only')
  t.equal(r.address.bytes.join('.'), '198.51.100.2', 'flannel\'s public-ip, not the InternalIP')
  const old = nodeRecord(node(flannelNode('wireguard', { PublicKey: KEY.toString('base64') })), DEFAULTS) as VtepRecord
  t.equal(old.wgPort, undefined, 'no Port (flannel before it published one): the reader\'s own, as flannel reads it')
  t.equal(nodeRecord(node(flannelNode('wireguard', { PublicKey: 'x' })), DEFAULTS), 'k2: wg "x" is not a WireGuard public key (32 bytes in base64)')
  t.equal(nodeRecord(node(flannelNode('wireguard', { PublicKey: KEY.toString('base64'), Port: 70000 })), DEFAULTS), 'k2: wgPort 70000 is not 1-65535')
  t.equal(nodeRecord(node(flannelNode('wireguard', {}, { [FLANNEL.data]: '{"PublicKey":' })), DEFAULTS), 'k2: flannel.alpha.coreos.com/backend-data "{\\"PublicKey\\":" is not a JSON object')
})

t.test('a node of flannel\'s vxlan backend: its VtepMAC and VNI on this node\'s port', async (t) => {
  const r = nodeRecord(node(flannelNode('vxlan', { VNI: 1, VtepMAC: '0e:11:22:33:44:55' })), DEFAULTS) as VtepRecord
  t.equal(formatMac(r.vtepMAC as Buffer), '0e:11:22:33:44:55')
  t.equal(r.port, 8472)
  t.equal(r.vni, 1)
  t.equal(r.wgKey, undefined)
  t.equal(nodeRecord(node(flannelNode('vxlan', { VNI: 1, VtepMAC: '01:00:5e:00:00:01' })), DEFAULTS), 'k2: mac "01:00:5e:00:00:01" is not a unicast MAC')
})

t.test('flannel nodes: which are peers, of which family', async (t) => {
  const data = { PublicKey: KEY.toString('base64'), Port: 51820 }
  t.equal(nodeRecord(node(flannelNode('host-gw', {})), DEFAULTS), null, 'host-gw: routes, no tunnel to reach it by')
  t.equal(nodeRecord(node({ ...flannelNode('wireguard', data), [FLANNEL.managed]: 'false' }), DEFAULTS), null, 'not managed by flannel\'s kube subnet manager')
  t.equal(nodeRecord(node(flannelNode('wireguard', data, { [FLANNEL.ip]: 'a.b' })), DEFAULTS), 'k2: flannel.alpha.coreos.com/public-ip "a.b" is not an IP address')
  const dual = nodeRecord(node(flannelNode('wireguard', data, { [FLANNEL.ip6]: 'fd00:77::2', [FLANNEL.data6]: JSON.stringify({ ...data, Port: 51821 }) }), ['10.244.2.0/24', 'fd00:10:244:2::/64']), DEFAULTS) as VtepRecord
  t.equal(dual.podCIDRs.length, 1, 'dual-stack: one family, IPv4\'s (flannel\'s default "separate" mode reaches IPv6 through a second device)')
  t.equal(dual.podCIDRs[0].family, 4)
  t.equal(dual.wgPort, 51820)
  const v6 = nodeRecord(node({ [FLANNEL.managed]: 'true', [FLANNEL.type]: 'wireguard', [FLANNEL.ip6]: 'fd00:77::2', [FLANNEL.data6]: JSON.stringify({ ...data, Port: 51821 }) }, ['fd00:10:244:2::/64']), DEFAULTS) as VtepRecord
  t.equal(v6.address.family, 6, 'IPv6 only: public-ipv6 and backend-v6-data')
  t.equal(v6.wgPort, 51821)
  t.equal(nodeRecord(node(flannelNode('wireguard', data), ['fd00:10:244:2::/64']), DEFAULTS), 'k2: no pod CIDR of the family of its flannel address 192.0.2.2')
  const both = nodeRecord(node({ ...VTEP, ...flannelNode('wireguard', data) }), DEFAULTS) as VtepRecord
  t.ok(both.vtepMAC, 'flatnet\'s own annotations first: a flatnet node writes both')
})

t.test('a node moved back to flannel: flannel\'s rewritten annotations win over flatnet\'s stale ones', async (t) => {
  const self = fromWire({ node: 'k2', cidrs: ['10.244.2.0/24'], addr: '192.0.2.2', port: 8472, vni: 1, mac: '02:00:00:00:02:02', ver: 0 }, 'kubernetes') as VtepRecord
  const written = patched(selfAnnotations({ ...self, wgKey: KEY, wgPort: 51820 }))
  t.ok((nodeRecord(node(written), DEFAULTS) as VtepRecord).vtepMAC, 'as flatnet wrote them: flatnet\'s record')
  const other = publicKeyOf(generatePrivateKey())
  const flannel = { ...written, [FLANNEL.data]: JSON.stringify({ PublicKey: other.toString('base64'), Port: 51820 }) }
  const r = nodeRecord(node(flannel), DEFAULTS) as VtepRecord
  t.same([r.vtepMAC, r.wgKey], [undefined, other], 'flannel rewrote backend-data: flannel\'s node, its key')
  const older = { ...VTEP, ...flannelNode('vxlan', { VNI: 1, VtepMAC: '0e:11:22:33:44:55' }) }
  t.equal(formatMac((nodeRecord(node(older), DEFAULTS) as VtepRecord).vtepMAC as Buffer), '02:00:00:00:02:02',
    'a flatnet that never wrote flannel\'s (an older version), beside flannel\'s left from before it: flatnet\'s record')
})
