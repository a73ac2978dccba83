// The Kubernetes manifests in deploy/: parsed, cross-checked with each other and
// with the daemon's config parser, so a broken manifest fails here, not on a node.
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { ConfigError, parseConfig } from '../../src/config.js'
import { uninstallTargets } from '../../src/uninstall/targets.js'

type Obj = Record<string, any>

const deployDir = fileURLToPath(new URL('../../deploy/', import.meta.url))
const NAMESPACE = 'kube-flatnet'
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding'])
const NAMESPACED = new Set(['ServiceAccount', 'ConfigMap', 'DaemonSet'])
const version = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version

function yamlFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return yamlFiles(path)
    return /\.ya?ml$/.test(e.name) ? [relative(deployDir, path)] : []
  })
}

// deploy/uninstall/ is applied on its own, after the DaemonSet is deleted: checked at the end.
const UNINSTALL = 'uninstall/'
const files = yamlFiles(deployDir).filter((f) => !f.startsWith(UNINSTALL)).sort()
const parse = (file: string): Array<{ file: string, doc: Obj }> =>
  parseAllDocuments(readFileSync(join(deployDir, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`)
    return { file, doc: d.toJS() as Obj }
  }).filter(({ doc }) => doc !== null)
const docs = files.flatMap(parse)
const objects = docs.filter(({ doc }) => doc.kind !== 'Kustomization')

function one (kind: string): Obj {
  const found = objects.filter(({ doc }) => doc.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind} in deploy/, found ${found.length}`)
  return found[0].doc
}

t.test('kustomization lists exactly the resource files present', async (t) => {
  const kustomizations = docs.filter(({ doc }) => doc.kind === 'Kustomization')
  t.equal(kustomizations.length, 1, 'one kustomization')
  t.equal(kustomizations[0].file, 'kustomization.yaml')
  const listed = [...(kustomizations[0].doc.resources as string[])].sort()
  t.same(listed, files.filter((f) => f !== 'kustomization.yaml'))
  t.equal(new Set(listed).size, listed.length, 'no resource listed twice')
})

t.test('every object has apiVersion, kind, a name and the right namespace', async (t) => {
  t.ok(objects.length > 0, 'found objects')
  for (const { file, doc } of objects) {
    const at = `${file} ${String(doc.kind)}/${String(doc.metadata?.name)}`
    t.type(doc.apiVersion, 'string', `${at}: apiVersion`)
    t.ok(CLUSTER_SCOPED.has(doc.kind) || NAMESPACED.has(doc.kind), `${at}: known kind`)
    t.match(doc.metadata?.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `${at}: metadata.name`)
    if (NAMESPACED.has(doc.kind)) t.equal(doc.metadata.namespace, NAMESPACE, `${at}: namespace`)
    if (CLUSTER_SCOPED.has(doc.kind)) t.equal(doc.metadata.namespace, undefined, `${at}: cluster-scoped, no namespace`)
  }
  t.equal(one('Namespace').metadata.name, NAMESPACE)
})

const daemonSet = one('DaemonSet')
const pod = daemonSet.spec.template.spec
const container = pod.containers.find((c: Obj) => c.name === 'flatnet') as Obj
const args = container.args as string[]
const env = new Map<string, Obj>((container.env as Obj[]).map((e) => [e.name, e]))

t.test('DaemonSet runs on the host network, on every node, first', async (t) => {
  t.equal(pod.hostNetwork, true)
  t.equal(pod.priorityClassName, 'system-node-critical')
  t.ok(pod.tolerations.some((x: Obj) => x.operator === 'Exists' && x.key === undefined && x.effect === undefined),
    'tolerates every taint')
  t.equal(daemonSet.spec.updateStrategy.type, 'RollingUpdate')
  // The new pod beside the old, which hands its data plane over (src/handover.ts).
  t.same(daemonSet.spec.updateStrategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 }, 'updates surge: the old pod hands over to the new')
  t.ok((container.volumeMounts as Obj[]).some((m) => m.mountPath === '/run/flatnet') &&
    (pod.volumes as Obj[]).some((v) => v.name === 'run' && v.hostPath?.path === '/run/flatnet'),
  'the control socket directory, where the successor meets the running daemon, is on the host')
  t.notOk((container.ports ?? []).some((p: Obj) => p.hostPort !== undefined || pod.hostNetwork), 'no port: a surge pod fits beside the old one')
  t.same(daemonSet.spec.selector.matchLabels,
    Object.fromEntries(Object.keys(daemonSet.spec.selector.matchLabels).map((k) => [k, daemonSet.spec.template.metadata.labels[k]])),
    'selector matches the pod labels')
  t.equal(pod.serviceAccountName, one('ServiceAccount').metadata.name)
  t.match(container.image, /^flatnet(:|$)/, 'image named flatnet, so `kustomize edit set image flatnet=...` applies')
})

