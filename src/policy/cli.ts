// `flatnet policy explain` and `flatnet policy matrix`: the compiled model read
// back for people, from manifests (files, stdin) or a running daemon's objects, so a
// policy can be checked before it is applied and a verdict traced to the policies behind it.
import { compile, namedPort } from './compile.js'
import { evaluate, type Verdict } from './evaluate.js'
import { loadManifests, type Manifests } from './manifests.js'
import { isPortName, type Pod, type Protocol } from './objects.js'

/** --port: a number or, as a NetworkPolicyPort may give it, a container port's name; the protocol defaults to TCP as there. */
export function parsePortArg (text: string): { port: number | string, protocol: Protocol } | string {
  const m = /^([^/]+)(?:\/(tcp|udp|sctp))?$/i.exec(text)
  const port = m && /^\d{1,5}$/.test(m[1]) ? Number(m[1]) : m?.[1]
  if (!m || port === undefined || (typeof port === 'number' ? port < 1 || port > 65535 : !isPortName(port))) {
    return `--port ${text}: give PORT/PROTO or NAME/PROTO (a container port's name), e.g. 80/tcp or http`
  }
  return { port, protocol: (m[2] ?? 'tcp').toUpperCase() as Protocol }
}

/**
 * The port number a connection to dest uses: a name resolves, as for a policy's named
 * port, on dest's container ports of that name and protocol (compile.ts namedPort).
 * Undefined: dest has no such port.
 */
export function portOn (dest: Pod, port: number | string, protocol: Protocol): number | undefined {
  if (typeof port === 'number') return port
  return namedPort({ protocol, port }, dest)[0]?.ports?.from
}

const key = (p: Pod): string => `${p.namespace}/${p.name}`

/** The manifests (a directory, a file, or - for stdin), each object skipped for an error said on stderr: the rest still counts. */
export function load (path: string): Manifests {
  const m = loadManifests(path)
  for (const e of m.errors) process.stderr.write(`flatnet: skipped ${e}\n`)
  return m
}

/**
 * Rows: from, columns: to, "." allowed, "X" denied: upstream TruthTable.PrettyPrint's layout.
 * "-": the destination has no container port of that name (a named port only).
 */
export function matrix (m: Manifests, port: number | string, protocol: Protocol): string {
  const model = compile(m.namespaces, m.pods, m.policies)
  const pods = m.pods.filter((p) => !p.hostNetwork && p.ips.length > 0).sort((a, b) => key(a).localeCompare(key(b)))
  const lines = [`-\t${pods.map(key).join('\t')}`]
  for (const from of pods) {
    const cells = pods.map((to) => {
      const number = portOn(to, port, protocol)
      if (number === undefined) return '-'
      const ip = to.ips.find((i) => i.includes(':') === from.ips[0].includes(':')) ?? to.ips[0]
      return evaluate(model, { fromIP: from.ips[0], toIP: ip, protocol, port: number }).allowed ? '.' : 'X'
    })
    lines.push(`${key(from)}\t${cells.join('\t')}`)
  }
  return `${lines.join('\n')}\n`
}

export function explain (m: Manifests, from: string, to: string, port: number | string, protocol: Protocol): { text: string, verdict: Verdict } {
  const find = (name: string): Pod => {
    const p = m.pods.find((x) => key(x) === name)
    if (!p) throw new Error(`no pod ${name} (pods: ${m.pods.map(key).join(', ') || 'none'})`)
    if (p.ips.length === 0) throw new Error(`pod ${name} has no status.podIPs: explain needs its address`)
    return p
  }
  const src = find(from)
  const dst = find(to)
  const number = portOn(dst, port, protocol)
  if (number === undefined) {
    const named = dst.ports.map((p) => `${p.name ?? ''} ${p.containerPort}/${p.protocol}`).join(', ') || 'none'
    throw new Error(`pod ${to} has no ${protocol} container port named ${port} (its named ports: ${named}); give its number or another name`)
  }
  const model = compile(m.namespaces, m.pods, m.policies)
  const v = evaluate(model, { fromIP: src.ips[0], toIP: dst.ips[0], protocol, port: number })
  const side = (name: string, isolated: boolean, by: string[], isolating: string[]): string => !isolated
    ? `${name}: not isolated (no policy selects it for this direction): allowed`
    : `${name}: isolated by ${isolating.join(', ')}; ${by.length > 0 ? `allowed by ${by.join(', ')}` : 'no rule allows it: denied'}`
  const text = [
    `${from} (${src.ips[0]}) -> ${to} (${dst.ips[0]}) ${number}/${protocol}${number === port ? '' : ` (${port})`}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`,
    `  ${side(`egress of ${from}`, v.egress.isolated, v.egress.allowedBy, model.byIP.get(src.ips[0])?.egress.policies ?? [])}`,
    `  ${side(`ingress of ${to}`, v.ingress.isolated, v.ingress.allowedBy, model.byIP.get(dst.ips[0])?.ingress.policies ?? [])}`,
  ].join('\n')
  return { text: `${text}\n`, verdict: v }
}
