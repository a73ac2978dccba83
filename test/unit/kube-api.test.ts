// The lab's Kubernetes API server against the protocol a client relies on: pages at one
// revision (limit/continue, remainingItemCount, 410 Expired after a compaction), watches
// (bookmarks only when asked, timeoutSeconds, 410 for an old resourceVersion), injected
// failures, and the server as a process of its own driven over stdin. 127.0.0.1 only.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { get, type IncomingMessage, request as httpRequest } from 'node:http'
import { KubeApiServer, type KubeObject } from '../../src/lab/kube-api.js'
import { KubeApiProcess } from '../../src/lab/kube-api-process.js'
import { realNamespace, realNode, realPod } from '../../src/lab/kube-objects.js'
import { until } from '../../src/lab/until.js'

interface List { kind: string, metadata: { resourceVersion: string, continue?: string, remainingItemCount?: number }, items: KubeObject[] }
interface Status { kind: string, status: string, reason: string, code: number, message: string, metadata: { continue?: string } }

async function request (url: string): Promise<{ status: number, headers: IncomingMessage['headers'], body: unknown }> {
  return await new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(body) }))
    }).on('error', reject)
  })
}

async function list (url: string): Promise<List> {
  const r = await request(url)
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body as List
}

/** A watch's lines as they come; open once the response headers are in (the server has registered it by then). */
async function watch (url: string): Promise<{ lines: Array<{ type: string, object: Record<string, any> }>, ended: () => boolean, close: () => void }> {
  return await new Promise((resolve, reject) => {
    const lines: Array<{ type: string, object: Record<string, any> }> = []
    let ended = false
    const req = get(url, (res) => {
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        buf += d
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          lines.push(JSON.parse(buf.slice(0, i)))
          buf = buf.slice(i + 1)
        }
      })
      res.on('end', () => { ended = true })
      res.on('error', () => { ended = true })
      resolve({ lines, ended: () => ended, close: () => req.destroy() })
    })
    req.on('error', reject)
  })
}

async function serve (t: Test): Promise<{ api: KubeApiServer, url: string }> {
  const api = new KubeApiServer()
  const url = await api.start()
  t.teardown(async () => await api.stop())
  return { api, url }
}

const names = (l: List): string[] => l.items.map((o) => o.metadata.name)
const ns = (name: string, labels: Record<string, string> = {}): KubeObject => realNamespace(name, labels)

t.test('writes return resourceVersions; object() and resourceVersion() read the store', async (t) => {
  const api = new KubeApiServer()
  const rv0 = api.resourceVersion()
  const rv1 = api.putObject(ns('a'))
  t.equal(rv1, rv0 + 1)
  t.equal(api.put(realNode('n1', ['10.244.1.0/24'], '192.0.2.1')), rv0 + 2, 'put (a Node)')
  t.equal(api.object('Namespace', 'a')?.metadata.resourceVersion, String(rv1))
  t.equal(api.nodes.get('n1')?.metadata.resourceVersion, String(rv0 + 2), 'nodes as before')
  t.equal(api.deleteObject('Namespace', 'a'), rv0 + 3)
  t.equal(api.object('Namespace', 'a'), undefined)
  t.equal(api.deleteObject('Namespace', 'a'), rv0 + 3, 'deleting what is not there changes nothing')
  t.equal(api.delete('n1'), rv0 + 4)
  t.equal(api.resourceVersion(), rv0 + 4)
})