// Least privilege: what the daemon uses and nothing more (the container tests run the image
// with exactly these, a read-only root included).
t.test('DaemonSet gets NET_ADMIN and BPF, not privileged, a read-only root', async (t) => {
  const sc = container.securityContext
  t.equal(sc.privileged, false)
  t.not(pod.securityContext?.privileged, true)
  t.same(sc.capabilities.add, ['NET_ADMIN', 'BPF'], 'NET_ADMIN; BPF: workers auto runs per-cpu; no NET_RAW (only UDP and TUN are opened)')
  t.same(sc.capabilities.drop, ['ALL'], 'nothing else')
  t.equal(sc.readOnlyRootFilesystem, true, 'read-only root filesystem')
  for (const c of [...pod.initContainers, container] as Obj[]) {
    t.equal(c.securityContext.readOnlyRootFilesystem, true, `${String(c.name)}: read-only root filesystem`)
    t.equal(c.securityContext.allowPrivilegeEscalation, false, `${String(c.name)}: no privilege escalation`)
    t.equal(c.image, `flatnet:${version}`, `${String(c.name)}: the image of this version, not a moving tag`)
    t.equal(c.imagePullPolicy, 'IfNotPresent', `${String(c.name)}: pulled once`)
  }
})

t.test('DaemonSet mounts /dev/net/tun, the config and the host directories', async (t) => {
  const volumes = new Map<string, Obj>((pod.volumes as Obj[]).map((v) => [v.name, v]))
  const mounts = new Map<string, Obj>((container.volumeMounts as Obj[]).map((m) => [m.mountPath, m]))
  const hostPath = (mountPath: string): Obj | undefined => volumes.get(mounts.get(mountPath)?.name)?.hostPath
  t.same(hostPath('/dev/net/tun'), { path: '/dev/net/tun', type: 'CharDevice' })
  t.equal(hostPath('/etc/cni/net.d')?.path, '/etc/cni/net.d')
  t.equal(hostPath('/run/flatnet')?.path, '/run/flatnet')
  t.equal(hostPath('/var/lib/flatnet')?.path, '/var/lib/flatnet', 'the peer table survives a pod restart')
  const config = volumes.get(mounts.get('/etc/flatnet')?.name)
  t.equal(config?.configMap?.name, 'flatnet-config')
  t.ok(args.includes('--config=/etc/flatnet/config.json'), 'daemon reads the mounted config.json')
})

