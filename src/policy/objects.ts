// The part of the Kubernetes API that NetworkPolicy enforcement reads: Namespaces,
// Pods and networking.k8s.io/v1 NetworkPolicies, and a validator that turns untrusted
// JSON (from the API server, or from manifests on disk) into these types. The checks
// follow the API server's (pkg/apis/networking/validation/validation.go,
// ValidateNetworkPolicySpec) so that a policy accepted here is one a cluster accepts.
import { canonicalIP, formatBlockCidr, inCidr, parseBlockCidr } from './addresses.js'
import { internString, shareValue } from '../kube/intern.js'

export type Protocol = 'TCP' | 'UDP' | 'SCTP'
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP']
export type PolicyType = 'Ingress' | 'Egress'
export type Labels = Record<string, string>

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'
export interface SelectorRequirement { key: string, operator: SelectorOperator, values: string[] }
/** metav1.LabelSelector. Both lists empty: selects everything. */
export interface LabelSelector { matchLabels: Labels, matchExpressions: SelectorRequirement[] }

export interface Namespace { name: string, labels: Labels }

export interface ContainerPort { name?: string, containerPort: number, protocol: Protocol }

export interface Pod {
  namespace: string
  name: string
  labels: Labels
  nodeName?: string
  /** Host-network pods share the node's addresses: they have no IP of their own to isolate. */
  hostNetwork: boolean
  /** status.podIPs, canonical text; empty until the pod has been given addresses. */
  ips: string[]
  /** The containers' named ports, for resolving named ports (an unnamed one can never be named by a policy). */
  ports: ContainerPort[]
  /** Succeeded or Failed: its containers are gone and its IP may already be another pod's (Calico's IsFinished). */
  finished: boolean
}

/** ipBlock; cidr and except are canonical (host bits dropped). */
export interface IPBlock { cidr: string, except: string[] }

/**
 * NetworkPolicyPeer. podSelector and namespaceSelector together select pods matching
 * both (AND); namespaceSelector absent means the policy's own namespace; podSelector
 * absent with a namespaceSelector means every pod of those namespaces.
 */
export interface Peer { podSelector?: LabelSelector, namespaceSelector?: LabelSelector, ipBlock?: IPBlock }

/** NetworkPolicyPort. port absent: every port of the protocol; endPort: port..endPort inclusive. */
export interface PolicyPort { protocol: Protocol, port?: number | string, endPort?: number }

/** One ingress or egress rule: peers empty allows every peer, ports empty every port. */
export interface PolicyRule { peers: Peer[], ports: PolicyPort[] }

export interface NetworkPolicy {
  namespace: string
  name: string
  podSelector: LabelSelector
  /** As the API server defaults it: Ingress always, plus Egress when there are egress rules. */
  policyTypes: readonly PolicyType[]
  ingress: readonly PolicyRule[]
  egress: readonly PolicyRule[]
}

/** A rejected object: names the object and the field, e.g. "NetworkPolicy y/deny-all: spec.ingress[0].ports[1].endPort: 79 is below port 80". */
export class PolicyObjectError extends Error {
  constructor (readonly object: string, readonly field: string, readonly problem: string) {
    super(`${object}: ${field}: ${problem}`)
    this.name = 'PolicyObjectError'
  }
}

type Json = Record<string, unknown>

class Checker {
  constructor (readonly object: string) {}
  fail (field: string, problem: string): never { throw new PolicyObjectError(this.object, field, problem) }
  obj (v: unknown, field: string): Json {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, `${show(v)} must be an object`)
    return v as Json
  }

  optObj (v: unknown, field: string): Json | undefined { return v === undefined || v === null ? undefined : this.obj(v, field) }
  list (v: unknown, field: string): unknown[] {
    if (v === undefined || v === null) return []
    if (!Array.isArray(v)) this.fail(field, `${show(v)} must be a list`)
    return v
  }

  str (v: unknown, field: string): string {
    if (typeof v !== 'string') this.fail(field, `${show(v)} must be a string`)
    return v
  }

  name (v: unknown, field: string): string {
    const s = this.str(v, field)
    if (s === '') this.fail(field, 'must not be empty')
    return s
  }

  labels (v: unknown, field: string): Labels {
    const o = this.optObj(v, field) ?? {}
    const out: Labels = {}
    for (const [k, val] of Object.entries(o)) out[k] = this.str(val, `${field}.${k}`)
    return out
  }

  port (v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) this.fail(field, `${show(v)} must be a port number, 1-65535`)
    return v
  }

  protocol (v: unknown, field: string): Protocol {
    // The API server defaults a missing protocol to TCP (SetDefaults_NetworkPolicy / SetDefaults_ContainerPort).
    if (v === undefined || v === null) return 'TCP'
    if (!PROTOCOLS.includes(v as Protocol)) this.fail(field, `${show(v)} must be one of TCP, UDP, SCTP`)
    return v as Protocol
  }
}