t.test('pages: limit, continue, remainingItemCount, at the first page\'s revision', async (t) => {
  const { api, url } = await serve(t)
  for (const n of ['f', 'b', 'd', 'a', 'e', 'c']) api.putObject(ns(n))
  const rv = String(api.resourceVersion())
  const whole = await list(`${url}/api/v1/namespaces`)
  t.same(names(whole), ['a', 'b', 'c', 'd', 'e', 'f'], 'in key order')
  t.equal(whole.metadata.resourceVersion, rv)
  t.notOk('continue' in whole.metadata, 'no limit: one page')
  t.notOk('kind' in whole.items[0], 'items without kind, as the real server lists them')

  const p1 = await list(`${url}/api/v1/namespaces?limit=2&resourceVersion=0`)
  t.same(names(p1), ['a', 'b'])
  t.equal(p1.metadata.remainingItemCount, 4)
  t.equal(p1.metadata.resourceVersion, rv)
  t.type(p1.metadata.continue, 'string')
  // Between pages: a delete, an update and a create, none of which this list may show.
  api.deleteObject('Namespace', 'c')
  api.putObject(ns('e', { changed: 'yes' }))
  api.putObject(ns('cc'))
  const p2 = await list(`${url}/api/v1/namespaces?limit=2&continue=${encodeURIComponent(p1.metadata.continue as string)}`)
  t.same(names(p2), ['c', 'd'], 'c, deleted since, still in this list; cc, created since, not')
  t.equal(p2.metadata.remainingItemCount, 2)
  t.equal(p2.metadata.resourceVersion, rv, 'every page at the first page\'s revision')
  const p3 = await list(`${url}/api/v1/namespaces?limit=2&continue=${encodeURIComponent(p2.metadata.continue as string)}`)
  t.same(names(p3), ['e', 'f'])
  t.notOk(p3.items[0].metadata.labels && (p3.items[0].metadata.labels as Record<string, string>).changed, 'e as it was at the revision')
  t.notOk('continue' in p3.metadata, 'the last page has no continue')
  t.notOk('remainingItemCount' in p3.metadata)
  t.same([...p1.items, ...p2.items, ...p3.items], whole.items, 'the three pages reassemble exactly the unpaginated list')

  const now = await list(`${url}/api/v1/namespaces?limit=10`)
  t.same(names(now), ['a', 'b', 'cc', 'd', 'e', 'f'], 'a new list sees the changes')
  t.equal((now.items[4].metadata.labels as Record<string, string>).changed, 'yes')
  const bad = await request(`${url}/api/v1/namespaces?limit=2&continue=garbage`)
  t.equal(bad.status, 400, 'a token that is not one: 400')
})

t.test('a continue token from before compact(): 410 Expired, with a token for the rest at the latest revision', async (t) => {
  const { api, url } = await serve(t)
  for (const n of ['a', 'b', 'c', 'd']) api.putObject(ns(n))
  const p1 = await list(`${url}/api/v1/namespaces?limit=2`)
  api.compact()
  api.deleteObject('Namespace', 'd')
  const r = await request(`${url}/api/v1/namespaces?limit=2&continue=${encodeURIComponent(p1.metadata.continue as string)}`)
  t.equal(r.status, 410)
  const s = r.body as Status
  t.match(s, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 })
  t.match(s.message, /^The provided continue parameter is too old/)
  const rest = await list(`${url}/api/v1/namespaces?limit=2&continue=${encodeURIComponent(s.metadata.continue as string)}`)
  t.same(names(rest), ['c'], 'the inconsistent continuation: the rest as it is now')
  t.equal(rest.metadata.resourceVersion, String(api.resourceVersion()))

  const after = await list(`${url}/api/v1/namespaces?limit=1`)
  const next = await list(`${url}/api/v1/namespaces?limit=1&continue=${encodeURIComponent(after.metadata.continue as string)}`)
  t.same([...names(after), ...names(next)], ['a', 'b'], 'a list made after the compaction pages on')
})

t.test('lists: resourceVersion semantics', async (t) => {
  const { api, url } = await serve(t)
  api.putObject(ns('a'))
  const rv = api.resourceVersion()
  api.putObject(ns('a', { v: '2' }))
  t.equal((await list(`${url}/api/v1/namespaces?resourceVersion=${rv}`)).metadata.resourceVersion, String(rv + 1), 'NotOlderThan: the current state')
  const exact = await list(`${url}/api/v1/namespaces?resourceVersion=${rv}&resourceVersionMatch=Exact`)
  t.same([exact.metadata.resourceVersion, exact.items[0].metadata.labels], [String(rv), { 'kubernetes.io/metadata.name': 'a' }], 'Exact: that revision')
  t.equal((await request(`${url}/api/v1/namespaces?resourceVersion=${rv + 100}`)).status, 504, 'from the future: Too large resource version')
})