// A declared containerPort in a hostNetwork pod is a host port (kubernetes#106417): two
// pods of the DaemonSet could then not share a node, which a surge update needs.
t.test('no declared ports; the probes reach the daemon\'s health port on 127.0.0.1, Prometheus its metrics port', async (t) => {
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])] as Obj[]) t.notOk(c.ports, `${String(c.name)}: no ports`)
  // The daemon binds the probes to 127.0.0.1 only: a probe at the node's address would fail.
  t.same(container.livenessProbe.httpGet, { host: '127.0.0.1', path: '/healthz', port: 9472 })
  t.same(container.readinessProbe.httpGet, { host: '127.0.0.1', path: '/readyz', port: 9472 })
  const defaults = parseConfig({ nodeName: 'n', clusterCIDR: '10.244.0.0/16', podCIDR: '10.244.1.0/24', underlay: { address: '192.0.2.1' } })
  t.equal(defaults.healthPort, 9472, 'the daemon\'s default healthPort')
  t.equal(defaults.metricsPort, 9473, 'the daemon\'s default metricsPort')
  const annotations = (daemonSet.spec.template.metadata.annotations ?? {}) as Record<string, string>
  t.equal(annotations['prometheus.io/port'], String(defaults.metricsPort), 'the scrape annotation names the metrics port')
})

t.test('an init container installs the CNI plugins the node lacks; the daemon checks them', async (t) => {
  const init = (pod.initContainers as Obj[]).find((c) => c.name === 'install-cni-plugins')
  t.same(init?.args, ['install-cni-plugins', '--from=/usr/lib/cni', '--to=/host/opt/cni/bin'])
  t.same(init?.securityContext?.capabilities, { drop: ['ALL'] }, 'no capability')
  const volumes = new Map<string, Obj>((pod.volumes as Obj[]).map((v) => [v.name, v]))
  const hostPathOf = (c: Obj, mountPath: string): string | undefined =>
    volumes.get((c.volumeMounts as Obj[]).find((m) => m.mountPath === mountPath)?.name)?.hostPath?.path
  t.equal(hostPathOf(init as Obj, '/host/opt/cni/bin'), '/opt/cni/bin', 'into the host\'s /opt/cni/bin')
  t.equal(hostPathOf(container, '/opt/cni/bin'), '/opt/cni/bin', 'which the daemon sees at its configured cni.binDir')
})