function show (v: unknown): string {
  return v === undefined ? 'missing value' : JSON.stringify(v)
}

/** IANA_SVC_NAME (validation.IsValidPortName): 1-15 lowercase letters, digits, '-'; a letter; no '--', no '-' at an end. */
export function isPortName (s: string): boolean {
  return s.length >= 1 && s.length <= 15 && /^[a-z0-9-]+$/.test(s) && /[a-z]/.test(s) &&
    !s.includes('--') && !s.startsWith('-') && !s.endsWith('-')
}

// apimachinery's IsDNS1123Label and IsDNS1123Subdomain, as the API server validates names.
const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?'
const DNS_LABEL = new RegExp(`^${LABEL}$`)
const DNS_SUBDOMAIN = new RegExp(`^${LABEL}(\\.${LABEL})*$`)

// Names reach logs and the nft table's comments: one the API server would refuse (a quote,
// a newline) is refused here too, whether it came from the API server or a manifest file.
function dnsName (c: Checker, v: unknown, field: string, label: boolean): string {
  const s = c.name(v, field)
  if (label ? s.length > 63 || !DNS_LABEL.test(s) : s.length > 253 || !DNS_SUBDOMAIN.test(s)) {
    c.fail(field, `${show(s)} is not a valid name (DNS-1123 ${label ? 'label: at most 63 of a-z, 0-9, \'-\'' : 'subdomain: at most 253 of a-z, 0-9, \'-\', \'.\''}, alphanumeric at each end)`)
  }
  return s
}

/** metadata of a Namespace (a DNS-1123 label) or of a Pod or NetworkPolicy (a subdomain, in a namespace). */
function meta (c: Checker, j: Json, namespaced: boolean): { name: string, namespace: string, labels: Labels } {
  const m = c.obj(j.metadata, 'metadata')
  return {
    name: dnsName(c, m.name, 'metadata.name', !namespaced),
    namespace: namespaced ? dnsName(c, m.namespace, 'metadata.namespace', true) : '',
    labels: c.labels(m.labels, 'metadata.labels'),
  }
}

function ref (kind: string, j: unknown, namespaced: boolean): string {
  const m = (j as { metadata?: { name?: unknown, namespace?: unknown } } | null)?.metadata
  const name = typeof m?.name === 'string' ? m.name : '?'
  const ns = typeof m?.namespace === 'string' ? m.namespace : '?'
  return namespaced ? `${kind} ${ns}/${name}` : `${kind} ${name}`
}

export function parseNamespace (j: unknown): Namespace {
  const c = new Checker(ref('Namespace', j, false))
  const m = meta(c, c.obj(j, '(object)'), false)
  // The API server sets kubernetes.io/metadata.name to the name on every namespace
  // (NamespaceDefaultLabelName, GA in 1.22), so selectors may rely on it.
  return { name: m.name, labels: { ...m.labels, 'kubernetes.io/metadata.name': m.name } }
}

export function parsePod (j: unknown): Pod {
  const c = new Checker(ref('Pod', j, true))
  const o = c.obj(j, '(object)')
  const m = meta(c, o, true)
  const spec = c.optObj(o.spec, 'spec') ?? {}
  const status = c.optObj(o.status, 'status') ?? {}
  const ports: ContainerPort[] = []
  c.list(spec.containers, 'spec.containers').forEach((ct, i) => {
    const cf = `spec.containers[${i}]`
    c.list(c.obj(ct, cf).ports, `${cf}.ports`).forEach((p, k) => {
      const pf = `${cf}.ports[${k}]`
      const po = c.obj(p, pf)
      const port: ContainerPort = { containerPort: c.port(po.containerPort, `${pf}.containerPort`), protocol: c.protocol(po.protocol, `${pf}.protocol`) }
      if (po.name !== undefined && po.name !== null) {
        const name = c.str(po.name, `${pf}.name`)
        if (!isPortName(name)) c.fail(`${pf}.name`, `${show(name)} is not a valid port name (IANA_SVC_NAME: 1-15 of a-z, 0-9, '-')`)
        port.name = name
        ports.push(port)
      }
    })
  })
  const ips: string[] = []
  const addIP = (v: unknown, field: string): void => {
    const s = c.str(v, field)
    const ip = canonicalIP(s)
    if (ip === undefined) return c.fail(field, `${show(s)} is not an IP address`)
    if (!ips.includes(ip)) ips.push(ip)
  }
  c.list(status.podIPs, 'status.podIPs').forEach((p, i) => addIP(c.obj(p, `status.podIPs[${i}]`).ip, `status.podIPs[${i}].ip`))
  if (ips.length === 0 && status.podIP !== undefined && status.podIP !== null && status.podIP !== '') addIP(status.podIP, 'status.podIP')
  if (spec.hostNetwork !== undefined && spec.hostNetwork !== null && typeof spec.hostNetwork !== 'boolean') c.fail('spec.hostNetwork', `${show(spec.hostNetwork)} must be true or false`)
  const phase = status.phase
  if (phase !== undefined && phase !== null && typeof phase !== 'string') c.fail('status.phase', `${show(phase)} must be a string`)
  const namespace = internString(m.namespace)
  const labels = shareValue(m.labels)
  const hostNetwork = spec.hostNetwork === true
  const held = ips.slice() // a right-sized copy: a list grown by push keeps spare room
  const named = shareValue(ports) as ContainerPort[]
  const finished = phase === 'Succeeded' || phase === 'Failed'
  if (spec.nodeName === undefined || spec.nodeName === null || spec.nodeName === '') {
    return { namespace, name: m.name, labels, hostNetwork, ips: held, ports: named, finished }
  }
  // One literal with every field: a field added after creation costs the object a property array.
  const nodeName = internString(c.str(spec.nodeName, 'spec.nodeName'))
  return { namespace, name: m.name, labels, nodeName, hostNetwork, ips: held, ports: named, finished }
}

