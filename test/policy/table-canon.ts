// The NetworkPolicy table as the kernel holds it (`nft -j list table inet flatnet-policy`),
// in a form where names do not matter: every set reference replaced by the set's sorted
// elements, every verdict map entry by the rules of the chain it jumps to. Two tables
// built different ways (from scratch, or change by change with other set and chain
// names) compare equal exactly when they hold the same thing.
import type { Namespace } from '../../src/lab/netns.js'

type Json = Record<string, unknown>

export interface CanonicalTable {
  /** Verdict map -> address -> the rules of the chain it jumps to. */
  maps: Record<string, Record<string, string>>
  /** Named sets referenced from nowhere but the forward chain (local4, local6), by name. */
  local: Record<string, string[]>
  forward: string
  /** How many sets and chains there are: none may be left behind. */
  sets: number
  chains: number
}

export function canonicalTable (json: string): CanonicalTable {
  const items = (JSON.parse(json) as { nftables: Json[] }).nftables
  const sets = new Map<string, string[]>()
  const rules = new Map<string, Json[]>()
  const maps: Array<{ name: string, elem: unknown[] }> = []
  let chains = 0
  for (const item of items) {
    const set = item.set as Json | undefined
    if (set) sets.set(set.name as string, ((set.elem as unknown[] | undefined) ?? []).map((e) => JSON.stringify(e)).sort())
    const map = item.map as Json | undefined
    if (map) maps.push({ name: map.name as string, elem: (map.elem as unknown[] | undefined) ?? [] })
    if (item.chain) chains++
    const rule = item.rule as Json | undefined
    if (rule) {
      const list = rules.get(rule.chain as string) ?? []
      list.push(rule)
      rules.set(rule.chain as string, list)
    }
  }
  const resolve = (rule: Json): string => JSON.stringify({ expr: rule.expr, comment: rule.comment }, (k, v: unknown) => {
    if (k === 'handle') return undefined
    if (typeof v === 'string' && v.startsWith('@')) return { set: sets.get(v.slice(1)) ?? `missing ${v}` }
    return v
  })
  const chain = (name: string): string => (rules.get(name) ?? []).map(resolve).join('\n')
  const out: CanonicalTable = { maps: {}, local: {}, forward: chain('forward'), sets: sets.size, chains }
  for (const m of maps) {
    const entries: Record<string, string> = {}
    for (const e of m.elem as Array<[unknown, { jump?: { target: string } }]>) entries[JSON.stringify(e[0])] = chain(e[1].jump?.target ?? '?')
    out.maps[m.name] = Object.fromEntries(Object.entries(entries).sort(([a], [b]) => a < b ? -1 : 1))
  }
  for (const name of ['local4', 'local6']) out.local[name] = sets.get(name) ?? []
  return out
}

/** The canonical table of the policy table in a namespace. */
export async function tableIn (ns: Namespace): Promise<CanonicalTable> {
  return canonicalTable(await ns.execAsync('nft', ['-j', 'list', 'table', 'inet', 'flatnet-policy'], 120_000))
}
