// The table kept change by change equals the table built from scratch. Random clusters
// (seeded: a failure replays) go into a NodeTable one object at a time (some before its
// first whole apply, the rest after, as the daemon's initial lists arrive), then random
// changes follow: pods relabelled, moved between nodes, readdressed, finished, deleted,
// created on an address another pod still holds; namespaces relabelled; policies
// created, copied (sharing sets), changed, deleted. Every batch of commands is applied
// to a real table with nft, as the daemon applies it, and must be accepted; at the end
// the kernel's table must
// hold what a fresh NodeTable of the final objects puts in a second table (and what the
// kept NodeTable's own full script, its rebuild path, puts there). And a table read back
// from the kernel must judge every connection of the node's pods as the compiled model
// does (which the unit property test holds to a reference written from the API's prose).
// Root and nft: the check is against what the kernel accepts and holds, not our own text.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Namespace as Netns } from '../../src/lab/netns.js'
import { compile } from '../../src/policy/compile.js'
import { tableOf } from '../../src/policy/enforce.js'
import { evaluate } from '../../src/policy/evaluate.js'
import { NodeTable } from '../../src/policy/node-table.js'
import { type Namespace, type NetworkPolicy, type Pod, PROTOCOLS, parseNamespace, parseNetworkPolicy, parsePod } from '../../src/policy/objects.js'
import { tableReplacement } from '../../src/net/nft.js'
import { labSkipReason } from '../lib/lab.js'
import { generator } from '../policy/random-world.js'
import { tableIn } from '../policy/table-canon.js'
import { KernelTable } from '../policy/table-eval.js'

const SEEDS = 60
const STEPS = 30

t.test('after random changes, the table kept change by change is the one built from scratch', async (t) => {
  const why = labSkipReason('the incremental NetworkPolicy table test', ['nft'])
  if (why) return t.pass(`skipped: ${why}`, { skip: true })
  const kept = Netns.create(`flatnet-incr-kept-${process.pid}`)
  const fresh = Netns.create(`flatnet-incr-fresh-${process.pid}`)
  t.teardown(async () => { await kept.destroy(); await fresh.destroy() })
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-incr-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const load = async (ns: Netns, script: string): Promise<void> => {
    writeFileSync(join(dir, 'script.nft'), script)
    await ns.execAsync('nft', ['-f', join(dir, 'script.nft')])
  }
  let batches = 0
  let commands = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const g = generator(seed)
    const { json } = g.world()
    const n = 1 + g.int(3)
    const node = { nodeName: `node-${n}`, podCIDRs: [`10.244.${n}.0/24`, `fd00:10:244:${n}::/64`] }
    const namespaces = new Map<string, Namespace>()
    const pods = new Map<string, Pod>()
    const policies = new Map<string, NetworkPolicy>()
    const table = new NodeTable(node)
    const flush = async (where: string): Promise<boolean> => {
      const delta = table.takeDelta()
      if (delta === undefined) return true
      batches++
      commands += delta.split('\n').length - 1
      try {
        await load(kept, delta)
        return true
      } catch (err) {
        t.fail(`seed ${seed}, ${where}: nft refused the commands: ${(err as Error).message}`, { delta })
        return false
      }
    }
    const key = (o: { namespace?: string, name: string }): string => `${o.namespace ?? ''}/${o.name}`
    const setNs = (next: Namespace): void => { table.namespace(next, namespaces.get(next.name)); namespaces.set(next.name, next) }
    const setPod = (next: Pod | undefined, k: string): void => {
      table.pod(next, pods.get(k))
      if (next) pods.set(k, next)
      else pods.delete(k)
    }
    const setPolicy = (next: NetworkPolicy | undefined, k: string): void => {
      table.policy(next, policies.get(k))
      if (next) policies.set(k, next)
      else policies.delete(k)
    }
    // The objects arrive in a random order, a few at a time, as list pages and watch events interleave.
    const arrivals: Array<() => void> = [
      ...json.namespaces.map((j) => () => setNs(parseNamespace(j))),
      ...json.pods.map((j) => () => { const p = parsePod(j); setPod(p, key(p)) }),
      ...json.policies.map((j) => () => { const p = parseNetworkPolicy(j); setPolicy(p, key(p)) }),
    ]
    // Some arrive before the first apply, which renders the table whole, as the daemon's initial lists do.
    for (let before = g.int(arrivals.length + 1); before > 0; before--) arrivals.splice(g.int(arrivals.length), 1)[0]()
    await load(kept, tableReplacement('inet', 'flatnet-policy', table.script()))
    table.record()
    while (arrivals.length > 0) {
      arrivals.splice(g.int(arrivals.length), 1)[0]()
      if (g.chance(0.5) && !await flush('arrivals')) return
    }
    if (!await flush('arrivals')) return
    for (let step = 0; step < STEPS; step++) {
      const podList = [...pods.values()]
      const what = g.int(10)
      if (what < 6 && podList.length > 0) {
        const previous = g.pick(podList)
        const k = key(previous)
        const next: Pod = { ...previous }
        switch (g.int(7)) {
          case 0: next.labels = g.labels(); break
          case 1: next.nodeName = `node-${1 + g.int(3)}`; break
          case 2: { const m = 1 + g.int(3); next.ips = [`10.244.${m}.${100 + step}`]; next.nodeName = `node-${m}`; break }
          case 3: next.finished = true; break
          case 4: setPod(undefined, k); continue
          case 5: setPod({ ...previous, name: `copy${step}`, labels: g.labels() }, `${previous.namespace}/copy${step}`); continue // on an address another pod holds
          default: next.ips = []; break // not yet addressed
        }
        setPod(next, k)
      } else if (what < 8) {
        const ns = g.pick([...namespaces.values()])
        setNs({ name: ns.name, labels: { ...g.labels(), 'kubernetes.io/metadata.name': ns.name } })
      } else {
        const existing = [...policies.keys()]
        if (existing.length > 0 && g.chance(0.3)) setPolicy(undefined, g.pick(existing))
        else if (existing.length > 0 && g.chance(0.4)) {
          // A policy with another's peers: the two share sets, which must outlive either.
          const copy = { ...policies.get(g.pick(existing)) as NetworkPolicy, name: `np-copy${step}` }
          setPolicy(copy, key(copy))
        } else {
          const p = parseNetworkPolicy(g.policy([...namespaces.keys()], existing.length > 0 && g.chance(0.5) ? g.pick(existing).split('/')[1] : `np-new${step}`))
          setPolicy(p, key(p))
        }
      }
      if (g.chance(0.6) && !await flush(`step ${step}`)) return
    }
    if (!await flush('the last step')) return
    const got = await tableIn(kept)
    await load(fresh, tableReplacement('inet', 'flatnet-policy', tableOf(node, { namespaces: [...namespaces.values()], pods: [...pods.values()], policies: [...policies.values()] }).script()))
    const want = await tableIn(fresh)
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      t.same(got, want, `seed ${seed}: the kept table is the one built from scratch`)
      return
    }
    await load(fresh, tableReplacement('inet', 'flatnet-policy', table.script()))
    if (JSON.stringify(await tableIn(fresh)) !== JSON.stringify(want)) {
      t.same(await tableIn(fresh), want, `seed ${seed}: the kept NodeTable's full script (the rebuild) is the one built from scratch`)
      return
    }
  }
  t.pass(`${SEEDS} clusters, ${SEEDS * STEPS} changes after the arrivals: ${batches} batches of ${commands} commands accepted, each final table the one built from scratch`)
})

