// Judges a connection's first packet against the policy table as the kernel lists it
// (`nft -j list table inet flatnet-policy`): the verdict map entry for the pod's address,
// then its chain's rules in order, each match read from the JSON nft gives back. Only the
// expressions the table uses are understood; any other is an error, never a guess.
import { inBlock } from '../../src/policy/addresses.js'
import type { Query } from '../../src/policy/evaluate.js'

type Json = Record<string, unknown>

export class KernelTable {
  private readonly sets = new Map<string, unknown[]>()
  private readonly maps = new Map<string, Map<string, string>>()
  private readonly rules = new Map<string, Json[][]>()

  constructor (json: string) {
    for (const item of (JSON.parse(json) as { nftables: Json[] }).nftables) {
      const set = item.set as Json | undefined
      if (set) this.sets.set(set.name as string, (set.elem as unknown[] | undefined) ?? [])
      const map = item.map as Json | undefined
      if (map) this.maps.set(map.name as string, new Map(((map.elem as Array<[string, { jump: { target: string } }]> | undefined) ?? []).map(([k, v]) => [k, v.jump.target])))
      const rule = item.rule as Json | undefined
      if (rule) this.rules.set(rule.chain as string, [...this.rules.get(rule.chain as string) ?? [], rule.expr as Json[]])
    }
  }

  /** The verdict of the pod's own chain: undefined when the table has no entry for it (not isolated that way). */
  allows (dir: 'in' | 'out', q: Query): boolean | undefined {
    const own = dir === 'in' ? q.toIP : q.fromIP
    const chain = this.maps.get(`${dir}${own.includes(':') ? 6 : 4}`)?.get(own)
    if (chain === undefined) return undefined
    return this.verdict(chain, q)
  }

  private verdict (chain: string, q: Query): boolean {
    for (const expr of this.rules.get(chain) ?? []) {
      let all = true
      for (const e of expr) {
        if ('return' in e) return true
        if ('drop' in e) return false
        if ('goto' in e) return this.verdict((e.goto as { target: string }).target, q)
        // The deny chains' log (within a limit) is a side effect: the rule goes on to the next.
        if ('counter' in e || 'limit' in e || 'log' in e) continue
        if (!('match' in e)) throw new Error(`an expression this reader does not know: ${JSON.stringify(e)}`)
        if (!this.holds(e.match as Json, q)) { all = false; break }
      }
      if (all && !expr.some((e) => 'log' in e)) throw new Error(`a rule of ${chain} fell through without a verdict`)
    }
    throw new Error(`chain ${chain} ends without a verdict`)
  }

  private holds (m: Json, q: Query): boolean {
    const left = this.value(m.left as Json, q)
    if (left === undefined) return false // e.g. tcp dport on a UDP packet
    const found = this.member(m.right, left)
    return m.op === '!=' ? !found : found
  }

  private value (left: Json, q: Query): unknown {
    if ('concat' in left) {
      const parts = (left.concat as Json[]).map((l) => this.value(l, q))
      return parts.some((p) => p === undefined) ? undefined : parts
    }
    if ('meta' in left && (left.meta as Json).key === 'l4proto') return q.protocol.toLowerCase()
    const p = left.payload as Json | undefined
    if (p?.field === 'saddr') return q.fromIP
    if (p?.field === 'daddr') return q.toIP
    if (p?.field === 'dport') return p.protocol === 'th' || p.protocol === q.protocol.toLowerCase() ? q.port : undefined
    throw new Error(`a match this reader does not know: ${JSON.stringify(left)}`)
  }

  private member (right: unknown, v: unknown): boolean {
    if (typeof right === 'string' && right.startsWith('@')) return (this.sets.get(right.slice(1)) ?? []).some((e) => this.member(e, v))
    if (Array.isArray(v)) {
      const parts = (right as { concat: unknown[] }).concat
      return parts.length === v.length && parts.every((p, i) => this.member(p, v[i]))
    }
    if (right !== null && typeof right === 'object') {
      const o = right as Json
      if ('set' in o) return (o.set as unknown[]).some((e) => this.member(e, v))
      if ('prefix' in o) { const p = o.prefix as { addr: string, len: number }; return inBlock({ cidr: `${p.addr}/${p.len}`, except: [] }, v as string) }
      if ('range' in o) { const [a, b] = o.range as [number, number]; return (v as number) >= a && (v as number) <= b }
      throw new Error(`a value this reader does not know: ${JSON.stringify(right)}`)
    }
    return right === v
  }
}