t.test('the namespace allows hostNetwork and hostPath (Pod Security: privileged)', async (t) => {
  t.equal(one('Namespace').metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged')
})

t.test('resources: requests and a memory limit', async (t) => {
  t.equal(container.resources.requests.cpu, '100m')
  t.equal(container.resources.requests.memory, '64Mi')
  t.type(container.resources.limits?.memory, 'string')
})

t.test('node identity comes from the downward API through flags', async (t) => {
  t.same(env.get('NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } })
  t.same(env.get('HOST_IP')?.valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } })
  t.ok(args.includes('--node-name=$(NODE_NAME)'))
  t.ok(args.includes('--underlay-address=$(HOST_IP)'))
  for (const a of args) {
    for (const [, name] of a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) t.ok(env.has(name), `${a}: $(${name}) is defined`)
  }
})

// What each per-node flag would carry on a node; documentation addresses.
const SAMPLE: Record<string, string> = {
  '--node-name': 'node-a',
  '--underlay-address': '192.0.2.10',
  '--pod-cidr': '10.244.3.0/24',
  '--pod-cidr-from-node': '10.244.3.0/24',
}

t.test('config.json parses once the DaemonSet fills its placeholders', async (t) => {
  const text = one('ConfigMap').data['config.json'] as string
  t.ok(one('ConfigMap').metadata.name === 'flatnet-config')
  const flags = new Set(args.map((a) => a.split('=')[0]))
  const placeholders = [...text.matchAll(/"set by (--[a-z-]+)"/g)].map((m) => m[1])
  t.ok(placeholders.length >= 3, 'nodeName, podCIDR and underlay.address are per node')
  const fill = (skip?: string): Record<string, unknown> => JSON.parse(placeholders.reduce((out, flag) =>
    flag === skip ? out : out.replaceAll(`"set by ${flag}"`, JSON.stringify(SAMPLE[flag])), text))
  for (const flag of placeholders) {
    t.ok(flags.has(flag), `the DaemonSet passes ${flag}`)
    t.ok(SAMPLE[flag], `a sample value for ${flag}`)
    const err = t.throws(() => parseConfig(fill(flag)), `without ${flag} the daemon stops`)
    t.ok(err instanceof ConfigError && err.message.includes(`"set by ${flag}"`), `and the error names ${flag}`)
  }
  const config = parseConfig(fill())
  t.equal(config.nodeName, 'node-a')
  t.equal(config.podCIDRs.length, 1)
  t.equal(config.underlay.port, 8472)
  t.ok(config.sources.kubernetes, 'peers from the Node objects (kubernetes source)')
  t.equal(config.ipMasq, true, 'NAT outgoing on')
  t.same(config.networkPolicy, {}, 'NetworkPolicy enforced, from the API server')
  // The daemon's CNI files land in the host directories the DaemonSet mounts.
  const mounts = (container.volumeMounts as Obj[]).map((m) => m.mountPath as string)
  t.ok(mounts.includes(config.cni?.confDir as string), `conflist dir ${String(config.cni?.confDir)} is mounted from the host`)
  t.ok(mounts.some((m) => config.cni?.subnetFile.startsWith(`${m}/`)), `subnet file ${String(config.cni?.subnetFile)} is on a host mount`)
  const stateFile = config.sources.stateFile as string
  t.ok(mounts.some((m) => stateFile.startsWith(`${m}/`)), `state file ${stateFile} is on a host mount`)
})

t.test('ClusterRole lets the daemon watch nodes, bound to its ServiceAccount', async (t) => {
  const role = one('ClusterRole')
  const grants = (resource: string, verb: string): boolean => (role.rules as Obj[]).some((r) =>
    r.apiGroups.includes('') && r.resources.includes(resource) && r.verbs.includes(verb))
  for (const verb of ['get', 'list', 'watch']) t.ok(grants('nodes', verb), `nodes ${verb}`)
  t.ok(grants('nodes/status', 'patch'), 'nodes/status patch: the VTEP annotations and NetworkUnavailable')
  for (const verb of ['patch', 'update', 'create', 'delete', '*']) t.notOk(grants('nodes', verb), `no nodes ${verb}: another node's labels, taints and addresses are not this daemon's to write`)
  for (const resource of ['namespaces', 'pods']) for (const verb of ['list', 'watch']) t.ok(grants(resource, verb), `${resource} ${verb} (NetworkPolicy)`)
  t.ok((role.rules as Obj[]).some((r) => r.apiGroups.includes('networking.k8s.io') && r.resources.includes('networkpolicies') &&
    r.verbs.includes('list') && r.verbs.includes('watch')), 'networkpolicies list, watch')
  const binding = one('ClusterRoleBinding')
  t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name })
  t.ok(binding.subjects.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === one('ServiceAccount').metadata.name &&
    s.namespace === NAMESPACE), 'bound to the flatnet ServiceAccount')
})

