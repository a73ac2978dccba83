// Static peers re-read from the config file: a file naming one node twice is rejected whole,
// both entries named in the log, and the peers that work are kept (no silent replace).
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.js'
import { StaticSource } from '../../src/control/static.js'
import type { VtepRecord } from '../../src/control/vtep.js'
import { createLogger } from '../../src/log.js'

t.test('a reload with a duplicate peer is rejected, naming both entries', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-static-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'node.json')
  const peer = { nodeName: 'n2', podCIDR: '10.244.2.0/24', address: '192.0.2.2', vtepMAC: '02:00:00:00:00:02' }
  const write = (peers: unknown[]): void => writeFileSync(file, JSON.stringify({
    nodeName: 'n1', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', underlay: { address: '192.0.2.1' }, stateFile: false, peers,
  }))
  write([peer])
  const lines: string[] = []
  const log = createLogger('info', 'flatnet', { write: (l: string) => { lines.push(l) } })
  const resyncs: VtepRecord[][] = []
  const source = new StaticSource({ configFile: file, overrides: {}, config: loadConfig(file), log, watchFile: false })
  await source.start({ update: () => {}, resync: (_s, records) => { resyncs.push(records) } })
  t.teardown(async () => await source.stop())
  write([peer, { ...peer, podCIDR: '10.244.3.0/24', address: '192.0.2.3' }])
  source.reload('test')
  t.equal(resyncs.length, 1, 'the table is left as it was')
  t.same(source.stats(), { reloads: 0, rejected: 1 })
  t.match(JSON.parse(lines.at(-1) as string), { msg: 'reload rejected; keeping the current peers', err: 'config.peers[1].nodeName: "n2" is also peers[0]: keep one entry per node' })
})