t.test('watches: bookmarks only when asked, history, 410, timeoutSeconds', async (t) => {
  const { api, url } = await serve(t)
  api.putObject(ns('a'))
  const rv = api.resourceVersion()
  const asked = await watch(`${url}/api/v1/namespaces?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`)
  const plain = await watch(`${url}/api/v1/namespaces?watch=true&resourceVersion=${rv}`)
  t.teardown(() => { asked.close(); plain.close() })
  api.bookmark()
  api.putObject(ns('b'))
  t.ok(await until(() => asked.lines.length === 2 && plain.lines.length === 1, 5000) >= 0, 'events arrived')
  t.same(asked.lines.map((l) => l.type), ['BOOKMARK', 'ADDED'], 'the watch that asked gets the bookmark')
  t.equal(asked.lines[0].object.metadata.resourceVersion, String(rv), 'at the current resourceVersion')
  t.same(plain.lines.map((l) => l.type), ['ADDED'], 'the other none')

  const replay = await watch(`${url}/api/v1/namespaces?watch=true&resourceVersion=${rv - 1}`)
  t.ok(await until(() => replay.lines.length === 2, 5000) >= 0)
  t.same(replay.lines.map((l) => `${l.type} ${l.object.metadata.name as string}`), ['ADDED a', 'ADDED b'], 'events after the resourceVersion')
  replay.close()
  const current = await watch(`${url}/api/v1/namespaces?watch=true`)
  t.ok(await until(() => current.lines.length === 2, 5000) >= 0)
  t.same(current.lines.map((l) => `${l.type} ${l.object.metadata.name as string}`), ['ADDED a', 'ADDED b'], 'no resourceVersion: the current state as ADDED')
  current.close()

  api.compact()
  const old = await watch(`${url}/api/v1/namespaces?watch=true&resourceVersion=${rv}`)
  t.ok(await until(old.ended, 5000) >= 0, 'from before the compaction: ended')
  t.match(old.lines, [{ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }], 'with a 410 ERROR event')

  const timed = await watch(`${url}/api/v1/namespaces?watch=true&resourceVersion=${api.resourceVersion()}&timeoutSeconds=1`)
  t.ok(await until(timed.ended, 10_000) >= 0, 'timeoutSeconds=1: the server ends the watch')
  api.putObject(ns('c'))
  t.same(timed.lines, [], 'and sends it nothing more')
})

t.test('failLists and failWatches: counts, kinds, codes; continue pages not counted', async (t) => {
  const { api, url } = await serve(t)
  for (const n of ['a', 'b', 'c']) api.putObject(ns(n))
  api.failLists('Namespace', 2, 503)
  for (let i = 0; i < 2; i++) {
    const r = await request(`${url}/api/v1/namespaces?limit=1`)
    t.equal(r.status, 503, `list ${i + 1} fails`)
    t.match(r.body, { kind: 'Status', status: 'Failure', reason: 'ServiceUnavailable', code: 503 })
  }
  const p1 = await list(`${url}/api/v1/namespaces?limit=1`)
  api.failLists('*', 1)
  const p2 = await list(`${url}/api/v1/namespaces?limit=1&continue=${encodeURIComponent(p1.metadata.continue as string)}`)
  t.same(names(p2), ['b'], 'a continue page is not a first page: not failed')
  const w = await watch(`${url}/api/v1/pods?watch=1`)
  w.close()
  t.equal(api.requestLog.at(-1)?.watch, true, 'nor is a watch')
  t.equal((await request(`${url}/api/v1/pods`)).status, 500, '\'*\': any kind, 500 by default')
  t.equal((await request(`${url}/api/v1/pods`)).status, 200, 'once')

  api.failLists('Node', Infinity, 429)
  for (let i = 0; i < 5; i++) t.equal((await request(`${url}/api/v1/nodes`)).status, 429)
  const throttled = await request(`${url}/api/v1/nodes`)
  t.equal(throttled.headers['retry-after'], '1', '429 with Retry-After, as the API server\'s')
  api.failLists('Node', 0)
  t.equal((await request(`${url}/api/v1/nodes`)).status, 200, 'count 0: failing no more')

  api.failWatches('Pod', 1, 500)
  const failed = await request(`${url}/api/v1/pods?watch=true`)
  t.equal(failed.status, 500, 'a watch fails')
  t.match(failed.body, { reason: 'InternalError', code: 500 })
  const ok = await watch(`${url}/api/v1/pods?watch=true`)
  ok.close()
  t.equal((await request(`${url}/api/v1/pods`)).status, 200, 'lists unaffected by failWatches')

  const log = api.requestLog
  t.same(log.slice(0, 2).map((r) => [r.method, r.kind, r.watch, r.query.limit]), [['GET', 'Namespace', false, '1'], ['GET', 'Namespace', false, '1']])
  t.ok(log.every((r, i) => i === 0 || r.at >= log[i - 1].at), 'in order, with performance.now() times')
  t.equal(api.requests.length, log.length, 'requests as before: one line a request')
  t.match(api.requests[0], /^GET \/api\/v1\/namespaces\?limit=1$/)
})

