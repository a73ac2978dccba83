// A Node as a peer record: the flatnet.io/ annotations, with the WireGuard public key when the
// node encrypts; a malformed key refuses the node, saying why; and what this node writes on its
// own Node, the key's annotation removed when it publishes none.
import t from 'tap'
import { ANNOTATION, type NodeJson, nodeRecord, selfAnnotations } from '../../src/control/kube-node.js'
import { fromWire, type VtepRecord } from '../../src/control/vtep.js'
import { realNode } from '../../src/lab/kube-objects.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

const KEY = publicKeyOf(generatePrivateKey())
const DEFAULTS = { port: 8472, vni: 1 }
const VTEP = { [ANNOTATION.mac]: '02:00:00:00:02:02', [ANNOTATION.port]: '8472', [ANNOTATION.vni]: '1' }
// As the API server sends it: JSON, not the lab's object.
const node = (annotations: Record<string, string>): NodeJson => JSON.parse(JSON.stringify(realNode('k2', ['10.244.2.0/24'], '192.0.2.2', annotations)))

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

t.test('this node\'s annotations: the key when it encrypts, a null (merge patch: remove) when it does not', async (t) => {
  const self = fromWire({ node: 'k1', cidrs: ['10.244.1.0/24'], addr: '192.0.2.1', port: 8472, vni: 1, mac: '02:00:00:00:02:01', ver: 0 }, 'kubernetes') as VtepRecord
  t.same(selfAnnotations(self), { ...{ [ANNOTATION.mac]: '02:00:00:00:02:01', [ANNOTATION.port]: '8472', [ANNOTATION.vni]: '1' }, [ANNOTATION.wgKey]: null })
  t.equal(selfAnnotations({ ...self, wgKey: KEY })[ANNOTATION.wgKey], KEY.toString('base64'))
  const back = nodeRecord(node({ ...VTEP, ...selfAnnotations({ ...self, wgKey: KEY }) } as Record<string, string>), DEFAULTS) as VtepRecord
  t.same(back.wgKey, KEY, 'what a node writes, its peers read')
})
