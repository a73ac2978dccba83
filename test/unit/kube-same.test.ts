// Structural equality of projected objects (src/kube/same.ts): what lets a relist or a
// change to unread fields keep the object held.
import t from 'tap'
import { same } from '../../src/kube/same.js'

t.test('equal by structure, not by identity', async (t) => {
  const labels = { app: 'a' }
  t.ok(same({ ns: 'x', labels, ips: ['10.0.0.1'], n: 1, f: false }, { ns: 'x', labels, ips: ['10.0.0.1'], n: 1, f: false }))
  t.ok(same({ a: { b: [1, { c: 'd' }] } }, { a: { b: [1, { c: 'd' }] } }), 'nested')
  t.ok(same(null, null))
  t.notOk(same({ ips: ['10.0.0.1'] }, { ips: ['10.0.0.2'] }), 'an element')
  t.notOk(same({ ips: ['10.0.0.1'] }, { ips: ['10.0.0.1', 'fd00::1'] }), 'a length')
  t.notOk(same({ a: 1 }, { a: 1, b: undefined }), 'a key more, even undefined')
  t.notOk(same({ a: undefined }, { b: undefined }), 'different keys')
  t.notOk(same([], {}), 'an array is not an object')
  t.notOk(same({ a: null }, { a: {} }))
  t.notOk(same(1, '1'))
})