t.test('deploy/uninstall: flatnet uninstall once on every node, with the daemon\'s config and host directories', async (t) => {
  const uninstallDocs = yamlFiles(deployDir).filter((f) => f.startsWith(UNINSTALL)).sort().flatMap(parse)
  const kustomization = uninstallDocs.filter(({ doc }) => doc.kind === 'Kustomization')
  t.equal(kustomization.length, 1, 'one kustomization')
  const resources = uninstallDocs.filter(({ doc }) => doc.kind !== 'Kustomization')
  t.same([...kustomization[0].doc.resources as string[]].sort(), resources.map(({ file }) => file.slice(UNINSTALL.length)), 'listing exactly its files')
  t.same(resources.map(({ doc }) => doc.kind), ['DaemonSet'], 'a DaemonSet alone: it uses deploy/\'s namespace and ConfigMap')
  const ds = resources[0].doc
  t.equal(ds.metadata.namespace, NAMESPACE)
  const name = 'app.kubernetes.io/name'
  t.not(ds.spec.selector.matchLabels[name], daemonSet.spec.selector.matchLabels[name], 'its pods are not the flatnet DaemonSet\'s')
  t.equal(ds.spec.template.metadata.labels[name], ds.spec.selector.matchLabels[name], 'selector matches the pod labels')
  const spec = ds.spec.template.spec
  t.equal(spec.hostNetwork, true, 'the node\'s links and tables')
  t.ok(spec.tolerations.some((x: Obj) => x.operator === 'Exists' && x.key === undefined), 'every node, whatever its taints')
  const [init] = spec.initContainers as Obj[]
  const [sleeper] = spec.containers as Obj[]
  t.same(init.args, ['uninstall', '--config=/etc/flatnet/config.json', '--node-name=$(NODE_NAME)'], 'the init container runs uninstall with the daemon\'s config')
  t.same(init.env.find((e: Obj) => e.name === 'NODE_NAME')?.valueFrom, env.get('NODE_NAME')?.valueFrom, 'the node name as the daemon gets it')
  t.same(sleeper.command, ['sleep', 'infinity'], 'then the pod only sleeps: the DaemonSet does not run uninstall again')
  for (const c of [init, sleeper]) {
    t.equal(c.image, container.image, `${String(c.name)}: the daemon's image`)
    t.equal(c.imagePullPolicy, 'IfNotPresent')
    t.equal(c.securityContext.privileged, false, `${String(c.name)}: not privileged`)
    t.equal(c.securityContext.allowPrivilegeEscalation, false)
    t.equal(c.securityContext.readOnlyRootFilesystem, true)
    t.same(c.securityContext.capabilities.drop, ['ALL'])
  }
  t.same(init.securityContext.capabilities.add, ['NET_ADMIN'], 'uninstall: NET_ADMIN alone (links, routes, nftables)')
  t.equal(sleeper.securityContext.capabilities.add, undefined, 'the sleeper: no capability')
  // The same host directories at the same paths as the daemon's container, writable: the same config names the same files.
  const volumesOf = (p: Obj): Map<string, Obj> => new Map((p.volumes as Obj[]).map((v) => [v.name, v]))
  const hostMounts = (c: Obj, p: Obj): Map<string, Obj> => new Map((c.volumeMounts as Obj[]).flatMap((m) => {
    const v = volumesOf(p).get(m.name)
    return v ? [[m.mountPath as string, { ...v, readOnly: m.readOnly === true }]] : []
  }))
  const ours = hostMounts(init, spec)
  for (const [path, v] of hostMounts(container, pod)) {
    if (path === '/dev/net/tun') continue
    if (v.configMap) { t.same(ours.get(path)?.configMap, v.configMap, `${path}: the daemon's ConfigMap`); continue }
    t.equal(ours.get(path)?.hostPath?.path, v.hostPath.path, `${path}: the host's ${String(v.hostPath.path)}`)
    t.equal(ours.get(path)?.readOnly, false, `${path}: writable`)
  }
  // What uninstall reads from the ConfigMap's config.json lies on those mounts.
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-deploy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'config.json')
  writeFileSync(file, one('ConfigMap').data['config.json'] as string)
  const targets = uninstallTargets(file, SAMPLE['--node-name'])
  const on = (p: string): boolean => [...ours.keys()].some((m) => p.startsWith(`${m}/`))
  const paths = [targets.cni?.confDir + '/x', targets.cni?.subnetFile, targets.cni?.binDir + '/x', targets.cni?.socket,
    'socket' in targets.control ? targets.control.socket : '', targets.state && 'file' in targets.state ? targets.state.file : '']
  for (const p of paths) t.ok(on(String(p)), `${String(p)} is on a host mount`)
  t.same(uninstallTargets(file).control, { dir: '/run/flatnet' }, 'without --node-name: every daemon socket under /run/flatnet is probed')
})