t.test('the table, read back from the kernel, judges every connection as the compiled model does', async (t) => {
  const why = labSkipReason('the NetworkPolicy table semantics test', ['nft'])
  if (why) return t.pass(`skipped: ${why}`, { skip: true })
  const ns = Netns.create(`flatnet-incr-judge-${process.pid}`)
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-incr-'))
  t.teardown(async () => { await ns.destroy(); rmSync(dir, { recursive: true, force: true }) })
  let judged = 0
  let denied = 0
  for (let seed = 1; seed <= 150; seed++) {
    const { json, ips } = generator(seed).world()
    const objects = { namespaces: json.namespaces.map(parseNamespace), pods: json.pods.map(parsePod), policies: json.policies.map(parseNetworkPolicy) }
    const model = compile(objects.namespaces, objects.pods, objects.policies)
    for (const n of [1, 2, 3]) {
      const node = { nodeName: `node-${n}`, podCIDRs: [`10.244.${n}.0/24`, `fd00:10:244:${n}::/64`] }
      writeFileSync(join(dir, 'table.nft'), tableReplacement('inet', 'flatnet-policy', tableOf(node, objects).script()))
      await ns.execAsync('nft', ['-f', join(dir, 'table.nft')])
      const kernel = new KernelTable(await ns.execAsync('nft', ['-j', 'list', 'table', 'inet', 'flatnet-policy']))
      const local = (ip: string): boolean => model.byIP.get(ip)?.nodeName === node.nodeName
      for (const fromIP of ips) {
        for (const toIP of ips.filter((ip) => ip.includes(':') === fromIP.includes(':'))) {
          for (const protocol of PROTOCOLS) {
            for (const port of [53, 80, 81, 8080]) {
              const q = { fromIP, toIP, protocol, port }
              const v = evaluate(model, q)
              for (const [dir, ok, mine] of [['out', !v.egress.isolated || v.egress.allowedBy.length > 0, local(fromIP)], ['in', !v.ingress.isolated || v.ingress.allowedBy.length > 0, local(toIP)]] as const) {
                if (!mine) continue
                judged++
                if (!ok) denied++
                if ((kernel.allows(dir, q) ?? true) !== ok) {
                  t.fail(`seed ${seed}, ${node.nodeName}: ${JSON.stringify(q)} ${dir === 'in' ? 'ingress' : 'egress'}: the table says ${!ok}, the model ${ok}`, { world: JSON.stringify(json) })
                  return
                }
              }
            }
          }
        }
      }
    }
  }
  t.pass(`${judged} verdicts of the kernel's tables over 150 clusters agree with the compiled model`)
  t.ok(denied > judged * 0.1 && denied < judged * 0.9, `a mix of verdicts (${denied} of ${judged} denied)`)
})
