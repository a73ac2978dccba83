// The peer record's wire form with a WireGuard public key: optional, exactly 32 bytes of canonical
// base64 or the record is refused with the reason; carried through the state file (and so the
// handover) unchanged, and absent where the node publishes none.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTable, saveTable } from '../../src/control/state-file.js'
import { fromWire, toWire, type VtepRecord } from '../../src/control/vtep.js'
import { generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'

const KEY = publicKeyOf(generatePrivateKey())
const wire = { node: 'n2', cidrs: ['10.244.2.0/24'], addr: '192.0.2.2', port: 8472, vni: 1, mac: '02:00:00:00:00:02', ver: 3 }

function record (w: unknown): VtepRecord {
  const r = fromWire(w, 'channel')
  if (typeof r === 'string') throw new Error(r)
  return r
}

t.test('with a key: raw on the record, base64 on the wire, both ways', async (t) => {
  const r = record({ ...wire, wg: KEY.toString('base64') })
  t.same(r.wgKey, KEY)
  t.equal(toWire(r).wg, KEY.toString('base64'))
  t.same(record(toWire(r)), r, 'round trip')
})

t.test('without one: no field on the record, none on the wire (an older node\'s record reads the same)', async (t) => {
  const r = record(wire)
  t.notOk('wgKey' in r)
  t.notOk('wg' in toWire(r), 'not even as undefined: msgpack and JSON carry nothing')
  t.same(toWire(r), wire)
  t.same(record({ ...wire, future: 'ignored' }), r, 'unknown fields are ignored, as an older node ignores wg')
})

t.test('anything but exactly one canonical base64 key refuses the record, saying why', async (t) => {
  const b64 = KEY.toString('base64')
  const bad: unknown[] = [
    '', 'AAAA', b64.slice(0, 43), `${b64}=`, ` ${b64}`, `${b64}\n`, KEY.toString('hex'), KEY.toString('base64url'),
    Buffer.alloc(31).toString('base64'), Buffer.alloc(33).toString('base64'),
    `${b64.slice(0, 42)}B=`, // the same bytes' non-canonical spelling: last character's spare bits set
    null, 42, [b64], { key: b64 }, KEY,
  ]
  for (const wg of bad) {
    const r = fromWire({ ...wire, wg }, 'channel')
    t.type(r, 'string', JSON.stringify(wg))
    t.match(r, /^n2: wg .* is not a WireGuard public key \(32 bytes in base64\)$/)
  }
})

t.test('the state file (and the handover\'s table) keeps each peer\'s key, or its lack of one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-vtep-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'n1.peers')
  const keyed = record({ ...wire, wg: KEY.toString('base64') })
  const plain = record({ ...wire, node: 'n3', cidrs: ['10.244.3.0/24'], addr: '192.0.2.3' })
  saveTable(file, [keyed, plain])
  const [a, b] = loadTable(file)
  t.same(a.wgKey, KEY)
  t.notOk('wgKey' in b)
})

t.test('a WireGuard-only record (flannel\'s wireguard backend): no mac beside a key, with its own port; neither, refused', async (t) => {
  const noMac: Record<string, unknown> = { ...wire }
  delete noMac.mac
  const r = record({ ...noMac, wg: KEY.toString('base64'), wgPort: 51821 })
  t.equal(r.vtepMAC, undefined)
  t.equal(r.wgPort, 51821)
  t.same(toWire(r), { ...noMac, wg: KEY.toString('base64'), wgPort: 51821 }, 'no mac on the wire either')
  t.same(record(toWire(r)), r, 'round trip')
  t.equal(fromWire(noMac, 'channel'), 'n2: has neither a VTEP mac nor a WireGuard key (wg)')
  t.equal(fromWire({ ...wire, wg: KEY.toString('base64'), wgPort: 0 }, 'channel'), 'n2: wgPort 0 is not 1-65535')
  t.equal(fromWire({ ...wire, mac: null }, 'channel'), 'n2: mac null is not a unicast MAC', 'a mac that is there must be one')
})