function selector (c: Checker, v: unknown, field: string): LabelSelector {
  const o = c.obj(v, field)
  const matchLabels = c.labels(o.matchLabels, `${field}.matchLabels`)
  const matchExpressions = c.list(o.matchExpressions, `${field}.matchExpressions`).map((e, i) => {
    const ef = `${field}.matchExpressions[${i}]`
    const eo = c.obj(e, ef)
    const key = c.name(eo.key, `${ef}.key`)
    const operator = c.str(eo.operator, `${ef}.operator`)
    if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(operator)) c.fail(`${ef}.operator`, `${show(operator)} must be one of In, NotIn, Exists, DoesNotExist`)
    const values = c.list(eo.values, `${ef}.values`).map((x, k) => c.str(x, `${ef}.values[${k}]`))
    // metav1validation.ValidateLabelSelectorRequirement
    if ((operator === 'In' || operator === 'NotIn') && values.length === 0) c.fail(`${ef}.values`, `must be non-empty when operator is ${operator}`)
    if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) c.fail(`${ef}.values`, `must be empty when operator is ${operator}`)
    return { key, operator: operator as SelectorOperator, values }
  })
  return { matchLabels, matchExpressions }
}

function ipBlock (c: Checker, v: unknown, field: string): IPBlock {
  const o = c.obj(v, field)
  const cidrText = c.name(o.cidr, `${field}.cidr`)
  const cidr = parseBlockCidr(cidrText)
  if (typeof cidr === 'string') c.fail(`${field}.cidr`, `${show(cidrText)} ${cidr}`)
  const except = c.list(o.except, `${field}.except`).map((x, i) => {
    const xf = `${field}.except[${i}]`
    const text = c.str(x, xf)
    const e = parseBlockCidr(text)
    if (typeof e === 'string') c.fail(xf, `${show(text)} ${e}`)
    // ValidateIPBlock: each except must be a strict subset of cidr.
    if (e.family !== cidr.family || e.length <= cidr.length || !inCidr(cidr, e)) {
      c.fail(xf, `${show(text)} must be a strict subset of cidr ${formatBlockCidr(cidr)}`)
    }
    return formatBlockCidr(e)
  })
  return { cidr: formatBlockCidr(cidr), except }
}

function peer (c: Checker, v: unknown, field: string): Peer {
  const o = c.obj(v, field)
  const p: Peer = {}
  if (o.podSelector !== undefined && o.podSelector !== null) p.podSelector = selector(c, o.podSelector, `${field}.podSelector`)
  if (o.namespaceSelector !== undefined && o.namespaceSelector !== null) p.namespaceSelector = selector(c, o.namespaceSelector, `${field}.namespaceSelector`)
  if (o.ipBlock !== undefined && o.ipBlock !== null) p.ipBlock = ipBlock(c, o.ipBlock, `${field}.ipBlock`)
  // ValidateNetworkPolicyPeer: exactly one of the selectors (together) or ipBlock.
  if (p.ipBlock && (p.podSelector || p.namespaceSelector)) c.fail(field, 'ipBlock may not be combined with podSelector or namespaceSelector')
  if (!p.ipBlock && !p.podSelector && !p.namespaceSelector) c.fail(field, 'must specify podSelector, namespaceSelector or ipBlock')
  return p
}

