// Upstream's 3x3 model (namespaces x, y, z; pods a, b, c) as API objects, run
// through the same validators as real input, then compiled and probed pair by pair.
import { compile } from '../../src/policy/compile.js'
import { evaluate } from '../../src/policy/evaluate.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../../src/policy/objects.js'
import { Reachability, TruthTable } from './reachability.js'
import { NAMESPACES, nodeOf, PODS, podIP, SERVED, type Probe, type Step } from './upstream-cases.js'

export function namespaceObjects (extra: Step['namespaceLabels'] = {}): unknown[] {
  return NAMESPACES.map((ns) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ns, ...extra[ns] } } }))
}

export function podObjects (extra: Step['podLabels'] = {}): unknown[] {
  return PODS.map((key) => {
    const [ns, name] = key.split('/')
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: ns, name, labels: { pod: name, ...extra[key] } },
      spec: {
        nodeName: nodeOf(key),
        // model.go: one container per served port and protocol.
        containers: SERVED.map(({ port, protocol }) => ({
          name: `cont-${port}-${protocol.toLowerCase()}`,
          ports: [{ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol }],
        })),
      },
      status: { podIPs: [{ ip: podIP(key) }] },
    }
  })
}

/** The observed table of one probe: evaluate() for every ordered pair of the 9 pods. */
export function observe (step: Step, probe: Probe): TruthTable {
  const model = compile(namespaceObjects(step.namespaceLabels).map(parseNamespace), podObjects(step.podLabels).map(parsePod), step.policies.map(parseNetworkPolicy))
  const observed = new TruthTable(PODS, false)
  for (const from of PODS) {
    for (const to of PODS) {
      observed.set(from, to, evaluate(model, { fromIP: podIP(from), toIP: podIP(to), protocol: probe.protocol, port: probe.port }).allowed)
    }
  }
  return observed
}

export function expected (probe: Probe): TruthTable {
  const r = new Reachability(PODS, true)
  probe.expect(r)
  return r.expected
}
