// The saved peer table (src/control/state-file.ts): what is loaded is what was last saved,
// across records replaced in between, which the wire-form cache must not hide.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTable, saveTable, tableToWire } from '../../src/control/state-file.js'
import { fromWire, type VtepRecord } from '../../src/control/vtep.js'

const dir = mkdtempSync(join(tmpdir(), 'flatnet-state-file-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const record = (i: number, version: number): VtepRecord => fromWire({
  node: `n${i}`, cidrs: [`10.244.${i}.0/24`], addr: `192.0.2.${i}`, port: 8472, vni: 1, mac: `02:00:00:00:00:0${i}`, ver: version,
}, 'kubernetes') as VtepRecord

t.test('a record replaced between saves is saved as it is now', async (t) => {
  const file = join(dir, 'n0.peers')
  const peers = [record(1, 1), record(2, 1)]
  saveTable(file, peers)
  t.same(loadTable(file).map((r) => [r.nodeName, r.version]), [['n1', 1], ['n2', 1]])
  peers[1] = { ...record(2, 7), podCIDRs: record(3, 1).podCIDRs } // the peer table replaces, never edits
  saveTable(file, peers)
  const loaded = loadTable(file)
  t.same(loaded.map((r) => [r.nodeName, r.version]), [['n1', 1], ['n2', 7]])
  t.equal(loaded[1].podCIDRs[0].bytes[2], 3, 'the new CIDR, not the one formatted for the first save')
})

t.test('an unchanged record is formatted once', async (t) => {
  const r = record(4, 1)
  t.equal(tableToWire([r])[0], tableToWire([r])[0], 'the same wire object both times')
  t.not(tableToWire([{ ...r }])[0], tableToWire([r])[0], 'a replacement is formatted afresh')
})
