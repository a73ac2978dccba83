// One connection judged against the compiled model: it passes when the source's
// egress allows it AND the destination's ingress allows it (NetworkPolicy docs:
// "both the egress policy on the source pod and the ingress policy on the
// destination pod need to allow the connection").
import { canonicalIP } from './addresses.js'
import { addressIn } from './compile.js'
import type { AllowEntry, DirectionPolicy, PolicyModel } from './model.js'
import type { Protocol } from './objects.js'

export interface Query { fromIP: string, toIP: string, protocol: Protocol, port: number }

export interface DirectionVerdict {
  /** Whether any policy isolates the pod in this direction (false too when the address is no pod's). */
  isolated: boolean
  /** The policies ("namespace/name") whose rules allow the connection, each once. */
  allowedBy: string[]
}

export interface Verdict {
  allowed: boolean
  /**
   * fromOwnNode: the source is an address of the destination pod's node (from
   * CompileOptions.nodeAddresses). The docs state "traffic to and from the node
   * where a Pod is running is always allowed", so kubelet probes pass an isolated pod.
   */
  ingress: DirectionVerdict & { fromOwnNode: boolean }
  /** toOwnNode: the destination is an address of the source pod's node (same rule, other way). */
  egress: DirectionVerdict & { toOwnNode: boolean }
}

function onNode (model: PolicyModel, node: string | undefined, ip: string): boolean {
  return node !== undefined && (model.nodeAddresses.get(node)?.includes(ip) ?? false)
}

function allowedBy (d: DirectionPolicy, peerIP: string, q: Query): string[] {
  const by: string[] = []
  for (const e of d.entries) if (matchesEntry(e, peerIP, q) && !by.includes(e.policy)) by.push(e.policy)
  return by
}

function matchesEntry (e: AllowEntry, peerIP: string, q: Query): boolean {
  if (!addressIn(e.peers, peerIP)) return false
  if (e.ports === 'all') return true
  return e.ports.some((p) => p.protocol === q.protocol && (p.ports === undefined || (q.port >= p.ports.from && q.port <= p.ports.to)))
}

export function evaluate (model: PolicyModel, query: Query): Verdict {
  const q = { ...query, fromIP: canonicalIP(query.fromIP) ?? query.fromIP, toIP: canonicalIP(query.toIP) ?? query.toIP }
  const src = model.byIP.get(q.fromIP)
  const dst = model.byIP.get(q.toIP)

  const toOwnNode = onNode(model, src?.nodeName, q.toIP)
  const egress = { isolated: src?.egress.isolated ?? false, allowedBy: [] as string[], toOwnNode }
  if (src?.egress.isolated) egress.allowedBy = allowedBy(src.egress, q.toIP, q)
  const egressOK = toOwnNode || !egress.isolated || egress.allowedBy.length > 0

  const fromOwnNode = onNode(model, dst?.nodeName, q.fromIP)
  const ingress = { isolated: dst?.ingress.isolated ?? false, allowedBy: [] as string[], fromOwnNode }
  if (dst?.ingress.isolated) ingress.allowedBy = allowedBy(dst.ingress, q.fromIP, q)
  const ingressOK = fromOwnNode || !ingress.isolated || ingress.allowedBy.length > 0

  return { allowed: egressOK && ingressOK, ingress, egress }
}