t.test('a list is written in chunks, to a client that reads slowly too; single objects are served', async (t) => {
  const { api, url } = await serve(t)
  for (let i = 0; i < 300; i++) api.put(realNode(`node-${String(i).padStart(3, '0')}`, [`10.244.${i >> 8}.${i & 255}/32`], `192.0.2.${(i % 250) + 1}`))
  // ~4 MB: the server's writes fill the socket while the client is paused, and must wait for it to drain.
  const slow = await new Promise<{ headers: IncomingMessage['headers'], chunks: number, body: string }>((resolve, reject) => {
    get(`${url}/api/v1/nodes`, (res) => {
      let body = ''
      let chunks = 0
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
        if (chunks++ === 0) {
          res.pause()
          setTimeout(() => res.resume(), 100)
        }
      })
      res.on('end', () => resolve({ headers: res.headers, chunks, body }))
    }).on('error', reject)
  })
  t.equal(slow.headers['transfer-encoding'], 'chunked', 'streamed, no content-length')
  t.ok(slow.chunks > 1, `arrived in pieces (${slow.chunks})`)
  t.same(names(JSON.parse(slow.body) as List), [...api.nodes.keys()].sort(), 'every node, once, in key order')
  const pod = realPod({ namespace: 'x', name: 'a', labels: { pod: 'a' }, nodeName: 'node-000', ips: ['10.244.0.5'] })
  api.putObject(pod)
  const one = await request(`${url}/api/v1/namespaces/x/pods/a`)
  t.match(one, { status: 200, body: { kind: 'Pod', metadata: { name: 'a', namespace: 'x' } } })
  t.equal((await request(`${url}/api/v1/nodes/node-001`)).status, 200)
  t.equal((await request(`${url}/api/v1/nodes/nope`)).status, 404)
})

t.test('the server as a process, driven over stdin', async (t) => {
  const p = await KubeApiProcess.start({ host: '127.0.0.1', port: 0 })
  const pid = p.pid as number
  t.teardown(async () => await p.stop())
  t.match(p.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const rv = await p.putMany([ns('a'), ns('b'), realNode('n1', ['10.244.1.0/24'], '192.0.2.1', { 'flatnet.io/vni': '1' })])
  t.equal(rv, await p.resourceVersion(), 'putMany resolves to the last resourceVersion')
  t.equal(await p.put(ns('c')), rv + 1)
  t.same(names(await list(`${p.url}/api/v1/namespaces`)), ['a', 'b', 'c'], 'listed over HTTP')
  t.equal((await list(`${p.url}/api/v1/nodes`)).items[0].metadata.annotations?.['flatnet.io/vni' as never], '1')
  t.equal((await p.object('Namespace', 'b'))?.metadata.name, 'b')
  t.equal(await p.object('Namespace', 'nope'), undefined)
  t.equal(await p.delete('Namespace', 'c'), rv + 2)

  await p.failLists('Namespace', Infinity, 503) // Infinity over JSON
  for (let i = 0; i < 3; i++) t.equal((await request(`${p.url}/api/v1/namespaces`)).status, 503)
  await p.failLists('Namespace', 0)
  t.equal((await request(`${p.url}/api/v1/namespaces`)).status, 200)
  const log = await p.requestLog()
  t.equal(log.filter((r) => r.kind === 'Namespace' && !r.watch).length, 5)
  t.ok(log.every((r) => r.at <= performance.now() + 1000), 'times on this process\'s clock')
  t.equal((await p.requestLog(log.length - 1)).length, 1, 'from an index on')
  await t.rejects(p.failWatches('Pod', 1, 500).then(async () => await (p as unknown as { call: (op: string) => Promise<unknown> }).call('nope')), /unknown op/, 'an error answers the command')

  // The scale benchmark's cluster, generated where it is served.
  const spec = { nodes: 3, podsPerNode: 2, namespaces: 2, policies: 2, self: { name: 'self', podCIDR: '10.244.9.0/24' } }
  const generated = await p.generate(spec)
  t.equal(generated.objects, 2 + 3 + 3 * 2 + 2 + 2, 'namespaces, nodes, their pods, self\'s pods, policies')
  t.equal(generated.resourceVersion, await p.resourceVersion())
  t.ok(generated.bytes > 3 * 13_000, `${generated.bytes} bytes of JSON`)
  t.equal((await list(`${p.url}/api/v1/pods`)).items.length, 8)
  const churn = await p.churn(spec, 100, 0.05)
  t.equal(churn.changes, 5)
  t.equal(churn.lastVersion, generated.resourceVersion + 5, 'each change a write')
  const relabelled = (await list(`${p.url}/api/v1/pods`)).items.filter((o) => (o.metadata.labels as Record<string, string>).rev !== undefined)
  t.equal(relabelled.length, 5, 'five pods relabelled, none twice')
  t.ok(relabelled.every((o) => o.spec && (o.spec as { nodeName: string }).nodeName !== 'self'), 'all on other nodes')

  await p.stop()
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'no process left')
  await t.rejects(p.resourceVersion(), /exited/, 'a stopped server answers no more')
})

