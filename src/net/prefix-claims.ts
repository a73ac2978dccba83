// Which peer claims which pod CIDRs, so that a record overlapping another peer's is found
// in the length of its prefix rather than the number of peers (5,000 peers join at once
// on a first sync). One binary trie per family, a node per bit; a node holds the peer
// claiming exactly that prefix and how many claims lie at or below it.
import type { Cidr } from './cidr.js'

interface TrieNode { owner?: string, below: number, child: [TrieNode | undefined, TrieNode | undefined] }

const bit = (bytes: Buffer, i: number): 0 | 1 => ((bytes[i >> 3] >> (7 - (i & 7))) & 1) as 0 | 1

export class PrefixClaims {
  private readonly roots = new Map<number, TrieNode>()

  /** A peer other than `by` whose claim overlaps c (contains it, lies inside it, or is it), or undefined. */
  conflict (c: Cidr, by: string): string | undefined {
    let n = this.roots.get(c.family)
    for (let i = 0; n !== undefined; i++) {
      if (n.owner !== undefined && n.owner !== by) return n.owner // a claim containing c
      if (i === c.length) return n.below > (n.owner === by ? 1 : 0) ? this.inside(n, by) : undefined
      n = n.child[bit(c.bytes, i)]
    }
    return undefined
  }

  claim (c: Cidr, by: string): void {
    let n = this.roots.get(c.family)
    if (n === undefined) this.roots.set(c.family, n = { below: 0, child: [undefined, undefined] })
    for (let i = 0; ; i++) {
      n.below++
      if (i === c.length) break
      const b = bit(c.bytes, i)
      n = n.child[b] ??= { below: 0, child: [undefined, undefined] }
    }
    n.owner = by
  }

  release (c: Cidr, by: string): void {
    const path: TrieNode[] = []
    let n = this.roots.get(c.family)
    for (let i = 0; n !== undefined && i < c.length; i++) {
      path.push(n)
      n = n.child[bit(c.bytes, i)]
    }
    if (n?.owner !== by) return
    n.owner = undefined
    for (const p of [...path, n]) p.below--
    // Prune the branch that holds nothing now.
    for (let i = path.length - 1; i >= 0; i--) {
      const child = path[i].child[bit(c.bytes, i)]
      if (child !== undefined && child.below === 0) path[i].child[bit(c.bytes, i)] = undefined
    }
  }

  // Some claim by another peer at or below n (n has claims below it besides by's).
  private inside (n: TrieNode, by: string): string | undefined {
    const stack = [n]
    while (stack.length > 0) {
      const m = stack.pop() as TrieNode
      if (m.owner !== undefined && m.owner !== by) return m.owner
      for (const c of m.child) if (c !== undefined && c.below > 0) stack.push(c)
    }
    return undefined
  }
}
