// The etcd source against a real etcd (Debian's etcd-server) on 127.0.0.1 with random
// ports: join, graceful leave, lease expiry after SIGKILL, and an etcd restart during
// which the peer table keeps forwarding on what it knew, then resyncs. Then an etcd as
// a production one runs: TLS with client certificates required, and auth enabled.
import t from 'tap'
import { until } from '../../src/lab/until.js'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
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
const missing = toolsMissing([ETCD, 'openssl'])
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

  // Finding 8 of the security review: the source spoke neither TLS client authentication nor
  // etcd's users, so etcd had to run open. flannel and Calico speak both.
  t.test('an etcd requiring client certificates and auth: members with both join, one without is refused', async (t) => {
    const tlsDir = join(dir, 'tls')
    const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
    execFileSync('mkdir', ['-p', tlsDir])
    const pem = (name: string): string => join(tlsDir, name)
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pem('ca.key'), '-out', pem('ca.crt'), '-subj', '/CN=flatnet-test-ca', '-days', '1')
    const issue = (name: string, subject: string, ext: string): void => {
      writeFileSync(pem(`${name}.ext`), `${ext}\n`)
      ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pem(`${name}.key`), '-out', pem(`${name}.csr`), '-subj', subject)
      ssl('x509', '-req', '-in', pem(`${name}.csr`), '-CA', pem('ca.crt'), '-CAkey', pem('ca.key'), '-CAcreateserial', '-out', pem(`${name}.crt`), '-days', '1', '-extfile', pem(`${name}.ext`))
    }
    // clientAuth too: etcd's JSON gateway dials its own gRPC server with the server's certificate.
    issue('server', '/CN=etcd', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth')
    // No CommonName: with auth on, etcd's JSON gateway refuses a client certificate that has one
    // (it cannot pass it on as the user); the user comes from the password.
    issue('client', '/O=flatnet-nodes', 'extendedKeyUsage=clientAuth')
    const tport = port + 10
    const secure = `https://127.0.0.1:${tport}`
    const etcdTls = spawn(ETCD, ['--name', 'flatnet-tls', '--data-dir', join(dir, 'data-tls'),
      '--listen-client-urls', secure, '--advertise-client-urls', secure,
      '--listen-peer-urls', `http://127.0.0.1:${tport + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${tport + 1}`,
      '--initial-cluster', `flatnet-tls=http://127.0.0.1:${tport + 1}`,
      '--cert-file', pem('server.crt'), '--key-file', pem('server.key'), '--client-cert-auth', '--trusted-ca-file', pem('ca.crt')], { stdio: 'ignore' })
    t.teardown(async () => await stopProcess(etcdTls, 1000))
    const tls = { ca: readFileSync(pem('ca.crt')), cert: readFileSync(pem('client.crt')), key: readFileSync(pem('client.key')) }
    const admin = async (path: string, body: unknown, token?: string): Promise<Record<string, unknown>> => await new Promise((resolve, reject) => {
      const req = request(`${secure}${path}`, { method: 'POST', ...tls, headers: token ? { authorization: token } : {} }, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => { text += d.toString() })
        res.on('end', () => res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${path}: ${String(res.statusCode)} ${text}`)))
      })
      req.on('error', reject)
      req.end(JSON.stringify(body))
    })
    t.ok(await until(async () => await admin('/v3/kv/range', { key: 'eA==' }).then(() => true, () => false), 10_000, 100) >= 0, 'etcd up with TLS')
    // A user for the nodes, allowed the prefix only; root to enable auth (etcd requires it).
    const b = (s: string): string => Buffer.from(s).toString('base64')
    await admin('/v3/auth/user/add', { name: 'root', password: 'root-password' })
    await admin('/v3/auth/user/grant', { user: 'root', role: 'root' })
    await admin('/v3/auth/role/add', { name: 'flatnet' })
    await admin('/v3/auth/role/grant', { name: 'flatnet', perm: { permType: 'READWRITE', key: b('/flatnet/'), range_end: b('/flatnet0') } })
    await admin('/v3/auth/user/add', { name: 'flatnet', password: 'node-password' })
    await admin('/v3/auth/user/grant', { user: 'flatnet', role: 'flatnet' })
    await admin('/v3/auth/enable', {})
    writeFileSync(pem('password'), 'node-password\n', { mode: 0o600 })
    writeFileSync(pem('wrong'), 'guess\n', { mode: 0o600 })

    const config = { endpoints: [secure], prefix: '/flatnet/nodes/', ttlSeconds: 2, tls: { caFile: pem('ca.crt'), certFile: pem('client.crt'), keyFile: pem('client.key') }, username: 'flatnet', passwordFile: pem('password') }
    const node = (i: number, c: typeof config): { source: EtcdSource, table: PeerTable } => {
      const self = fromWire({ node: `t${i}`, cidrs: [`10.244.${i}.0/24`], addr: `192.0.2.${i}`, port: 8472, vni: 1, mac: `02:00:00:00:02:0${i}`, ver: 0 }, 'etcd')
      if (typeof self === 'string') throw new Error(self)
      const table = new PeerTable({ setTable: () => {}, updatePeers: () => {} }, [parseCidr(`10.244.${i}.0/24`) as Cidr], { self: `t${i}`, vni: 1 })
      const source = new EtcdSource(c, self, pino({ level: 'silent' }))
      t.teardown(() => source.stop())
      void source.start(table)
      return { source, table }
    }
    const t1 = node(1, config)
    const t2 = node(2, config)
    const wrong = node(3, { ...config, passwordFile: pem('wrong') })
    const noCert = node(4, { ...config, tls: { caFile: pem('ca.crt'), certFile: undefined as unknown as string, keyFile: undefined as unknown as string } })
    const joined = await until(() => t1.table.list().some((p) => p.nodeName === 't2') && t2.table.list().some((p) => p.nodeName === 't1'), 10_000, 20)
    t.ok(joined >= 0, `with certificate and password: t1 and t2 see each other (${joined} ms)`)
    t.ok(t1.source.up(), 'and the source is up')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    t.same(t1.table.list().map((p) => p.nodeName), ['t2'], 'neither the wrong password\'s node nor the certificate-less one got in')
    t.notOk(wrong.source.up(), 'a wrong password: not up')
    t.ok(wrong.source.stats().errors > 0, `and its errors counted (${wrong.source.stats().errors})`)
    t.notOk(noCert.source.up(), 'no client certificate: not up')
    t.ok(noCert.source.stats().errors > 0, `and its errors counted (${noCert.source.stats().errors})`)
    // What a member wrote is under the prefix, readable only with credentials.
    const { token } = await admin('/v3/auth/authenticate', { name: 'root', password: 'root-password' }) as { token: string }
    const kvs = (await admin('/v3/kv/range', { key: b('/flatnet/nodes/'), range_end: b('/flatnet/nodes0') }, token)).kvs as Array<{ key: string }>
    t.same(kvs.map((kv) => Buffer.from(kv.key, 'base64').toString()).sort(), ['/flatnet/nodes/t1', '/flatnet/nodes/t2'], 'the records in etcd')
  })
}
