// Local indexes: random in the high 16 bits, a slot in the low 16 (native/wg_table.h finds a
// session by it), slots reused once freed, and none handed out twice while in use.
import t from 'tap'
import { IndexTable, SLOTS } from '../../src/wireguard/index-table.js'

t.test('each index names its own slot; a freed slot is reused with new random bits', async (t) => {
  const table = new IndexTable<string>()
  const a = table.add('a') as number
  const b = table.add('b') as number
  t.not(a & 0xffff, b & 0xffff, 'two live indexes never share a slot')
  t.equal(table.get(a), 'a')
  t.equal(table.get(b), 'b')
  t.equal(table.get((a ^ 0x10000) >>> 0), undefined, 'the same slot with other random bits is not the index')
  table.set(a, 'a2')
  t.equal(table.get(a), 'a2', 'set replaces a live index\'s entry')
  table.set(12345, 'x')
  t.equal(table.get(12345), undefined, 'set does not create one')
  table.delete(a)
  t.equal(table.get(a), undefined)
  const c = table.add('c') as number
  t.equal(c & 0xffff, a & 0xffff, 'the freed slot is taken again')
  t.same([...table].map(([, v]) => v).sort(), ['b', 'c'])
  t.equal(table.size, 2)
})

t.test('random high bits, and no index once every slot is taken', async (t) => {
  const table = new IndexTable<number>()
  const highs = new Set<number>()
  for (let i = 0; i < SLOTS; i++) highs.add((table.add(i) as number) >>> 16)
  t.ok(highs.size > SLOTS / 2, `${highs.size} distinct high halves in ${SLOTS} indexes`)
  t.equal(table.add(-1), undefined, 'the 65,537th live index is refused')
})
