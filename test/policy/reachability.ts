// Expected connectivity as upstream's e2e test writes it (kubernetes/kubernetes
// test/e2e/network/netpol/reachability.go Reachability, truthtable.go TruthTable):
// a table over "ns/pod" strings that starts all-true or all-false and is edited by
// expect calls applied in order, so a case reads exactly like the upstream test.

/** upstream's Peer: an empty field matches every namespace / pod name. */
export interface PeerMatch { namespace?: string, pod?: string }

function matchesPeer (p: PeerMatch, item: string): boolean {
  const [ns, pod] = item.split('/')
  return (p.namespace === undefined || p.namespace === ns) && (p.pod === undefined || p.pod === pod)
}

export class TruthTable {
  private readonly values = new Map<string, boolean>()
  constructor (readonly items: readonly string[], initial: boolean) {
    for (const from of items) for (const to of items) this.values.set(`${from}>${to}`, initial)
  }

  set (from: string, to: string, value: boolean): void {
    const k = `${from}>${to}`
    if (!this.values.has(k)) throw new Error(`no pod pair ${from} -> ${to} in the table (pods: ${this.items.join(', ')})`)
    this.values.set(k, value)
  }

  get (from: string, to: string): boolean {
    const v = this.values.get(`${from}>${to}`)
    if (v === undefined) throw new Error(`no pod pair ${from} -> ${to} in the table`)
    return v
  }

  /** TruthTable.PrettyPrint: a header of the items, then a row per from, "." for true, "X" for false. */
  prettyPrint (indent = ''): string {
    return prettyPrint(this.items, (f, t) => (this.get(f, t) ? '.' : 'X'), indent)
  }
}

export function prettyPrint (items: readonly string[], cell: (from: string, to: string) => string, indent = ''): string {
  const lines = [`${indent}-\t${items.join('\t')}`]
  for (const from of items) lines.push(`${indent}${from}\t${items.map((to) => cell(from, to)).join('\t')}`)
  return lines.join('\n')
}

export class Reachability {
  readonly expected: TruthTable
  constructor (readonly pods: readonly string[], defaultExpectation: boolean) {
    this.expected = new TruthTable(pods, defaultExpectation)
  }

  /** Expect(pod1, pod2, connected) */
  expect (from: string, to: string, connected: boolean): this {
    this.expected.set(from, to, connected)
    return this
  }

  /** ExpectPeer(from, to, connected): every pod matching from, to every pod matching to. */
  expectPeer (from: PeerMatch, to: PeerMatch, connected: boolean): this {
    for (const f of this.pods) if (matchesPeer(from, f)) for (const t of this.pods) if (matchesPeer(to, t)) this.expected.set(f, t, connected)
    return this
  }

  /** ExpectAllIngress(pod, connected): every pod to pod. */
  expectAllIngress (pod: string, connected: boolean): this {
    for (const f of this.pods) this.expected.set(f, pod, connected)
    return this
  }

  /** ExpectAllEgress(pod, connected): pod to every pod. */
  expectAllEgress (pod: string, connected: boolean): this {
    for (const t of this.pods) this.expected.set(pod, t, connected)
    return this
  }
}

export interface Comparison { wrong: number, text: string }

/**
 * Reachability.Summary: the expected and observed tables and their comparison
 * ("." equal, "X" differs). With ignoreLoopback a pod to itself is not counted,
 * as upstream does (network_policy.go ignoreLoopback, kubernetes#95879).
 */
export function compare (expected: TruthTable, observed: TruthTable, ignoreLoopback = true): Comparison {
  let wrong = 0
  const diff = prettyPrint(expected.items, (f, t) => {
    if (ignoreLoopback && f === t) return '.'
    if (expected.get(f, t) === observed.get(f, t)) return '.'
    wrong++
    return 'X'
  }, '\t')
  const text = `expected:\n\n${expected.prettyPrint('\t')}\n\nobserved:\n\n${observed.prettyPrint('\t')}\n\ncomparison:\n\n${diff}\n`
  return { wrong, text }
}
