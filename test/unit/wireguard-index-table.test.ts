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

t.test('claim: a handover\'s successor takes its predecessor\'s indexes; add() never hands out their slots', async (t) => {
  const table = new IndexTable<string>()
  const low = table.add('low') as number // slot 0
  const claimed = ((0xabcd << 16) | 40) >>> 0 // a slot past those handed out
  t.ok(table.claim(claimed, 'claimed'), 'a free slot is claimed, with the index as given')
  t.equal(table.get(claimed), 'claimed')
  t.notOk(table.claim(((0x1234 << 16) | 40) >>> 0, 'again'), 'its slot, under other high bits, is not claimed twice')
  t.notOk(table.claim(low, 'again'), 'nor a slot add() handed out')
  const slots = new Set<number>()
  for (let i = 0; i < 100; i++) slots.add((table.add(String(i)) as number) & 0xffff)
  t.notOk(slots.has(40), 'add() skips the claimed slot')
  table.delete(claimed)
  const freed = new Set<number>()
  for (let i = 0; i < 10; i++) freed.add((table.add(`f${i}`) as number) & 0xffff)
  t.ok(freed.has(40), 'once deleted, the slot is handed out again (once)')
  table.delete(low)
  t.ok(table.claim(low, 'back'), 'a slot freed below the handed-out ones can be claimed')
  t.not((table.add('next') as number) & 0xffff, low & 0xffff, 'and is then not handed out by add()')
})
