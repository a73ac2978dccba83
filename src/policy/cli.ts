// `flatnet policy explain` and `flatnet policy matrix`: the compiled model read
// back for people, from manifests on disk, so a policy can be checked before it
// is applied and a verdict traced to the policies behind it.
import { compile } from './compile.js'
import { evaluate, type Verdict } from './evaluate.js'
import { loadManifests, type Manifests } from './manifests.js'
import type { Pod, Protocol } from './objects.js'

export function parsePortArg (text: string): { port: number, protocol: Protocol } | string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(text)
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) return `--port ${text}: give PORT/PROTO, e.g. 80/tcp`
  return { port: Number(m[1]), protocol: (m[2] ?? 'tcp').toUpperCase() as Protocol }
}

const key = (p: Pod): string => `${p.namespace}/${p.name}`

/** The manifests, each object skipped for an error said on stderr: the rest still counts. */
export function load (dir: string): Manifests {
  const m = loadManifests(dir)
  for (const e of m.errors) process.stderr.write(`flatnet: skipped ${e}\n`)
  return m
}

/** Rows: from, columns: to, "." allowed, "X" denied: upstream TruthTable.PrettyPrint's layout. */
export function matrix (m: Manifests, port: number, protocol: Protocol): string {
  const model = compile(m.namespaces, m.pods, m.policies)
  const pods = m.pods.filter((p) => !p.hostNetwork && p.ips.length > 0).sort((a, b) => key(a).localeCompare(key(b)))
  const lines = [`-\t${pods.map(key).join('\t')}`]
  for (const from of pods) {
    const cells = pods.map((to) => {
      const ip = to.ips.find((i) => i.includes(':') === from.ips[0].includes(':')) ?? to.ips[0]
      return evaluate(model, { fromIP: from.ips[0], toIP: ip, protocol, port }).allowed ? '.' : 'X'
    })
    lines.push(`${key(from)}\t${cells.join('\t')}`)
  }
  return `${lines.join('\n')}\n`
}

export function explain (m: Manifests, from: string, to: string, port: number, protocol: Protocol): { text: string, verdict: Verdict } {
  const find = (name: string): Pod => {
    const p = m.pods.find((x) => key(x) === name)
    if (!p) throw new Error(`no pod ${name} (pods: ${m.pods.map(key).join(', ') || 'none'})`)
    if (p.ips.length === 0) throw new Error(`pod ${name} has no status.podIPs: explain needs its address`)
    return p
  }
  const src = find(from)
  const dst = find(to)
  const model = compile(m.namespaces, m.pods, m.policies)
  const v = evaluate(model, { fromIP: src.ips[0], toIP: dst.ips[0], protocol, port })
  const side = (name: string, isolated: boolean, by: string[], isolating: string[]): string => !isolated
    ? `${name}: not isolated (no policy selects it for this direction): allowed`
    : `${name}: isolated by ${isolating.join(', ')}; ${by.length > 0 ? `allowed by ${by.join(', ')}` : 'no rule allows it: denied'}`
  const text = [
    `${from} (${src.ips[0]}) -> ${to} (${dst.ips[0]}) ${port}/${protocol}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`,
    `  ${side(`egress of ${from}`, v.egress.isolated, v.egress.allowedBy, model.byIP.get(src.ips[0])?.egress.policies ?? [])}`,
    `  ${side(`ingress of ${to}`, v.ingress.isolated, v.ingress.allowedBy, model.byIP.get(dst.ips[0])?.ingress.policies ?? [])}`,
  ].join('\n')
  return { text: `${text}\n`, verdict: v }
}