function policyPort (c: Checker, v: unknown, field: string): PolicyPort {
  const o = c.obj(v, field)
  const pp: PolicyPort = { protocol: c.protocol(o.protocol, `${field}.protocol`) }
  if (o.port !== undefined && o.port !== null) {
    if (typeof o.port === 'string') {
      // IntOrString: a string of digits is still a name to the API (and invalid as one).
      if (!isPortName(o.port)) c.fail(`${field}.port`, `${show(o.port)} is not a valid port name (IANA_SVC_NAME: 1-15 of a-z, 0-9, '-')`)
      pp.port = o.port
    } else {
      pp.port = c.port(o.port, `${field}.port`)
    }
  }
  if (o.endPort !== undefined && o.endPort !== null) {
    // ValidateNetworkPolicyPort: endPort needs a numeric port, and endPort >= port.
    if (pp.port === undefined) c.fail(`${field}.endPort`, 'may not be set without port')
    if (typeof pp.port === 'string') c.fail(`${field}.endPort`, `may not be set when port is a named port (${show(pp.port)})`)
    const end = c.port(o.endPort, `${field}.endPort`)
    if (end < pp.port) c.fail(`${field}.endPort`, `${end} is below port ${pp.port}`)
    pp.endPort = end
  }
  return pp
}

function rules (c: Checker, v: unknown, field: string, peersKey: 'from' | 'to'): PolicyRule[] {
  return c.list(v, field).map((r, i) => {
    const rf = `${field}[${i}]`
    const ro = c.obj(r, rf)
    return {
      peers: c.list(ro[peersKey], `${rf}.${peersKey}`).map((p, k) => peer(c, p, `${rf}.${peersKey}[${k}]`)),
      ports: c.list(ro.ports, `${rf}.ports`).map((p, k) => policyPort(c, p, `${rf}.ports[${k}]`)),
    }
  })
}

const EVERY_POD: LabelSelector = Object.freeze({ matchLabels: {}, matchExpressions: [] })

// podSelector is a struct, not a pointer, in the Go type: absent reads as {} (every pod).
function policyPodSelector (c: Checker, spec: Json): LabelSelector {
  return spec.podSelector === undefined || spec.podSelector === null ? EVERY_POD : selector(c, spec.podSelector, 'spec.podSelector')
}

/**
 * What a NetworkPolicy refused without a last good version stands for: isolation, both
 * ways, of what it would select (its podSelector if that much is valid, else every pod of
 * its namespace), so that an object the daemon cannot read never allows more than the
 * policy could have. Undefined when not even its namespace and name are valid.
 */
export function isolatingStandIn (j: unknown): NetworkPolicy | undefined {
  const c = new Checker(ref('NetworkPolicy', j, true))
  try {
    const o = c.obj(j, '(object)')
    const m = meta(c, o, true)
    let podSelector: LabelSelector = EVERY_POD
    try {
      podSelector = policyPodSelector(c, (o.spec ?? {}) as Json)
    } catch {} // every pod of the namespace, then
    return { namespace: internString(m.namespace), name: m.name, podSelector, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }
  } catch {
    return undefined
  }
}

export function parseNetworkPolicy (j: unknown): NetworkPolicy {
  const c = new Checker(ref('NetworkPolicy', j, true))
  const o = c.obj(j, '(object)')
  const m = meta(c, o, true)
  const spec = c.obj(o.spec, 'spec')
  const podSelector = policyPodSelector(c, spec)
  const ingress = rules(c, spec.ingress, 'spec.ingress', 'from')
  const egress = rules(c, spec.egress, 'spec.egress', 'to')
  let policyTypes: PolicyType[]
  if (spec.policyTypes === undefined || spec.policyTypes === null || (Array.isArray(spec.policyTypes) && spec.policyTypes.length === 0)) {
    // SetDefaults_NetworkPolicySpec: Ingress always; Egress when egress rules are given.
    policyTypes = egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']
  } else {
    policyTypes = []
    c.list(spec.policyTypes, 'spec.policyTypes').forEach((t, i) => {
      const f = `spec.policyTypes[${i}]`
      if (t !== 'Ingress' && t !== 'Egress') return c.fail(f, `${show(t)} must be Ingress or Egress`)
      if (policyTypes.includes(t)) c.fail(f, `${show(t)} is given twice`)
      policyTypes.push(t)
    })
  }
  // Policies are stamped from templates (a default deny, "from the ingress namespace" in
  // every namespace): their specs' parts are kept once, as pods' label sets are.
  return {
    namespace: internString(m.namespace),
    name: m.name,
    podSelector: shareValue(podSelector),
    policyTypes: shareValue(policyTypes),
    ingress: shareValue(ingress),
    egress: shareValue(egress),
  }
}
