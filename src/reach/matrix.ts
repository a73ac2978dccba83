// `flatnet status --all`: every node's view of its peers, asked of each peer's daemon
// through the overlay itself (GET /reachability on its metrics port, at its overlay
// address), so it works whatever the peer source, and a node that does not answer is
// part of the answer. Each reply is small and bounded (the unreachable named up to 100).

/** One node's view, as its daemon serves it at /reachability. */
export interface Reachability {
  node: string
  version: string
  peers: number
  overlay: { reachable: number, unreachable: number, unknown: number, down: string[] } | null // null: probes off
  underlay: { reachable: number, unreachable: number, unknown: number, down: string[] } | null
}

export interface MatrixRow { node: string, address: string, view?: Reachability, error?: string }

const CONCURRENCY = 32
const TIMEOUT_MS = 2000

/** The overlay address of a pod CIDR ("10.244.2.0/24" -> "10.244.2.0"), as a URL host. */
function host (podCIDR: string): string {
  const a = podCIDR.split('/')[0]
  return a.includes(':') ? `[${a}]` : a
}

/** Asks each peer (name and first pod CIDR) for its view, CONCURRENCY at a time. */
export async function askPeers (peers: Array<{ node: string, podCIDR: string }>, port: number): Promise<MatrixRow[]> {
  const rows: MatrixRow[] = peers.map((p) => ({ node: p.node, address: host(p.podCIDR) }))
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < rows.length; i = next++) {
      const row = rows[i]
      try {
        const res = await fetch(`http://${row.address}:${port}/reachability`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
        const view = await res.json() as Reachability
        if (typeof view?.node !== 'string' || typeof view.peers !== 'number') throw new Error('not a flatnet reply')
        row.view = view
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } }
        row.error = e.name === 'TimeoutError' ? 'no answer' : e.cause?.code ?? e.message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, worker))
  return rows
}

export function renderMatrix (rows: MatrixRow[]): string {
  const part = (p: Reachability['overlay'], total: number): string =>
    p === null ? 'probes off' : `${p.reachable}/${total}${p.unknown ? ` (${p.unknown} probing)` : ''}`
  const table = rows.map((r) => {
    const v = r.view
    if (!v) return [r.node, 'NO ANSWER', r.error ?? '', '', '']
    const down = [...(v.overlay?.down ?? []).map((n) => `${n} (overlay)`), ...(v.underlay?.down ?? []).map((n) => `${n} (underlay)`)]
    return [r.node, v.version, part(v.overlay, v.peers), part(v.underlay, v.peers), down.join(', ') || '-']
  })
  const head = ['NODE', 'VERSION', 'OVERLAY', 'UNDERLAY', 'UNREACHABLE FROM IT']
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)))
  const lines = [head, ...table].map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ').trimEnd())
  const silent = rows.filter((r) => !r.view).length
  const tail = silent
    ? `${silent} of ${rows.length} did not answer: not a flatnet node (a kernel vxlan peer), its metrics port off or filtered, or unreachable through the overlay\n`
    : ''
  return `${lines.join('\n')}\n${tail}`
}
