// The etcd source against a real etcd (Debian's etcd-server) on 127.0.0.1 with random
// ports: join, graceful leave, lease expiry after SIGKILL, and an etcd restart during
// which the peer table keeps forwarding on what it knew, then resyncs.
import t from 'tap'
import { until } from '../../src/lab/until.js'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { stopProcess } from '../../src/lab/netns.js'
import { EtcdSource } from '../../src/control/etcd.js'
import { toolsMissing } from '../../src/lab/tools.js'
import { PeerTable } from '../../src/peer-table.js'
import { fromWire } from '../../src/control/vtep.js'
import { parseCidr, type Cidr } from '../../src/net/cidr.js'

const ETCD = 'etcd'
const missing = toolsMissing([ETCD])
if (missing) {
  if (process.env.CI) throw new Error(`etcd tests must run in CI but cannot: ${missing}`)
  t.pass(`etcd tests skipped: ${missing}`, { skip: true })
} else {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-etcd-'))
  const port = 30000 + Math.floor(Math.random() * 20000)
  const endpoint = `http://127.0.0.1:${port}`
  let etcd: ChildProcess | undefined
  const children: ChildProcess[] = []
  t.teardown(async () => {
    for (const c of children) await stopProcess(c, 500)
    if (etcd) await stopProcess(etcd, 1000)
    rmSync(dir, { recursive: true, force: true })
  })

  const startEtcd = async (): Promise<void> => {
    etcd = spawn(ETCD, ['--name', 'flatnet-test', '--data-dir', join(dir, 'data'),
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`,
      '--initial-cluster', `flatnet-test=http://127.0.0.1:${port + 1}`], { stdio: 'ignore' })
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`${endpoint}/health`)).ok) return
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error('etcd did not come up in 10 s')
  }

  const member = (name: string, index: number): { child: ChildProcess, last: () => string[] } => {
    const child = spawn(process.execPath, [join(process.cwd(), 'test/fixtures/etcd-member.mjs'), endpoint, name, String(index), '2'],
      { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    let last: string[] = []
    let buf = ''
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split('\n'); buf = lines.pop() ?? ''
      if (lines.length) last = JSON.parse(lines[lines.length - 1])
    })
    return { child, last: () => last }
  }

  t.test('join, leave, lease expiry, etcd restart', async (t) => {
    await startEtcd()
    const pushes: unknown[] = []
    const table = new PeerTable({ setTable: (tb) => pushes.push(tb), updatePeers: (c) => pushes.push(c) }, [parseCidr('10.244.1.0/24') as Cidr], { self: 'e1', vni: 1 })
    const self = fromWire({ node: 'e1', cidrs: ['10.244.1.0/24'], addr: '192.0.2.1', port: 8472, vni: 1, mac: '02:00:00:00:01:01', ver: 0 }, 'etcd')
    if (typeof self === 'string') throw new Error(self)
    const source = new EtcdSource({ endpoints: [endpoint], prefix: '/flatnet/nodes/', ttlSeconds: 2 }, self, pino({ level: 'silent' }))
    await source.start(table)
    t.teardown(() => source.stop())
    const names = (): string[] => table.list().map((p) => p.nodeName).sort()

    const e2 = member('e2', 2)
    const e3 = member('e3', 3)
    const join = await until(() => names().join() === 'e2,e3' && e2.last().join() === 'e1,e3' && e3.last().join() === 'e1,e2', 5000, 20)
    t.ok(join >= 0, `all three see each other (${join} ms)`, { table: names(), e2: e2.last(), e3: e3.last() })
    t.equal(table.list()[0].source, 'etcd')

    e3.child.kill('SIGTERM')
    const leave = await until(() => !names().includes('e3') && !e2.last().includes('e3'), 3000, 20)
    t.ok(leave >= 0 && leave < 500, `graceful stop (lease revoked) withdrawn in ${leave} ms`)

    e2.child.kill('SIGKILL')
    const killedAt = Date.now()
    const expiry = await until(() => !names().includes('e2'), 6000, 20)
    t.ok(expiry >= 0, `SIGKILLed member withdrawn when its 2 s lease ran out (${Date.now() - killedAt} ms)`)

    const e4 = member('e4', 4)
    t.ok(await until(() => names().includes('e4'), 3000, 20) >= 0, 'e4 joined')
    const pushesBefore = pushes.length
    await stopProcess(etcd as ChildProcess, 1000)
    await new Promise((resolve) => setTimeout(resolve, 3000)) // longer than the lease TTL
    t.same(names(), ['e4'], 'etcd down 3 s: the table is kept (forwarding goes on)')
    t.equal(pushes.length, pushesBefore, 'and not pushed in between')
    t.ok(source.stats().errors > 0, `errors counted (${source.stats().errors})`)

    await startEtcd()
    // Leases were suspended while etcd was down; e4 and e1 re-register or keep alive; a new node appears.
    const e5 = member('e5', 5)
    const resync = await until(() => names().join() === 'e4,e5' && e5.last().join() === 'e1,e4', 10_000, 20)
    t.ok(resync >= 0, `after the restart: resynced with e4 and the new e5 (${resync} ms)`, { table: names(), e5: e5.last() })
    e4.child.kill('SIGTERM'); e5.child.kill('SIGTERM')
  })
}
