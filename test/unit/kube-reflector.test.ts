// The reflector against the lab's API server on 127.0.0.1 (the real list/watch protocol:
// pages, resourceVersions, bookmarks, 410 Gone): what it requests, what it keeps, and
// how it retries. The retry schedule is read from the delays the reflector asks for
// (its sleep is replaced), so no assertion depends on how fast the machine is.
import t from 'tap'
import { pino } from 'pino'
import { Backoff } from '../../src/control/backoff.js'
import { KubeClient } from '../../src/kube/client.js'
import { Reflector } from '../../src/kube/reflector.js'
import { until } from '../../src/lab/until.js'
import type { KubeObject } from '../../src/lab/kube-api.js'
import { realNamespace, realPod } from '../../src/lab/kube-objects.js'
import { serveKubeApi } from '../lib/kube.js'

const log = pino({ level: 'silent' })

const serve = serveKubeApi

interface Seen { sets: string[], unchanged: string[], deletes: string[], syncs: number, failures: string[] }

function reflect (client: KubeClient, o: { pageSize?: number, sleep?: (ms: number) => Promise<void>, watchSeconds?: number, backoff?: Backoff } = {}): { r: Reflector<string>, seen: Seen } {
  const seen: Seen = { sets: [], unchanged: [], deletes: [], syncs: 0, failures: [] }
  const r = new Reflector<string>({
    client,
    kind: 'Namespace',
    path: '/api/v1/namespaces',
    log,
    pageSize: o.pageSize,
    backoff: o.backoff,
    watchSeconds: o.watchSeconds === undefined ? undefined : () => o.watchSeconds as number,
    sleep: o.sleep === undefined ? undefined : async (ms) => await o.sleep?.(ms),
    project: (raw) => {
      const labels = (raw as KubeObject).metadata.labels as Record<string, string> | undefined
      if (labels?.bad === 'yes') throw new Error('metadata.labels.bad: refused')
      return labels?.team ?? ''
    },
    sink: {
      set: (key, v) => seen.sets.push(`${key}=${v}`),
      unchanged: (key) => seen.unchanged.push(key),
      delete: (key) => seen.deletes.push(key),
      synced: () => { seen.syncs++ },
      failed: (err) => seen.failures.push(err.message),
    },
  })
  return { r, seen }
}

t.test('a paginated list, then watch events, bookmarks and a 410 relist', async (t) => {
  const { api, client } = await serve(t)
  for (let i = 0; i < 7; i++) api.putObject(realNamespace(`ns${i}`, { team: `t${i}` }) as KubeObject)
  const { r, seen } = reflect(client, { pageSize: 3 })
  r.start()
  t.teardown(async () => await r.stop())
  t.ok(await until(() => seen.syncs === 1, 5000) >= 0, 'listed')
  t.equal(r.store.size, 7, 'all 7 objects, over 3 pages')
  t.equal(r.store.get('ns4'), 't4', 'kept in projected form')
  const lists = api.requestLog.filter((q) => q.kind === 'Namespace' && !q.watch)
  t.same(lists.map((q) => q.query.limit), ['3', '3', '3'], 'pages of limit=3')
  t.notOk(lists[0].query.continue, 'the first page without continue')
  t.ok(lists[1].query.continue && lists[2].query.continue, 'the next pages with the continue token')
  t.ok(await until(() => api.requestLog.some((q) => q.kind === 'Namespace' && q.watch), 5000) >= 0, 'then a watch')
  const watch = api.requestLog.find((q) => q.kind === 'Namespace' && q.watch)
  t.equal(watch?.query.resourceVersion, r.resourceVersion, 'from the list\'s resourceVersion')
  t.equal(watch?.query.allowWatchBookmarks, 'true', 'with bookmarks')

  api.putObject(realNamespace('ns7', { team: 't7' }) as KubeObject)
  t.ok(await until(() => r.store.get('ns7') === 't7', 5000) >= 0, 'ADDED')
  api.deleteObject('Namespace', 'ns0')
  t.ok(await until(() => !r.store.has('ns0'), 5000) >= 0, 'DELETED')
  api.putObject(realNamespace('ns1', { team: 't1', bad: 'yes' }) as KubeObject)
  t.ok(await until(() => r.refused.has('ns1'), 5000) >= 0, 'a refused update is recorded')
  t.equal(r.store.get('ns1'), 't1', 'and the last good version stays')
  // A change to what the projection does not keep: the held value stays, nothing is set.
  const sets = seen.sets.length
  api.putObject(realNamespace('ns4', { team: 't4', unread: 'x' }) as KubeObject)
  t.ok(await until(() => seen.unchanged.includes('ns4'), 5000) >= 0, 'an unread field changed: reported unchanged')
  t.equal(seen.sets.length, sets, 'and not set')
  const before = r.resourceVersion
  api.putObject(realNamespace('other', {}) as KubeObject)
  api.deleteObject('Namespace', 'other')
  api.bookmark()
  t.ok(await until(() => r.resourceVersion !== before && !r.store.has('other'), 5000) >= 0, 'a bookmark moves the resume point')

  // In one turn of the event loop, before the reflector can watch again: the watch
  // dropped, a delete, history compacted, another delete. Its resume point is now too old.
  const setsBefore = seen.sets.length
  api.closeWatches()
  api.deleteObject('Namespace', 'ns2')
  api.compact()
  api.deleteObject('Namespace', 'ns3')
  t.ok(await until(() => seen.syncs === 2, 5000) >= 0, 'after 410 Gone: relisted')
  t.notOk(r.store.has('ns2') || r.store.has('ns3'), 'the deletes nobody watched are found by the relist')
  t.ok(seen.deletes.includes('ns2') && seen.deletes.includes('ns3'), 'and reported')
  t.equal(seen.sets.length, setsBefore, 'the relisted objects that did not change are not set again: the held ones stay')
  t.equal(r.stats.relists, 1)
  t.same(seen.failures, [], 'no failure on the way')
})

