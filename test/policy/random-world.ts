// Random clusters and policies for the property tests, seeded so that a failure replays:
// the selectors, peers, ipBlocks and ports of every shape the API allows, over a handful
// of pods so that the shapes meet.
import { prng } from '../lib/prng.js'

/** Seeded random clusters: namespaces x, y (z), pods on node-1..3 in 10.244.<node>.0/24 (some dual-stack, some host-network), policies of every shape. */
export function generator (seed: number) {
  const r = prng(seed)
  const int = (n: number): number => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]
  const chance = (p: number): boolean => r() < p
  const some = <T>(xs: readonly T[], max: number): T[] => Array.from({ length: int(max + 1) }, () => pick(xs))
  const KEYS = ['app', 'tier', 'team']
  const VALUES = ['a', 'b', 'c']
  const labels = (): Record<string, string> => Object.fromEntries(some(KEYS, 2).map((k) => [k, pick(VALUES)]))
  const selector = (): Record<string, unknown> => {
    if (chance(0.25)) return {}
    const s: Record<string, unknown> = {}
    if (chance(0.6)) s.matchLabels = labels()
    if (chance(0.5)) {
      s.matchExpressions = some(KEYS, 2).map((key) => {
        const operator = pick(['In', 'NotIn', 'Exists', 'DoesNotExist'])
        return operator === 'In' || operator === 'NotIn' ? { key, operator, values: [pick(VALUES), ...some(VALUES, 1)] } : { key, operator }
      })
    }
    return s
  }
  const BLOCKS = [
    { cidr: '10.244.0.0/16', except: ['10.244.1.0/24'] },
    { cidr: '10.244.1.0/24', except: ['10.244.1.16/28'] },
    { cidr: '10.244.2.20/30' },
    { cidr: '0.0.0.0/0', except: ['10.244.3.0/24', '192.168.0.0/16'] },
    { cidr: '10.0.0.0/8' },
    { cidr: 'fd00:10:244::/48', except: ['fd00:10:244:1::/64'] },
    { cidr: '::/0' },
  ]
  const peer = (): Record<string, unknown> => {
    const kind = int(4)
    if (kind === 0) return { ipBlock: pick(BLOCKS) }
    if (kind === 1) return { podSelector: selector() }
    if (kind === 2) return { namespaceSelector: selector() }
    return { podSelector: selector(), namespaceSelector: selector() }
  }
  const PORT_NAMES = ['http', 'dns', 'metrics']
  const policyPort = (): Record<string, unknown> => {
    const p: Record<string, unknown> = {}
    if (chance(0.7)) p.protocol = pick(['TCP', 'UDP', 'SCTP'])
    const kind = int(4)
    if (kind === 1) p.port = pick([53, 80, 81, 8080])
    if (kind === 2) { p.port = pick([53, 80, 8000]); p.endPort = (p.port as number) + pick([0, 1, 100]) }
    if (kind === 3) p.port = pick(PORT_NAMES)
    return p
  }
  const rule = (peersKey: 'from' | 'to'): Record<string, unknown> => {
    const o: Record<string, unknown> = {}
    if (chance(0.7)) o[peersKey] = Array.from({ length: 1 + int(2) }, peer)
    if (chance(0.7)) o.ports = Array.from({ length: 1 + int(2) }, policyPort)
    return o
  }
  const policy = (nsNames: readonly string[], name: string): { metadata: { namespace: string, name: string }, spec: Record<string, unknown> } => {
    const spec: Record<string, unknown> = { podSelector: selector() }
    if (chance(0.7)) spec.ingress = Array.from({ length: int(3) }, () => rule('from'))
    if (chance(0.6)) spec.egress = Array.from({ length: int(3) }, () => rule('to'))
    if (chance(0.5)) spec.policyTypes = pick([['Ingress'], ['Egress'], ['Ingress', 'Egress'], ['Egress', 'Ingress']])
    return { metadata: { namespace: pick(nsNames), name }, spec }
  }
  function world (): { json: { namespaces: unknown[], pods: unknown[], policies: unknown[] }, ips: string[] } {
    const nsNames = ['x', 'y', 'z'].slice(0, 2 + int(2))
    const namespaces = nsNames.map((name) => ({ metadata: { name, labels: labels() } }))
    const ips: string[] = []
    const pods = Array.from({ length: 2 + int(6) }, (_, i) => {
      const node = 1 + int(3)
      const podIPs = [{ ip: `10.244.${node}.${10 + i * 3 + int(3)}` }]
      if (chance(0.3)) podIPs.push({ ip: `fd00:10:244:${node}::${(10 + i).toString(16)}` })
      const hostNetwork = chance(0.1)
      if (hostNetwork) podIPs.splice(0, podIPs.length, { ip: `192.168.0.${node}` })
      ips.push(...podIPs.map((p) => p.ip))
      return {
        metadata: { namespace: pick(nsNames), name: `p${i}`, labels: labels() },
        spec: {
          nodeName: `node-${node}`,
          hostNetwork,
          containers: [{
            ports: some([['http', 80, 'TCP'], ['http', 8080, 'TCP'], ['dns', 53, 'UDP'], ['dns', 53, 'TCP'], ['metrics', 81, 'TCP'], [undefined, 80, 'UDP']] as const, 3)
              .filter((v, k, all) => all.findIndex((o) => o[0] === v[0] && v[0] !== undefined) === k || v[0] === undefined)
              .map(([name, containerPort, protocol]) => (name ? { name, containerPort, protocol } : { containerPort, protocol }))
          }],
        },
        status: { podIPs },
      }
    })
    // np1's name is as long as the API server allows (253): nft refuses comments over 128 bytes.
    const policies = Array.from({ length: int(5) }, (_, i) => policy(nsNames, i === 1 ? `np1-${'long.'.repeat(49)}name` : `np${i}`))
    return { json: { namespaces, pods, policies }, ips: [...ips, '8.8.8.8', '10.244.9.9', '2001:db8::1'] }
  }
  return { world, policy, labels, pick, int, chance }
}