t.test('a driver that ends without stop(): its server is killed, and does not hold the driver up', async (t) => {
  // A driver process of its own, on the compiled files (as the benchmarks run): it starts a server and just ends.
  const driver = new URL('../../dist/src/lab/kube-api-process.js', import.meta.url).href
  const script = `const { KubeApiProcess } = await import(${JSON.stringify(driver)}); const p = await KubeApiProcess.start({ host: '127.0.0.1', port: 0 }); await p.resourceVersion(); console.log(p.pid)`
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 }, (err, stdout) => err ? reject(err) : resolve(stdout))
  })
  const pid = Number(out.trim())
  t.ok(pid > 0, 'the driver ended on its own')
  const gone = (): boolean => { try { process.kill(pid, 0); return false } catch { return true } }
  t.ok(await until(gone, 5000) >= 0, 'and its server with it')
})

t.test('a process that cannot serve: start rejects with its stderr', async (t) => {
  const { url } = await serve(t)
  const port = new URL(url).port
  await t.rejects(KubeApiProcess.start({ host: '127.0.0.1', port: Number(port) }), /ended before serving.*EADDRINUSE/s)
})

// What the daemon writes: its annotations (merge patch) and NetworkUnavailable on the
// Node's status (a strategic merge patch, conditions merged by type), as the API server
// takes them: status only through /status, metadata through either.
t.test('Node patches: annotations, and status conditions through /status', async (t) => {
  const { api, url } = await serve(t)
  api.putObject(realNode('n1', ['10.244.1.0/24'], '198.18.0.1', {}) as unknown as KubeObject)
  const patch = async (path: string, type: string, body: unknown): Promise<number> => await new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/api/v1/nodes/n1${path}`, { method: 'PATCH', headers: { 'content-type': type } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
  const conditions = (): Array<{ type: string, status: string }> => (api.object('Node', 'n1')?.status as { conditions: Array<{ type: string, status: string }> }).conditions
  const before = conditions().length
  const down = { type: 'NetworkUnavailable', status: 'False', reason: 'FlatnetIsUp' }
  t.equal(await patch('/status', 'application/strategic-merge-patch+json', { status: { conditions: [down] } }), 200)
  t.equal(conditions().length, before, 'merged by type: the kubelet\'s conditions stay')
  t.same(conditions().find((c) => c.type === 'NetworkUnavailable'), down)
  t.equal(await patch('', 'application/strategic-merge-patch+json', { status: { conditions: [] } }), 200)
  t.equal(conditions().length, before, 'status is not changed through the Node itself')
  t.equal(await patch('/status', 'application/merge-patch+json', { metadata: { annotations: { 'flatnet.io/vni': '1' } } }), 200)
  t.equal((api.object('Node', 'n1')?.metadata.annotations as Record<string, string>)['flatnet.io/vni'], '1', 'metadata through /status')
  t.equal(await patch('/status', 'application/json-patch+json', []), 415, 'a JSON patch is not served')
  t.equal((await requestRaw(`${url}/api/v1/nodes/n1/status`)), 404, 'GET of the status subresource is not served')
})

async function requestRaw (url: string): Promise<number> {
  return await new Promise((resolve, reject) => get(url, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) }).on('error', reject))
}