t.test('a list that keeps failing: exponential backoff with jitter, never reset, no storm', async (t) => {
  const { api, client } = await serve(t)
  api.putObject(realNamespace('a', {}) as KubeObject)
  api.failLists('Namespace', Infinity, 500)
  const delays: number[] = []
  const { r, seen } = reflect(client, { sleep: async (ms) => { delays.push(ms); await new Promise((resolve) => setImmediate(resolve)) } })
  r.start()
  t.teardown(async () => await r.stop())
  t.ok(await until(() => delays.length >= 10, 10_000) >= 0, '10 failed lists')
  await r.stop()
  const lists = api.requestLog.filter((q) => q.kind === 'Namespace' && !q.watch).length
  // The last request may be in flight when it stops: at most one more request than waits.
  t.ok(lists >= delays.length && lists <= delays.length + 1, `one list request per delay: no retry without a wait (${lists} lists, ${delays.length} waits)`)
  t.equal(seen.syncs, 0, 'never synced')
  t.equal(r.listed, false)
  t.match(r.error ?? '', /500/, 'the failure is kept: HTTP 500')
  // Backoff(1000, 30000): attempt i waits in [min(1000*2^i, 30000)/2, min(1000*2^i, 30000)].
  delays.forEach((ms, i) => {
    const cap = Math.min(1000 * 2 ** i, 30_000)
    t.ok(ms >= cap / 2 && ms <= cap, `retry ${i + 1}: ${Math.round(ms)} ms within [${cap / 2}, ${cap}]`)
  })
  t.comment(`retry schedule against a server that fails every list: ${delays.map((d) => (d / 1000).toFixed(1)).join(', ')} s`)
})

t.test('the backoff resets only after a successful list', async (t) => {
  const { api, client } = await serve(t)
  api.putObject(realNamespace('a', {}) as KubeObject)
  api.failLists('Namespace', 3, 503)
  const delays: number[] = []
  const { r, seen } = reflect(client, { sleep: async (ms) => { delays.push(ms); await new Promise((resolve) => setImmediate(resolve)) } })
  r.start()
  t.teardown(async () => await r.stop())
  t.ok(await until(() => seen.syncs === 1, 10_000) >= 0, 'listed after 3 failures')
  t.equal(delays.length, 3)
  t.ok(delays[2] >= 2000, `the third retry waited the doubled delay (${Math.round(delays[2])} ms)`)
  // The watch is asked for after the list is in: closing before it is open would close nothing,
  // and the failure would then land on the first watch, leaving one watch fewer than counted below.
  t.ok(await until(() => api.requestLog.some((q) => q.kind === 'Namespace' && q.watch), 10_000) >= 0, 'watching')
  // Now the watch fails (closed at once, then refused): the retries start from the first delay again.
  api.failWatches('Namespace', 1, 500)
  api.closeWatches()
  t.ok(await until(() => delays.length >= 4, 10_000) >= 0, 'the watch failed')
  t.ok(delays[3] <= 1000, `the first retry after a successful list waits the first delay again (${Math.round(delays[3])} ms)`)
  t.ok(await until(() => api.requestLog.filter((q) => q.kind === 'Namespace' && q.watch).length >= 3, 10_000) >= 0, 'watching again')
  t.equal(api.requestLog.filter((q) => q.kind === 'Namespace' && !q.watch).length, 4, 'a failed watch resumes; it does not relist')
})

t.test('no periodic relist: watches that time out resume from their resourceVersion', async (t) => {
  const { api, client } = await serve(t)
  api.putObject(realNamespace('a', {}) as KubeObject)
  const { r, seen } = reflect(client, { watchSeconds: 2 })
  r.start()
  t.teardown(async () => await r.stop())
  t.ok(await until(() => api.requestLog.filter((q) => q.kind === 'Namespace' && q.watch).length >= 3, 20_000) >= 0, 'three watches, each closed by timeoutSeconds=2')
  t.equal(api.requestLog.filter((q) => q.kind === 'Namespace' && !q.watch).length, 1, 'one list in all')
  t.equal(seen.syncs, 1)
  t.same(seen.failures, [], 'a watch closed by its timeout is no failure')
})

t.test('410 Gone as a watch request\'s status (not an event): relisted', async (t) => {
  const { api, client } = await serve(t)
  api.putObject(realNamespace('a', {}) as KubeObject)
  const { r, seen } = reflect(client, { sleep: async () => { await new Promise((resolve) => setImmediate(resolve)) } })
  r.start()
  t.teardown(async () => await r.stop())
  t.ok(await until(() => seen.syncs === 1 && api.requestLog.some((q) => q.watch), 5000) >= 0, 'listed and watching')
  api.failWatches('Namespace', 1, 410)
  api.closeWatches()
  t.ok(await until(() => seen.syncs === 2, 5000) >= 0, 'listed again')
  t.equal(r.stats.relists, 1)
})

t.test('namespaced objects: kept by namespace and name, and a relist finds the deletes nobody watched in each namespace', async (t) => {
  const { api, client } = await serve(t)
  const pod = (namespace: string, name: string, app: string): KubeObject => realPod({ namespace, name, labels: { app }, nodeName: 'n1', ips: [] })
  for (const ns of ['a', 'b', 'c']) for (const name of ['p1', 'p2', 'p3']) api.putObject(pod(ns, name, `${ns}-${name}`))
  const seen: Seen = { sets: [], unchanged: [], deletes: [], syncs: 0, failures: [] }
  const r = new Reflector<string>({
    client,
    kind: 'Pod',
    path: '/api/v1/pods',
    log,
    pageSize: 2,
    project: (raw) => ((raw as KubeObject).metadata.labels as Record<string, string>).app,
    sink: {
      set: (key, v) => seen.sets.push(`${key}=${v}`),
      unchanged: (key) => seen.unchanged.push(key),
      delete: (key) => seen.deletes.push(key),
      synced: () => { seen.syncs++ },
    },
  })
  r.start()
  t.teardown(async () => await r.stop())
  t.ok(await until(() => seen.syncs === 1, 5000) >= 0, 'listed')
  t.equal(r.store.size, 9)
  t.equal(r.store.get('b/p2'), 'b-p2', 'by "namespace/name"')
  t.same([...r.store.keys()].sort(), ['a/p1', 'a/p2', 'a/p3', 'b/p1', 'b/p2', 'b/p3', 'c/p1', 'c/p2', 'c/p3'])
  t.ok(seen.sets.includes('c/p3=c-p3'), 'the sink is told the key')

  api.putObject(pod('b', 'p2', 'changed'))
  t.ok(await until(() => r.store.get('b/p2') === 'changed', 5000) >= 0, 'MODIFIED')
  api.deleteObject('Pod', 'p1', 'a')
  t.ok(await until(() => !r.store.has('a/p1'), 5000) >= 0, 'DELETED')
  t.ok(seen.deletes.includes('a/p1'))

  // Unwatched: every pod of namespace c and one of b go, one of b changes, one comes in a new namespace.
  const sets = seen.sets.length
  api.closeWatches()
  for (const name of ['p1', 'p2', 'p3']) api.deleteObject('Pod', name, 'c')
  api.deleteObject('Pod', 'p3', 'b')
  api.putObject(pod('b', 'p1', 'changed too'))
  api.putObject(pod('d', 'p1', 'd-p1'))
  api.compact()
  t.ok(await until(() => seen.syncs === 2, 5000) >= 0, 'after 410 Gone: relisted')
  t.same([...r.store.keys()].sort(), ['a/p2', 'a/p3', 'b/p1', 'b/p2', 'd/p1'], 'what the server holds, no more')
  t.same(seen.deletes.slice(1).sort(), ['b/p3', 'c/p1', 'c/p2', 'c/p3'], 'each unwatched delete reported once')
  t.same(seen.sets.slice(sets).sort(), ['b/p1=changed too', 'd/p1=d-p1'], 'only what changed is set again')
  t.equal(r.store.size, 5)
})
