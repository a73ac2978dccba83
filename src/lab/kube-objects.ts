// Kubernetes objects of real size and shape, as the kubelet, the controllers and kubectl
// leave them in a cluster (kubeadm on cloud VMs, containerd), for tests and benchmarks:
// what a daemon lists and watches is mostly managedFields, images and status it never
// reads, and its parser and memory must cope with that, not with a 300-byte stand-in.
// Deterministic: uids, hashes and times derive from the names. The fields a daemon
// reads (names, labels, nodeName, pod IPs, ports, phase, hostNetwork, podCIDRs,
// InternalIP, annotations, policy spec) are exactly as passed.
import { createHash } from 'node:crypto'
import type { KubeNode, KubeObject } from './kube-api.js'

const digest = (seed: string): Buffer => createHash('sha256').update(seed).digest()
const hex = (seed: string, chars: number): string => {
  let out = ''
  for (let i = 0; out.length < chars; i++) out += digest(`${seed}#${i}`).toString('hex')
  return out.slice(0, chars)
}
/** A version 4 UUID's shape, from the seed. */
const uid = (seed: string): string => {
  const h = hex(seed, 32)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[parseInt(h[16], 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`
}
const int = (seed: string, below: number): number => digest(seed).readUInt32BE(0) % below
// A cluster made in early 2025; each object's time some hours or days later, from its name.
const EPOCH = Date.UTC(2025, 2, 10, 9, 0, 0)
const time = (seed: string, laterS = 0): string =>
  new Date(EPOCH + (int(seed, 30 * 86_400) + laterS) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
// Pod names' random suffixes use this alphabet (apiserver's names.SimpleNameGenerator, rand.String).
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789'
const suffix = (seed: string, n: number): string => [...digest(seed).subarray(0, n)].map((b) => ALPHANUMS[b % ALPHANUMS.length]).join('')

type FieldsV1 = Record<string, unknown>
const managed = (manager: string, operation: 'Update' | 'Apply', apiVersion: string, at: string, fieldsV1: FieldsV1, subresource?: string): Record<string, unknown> =>
  ({ manager, operation, apiVersion, time: at, fieldsType: 'FieldsV1', fieldsV1, ...(subresource ? { subresource } : {}) })
/** {"f:a":{},"f:b":{}} for keys a, b; with "." when the map itself is owned. */
const fields = (keys: string[], owned = false): FieldsV1 => Object.fromEntries([...(owned ? [['.', {}]] : []), ...keys.map((k) => [`f:${k}`, {}])])

// What a busy worker node has pulled: ~32 images, as containerd reports them to the kubelet.
const NODE_IMAGES: Array<[string, string, number]> = [
  ['docker.io/grafana/grafana', '11.4.0', 154_612_308],
  ['quay.io/prometheus/prometheus', 'v2.55.1', 118_204_811],
  ['docker.io/library/postgres', '16.6', 152_044_179],
  ['registry.k8s.io/ingress-nginx/controller', 'v1.12.0', 105_836_014],
  ['docker.io/jaegertracing/all-in-one', '1.64.0', 33_154_018],
  ['quay.io/cilium/hubble-ui-backend', 'v0.13.1', 21_473_422],
  ['docker.io/library/redis', '7.4.1', 45_983_071],
  ['public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver', 'v1.38.1', 49_120_544],
  ['docker.io/fluent/fluent-bit', '3.2.4', 40_251_360],
  ['registry.k8s.io/kube-proxy', 'v1.31.4', 30_230_147],
  ['quay.io/jetstack/cert-manager-controller', 'v1.16.2', 22_512_310],
  ['docker.io/library/nginx', '1.27.3', 72_955_450],
  ['quay.io/prometheus/alertmanager', 'v0.27.0', 30_622_148],
  ['registry.k8s.io/kube-state-metrics/kube-state-metrics', 'v2.14.0', 20_012_846],
  ['quay.io/jetstack/cert-manager-webhook', 'v1.16.2', 19_036_508],
  ['registry.k8s.io/metrics-server/metrics-server', 'v0.7.2', 19_494_617],
  ['quay.io/jetstack/cert-manager-cainjector', 'v1.16.2', 17_920_446],
  ['registry.k8s.io/coredns/coredns', 'v1.11.3', 18_562_039],
  ['quay.io/prometheus/node-exporter', 'v1.8.2', 11_768_032],
  ['quay.io/prometheus-operator/prometheus-config-reloader', 'v0.79.2', 6_521_884],
  ['registry.k8s.io/sig-storage/csi-node-driver-registrar', 'v2.12.0', 11_920_137],
  ['registry.k8s.io/sig-storage/livenessprobe', 'v2.14.0', 11_004_722],
  ['docker.io/otel/opentelemetry-collector-contrib', '0.116.1', 95_107_532],
  ['registry.example.com/shop/checkout', '1.8.3', 84_311_207],
  ['registry.example.com/shop/catalog', '2.3.0', 62_845_113],
  ['registry.example.com/shop/frontend', '4.1.2', 41_902_568],
  ['registry.example.com/shop/payments', '1.2.9', 57_230_884],
  ['registry.example.com/shop/search', '3.0.1', 129_004_316],
  ['docker.io/library/busybox', '1.37.0', 2_166_802],
  ['registry.k8s.io/e2e-test-images/agnhost', '2.52', 52_174_520],
  ['docker.io/curlimages/curl', '8.11.1', 11_938_470],
  ['registry.k8s.io/pause', '3.10', 320_368],
]

const NODE_CONDITIONS: Array<[string, string, string, string]> = [
  ['MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
  ['DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
  ['PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
  ['Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'],
]

export type RealNode = KubeNode & KubeObject

/**
 * A worker Node (~13.8 KB of JSON) as kubeadm, the kubelet and kube-controller-manager
 * leave it: spec.podCIDR(s) are podCIDRs, the InternalIP address internalIP, and the
 * annotations those passed on top of the ones kubeadm and the node controllers set.
 */
export function realNode (name: string, podCIDRs: string[], internalIP: string, annotations: Record<string, string> = {}): RealNode {
  const created = time(`node/${name}`)
  const heartbeat = time(`node/${name}`, 30 * 86_400)
  const zone = `eu-west-1${'abc'[int(`zone/${name}`, 3)]}`
  const instance = `i-0${hex(`instance/${name}`, 16)}`
  const labels: Record<string, string> = {
    'beta.kubernetes.io/arch': 'amd64',
    'beta.kubernetes.io/instance-type': 'm6i.xlarge',
    'beta.kubernetes.io/os': 'linux',
    'failure-domain.beta.kubernetes.io/region': 'eu-west-1',
    'failure-domain.beta.kubernetes.io/zone': zone,
    'kubernetes.io/arch': 'amd64',
    'kubernetes.io/hostname': name,
    'kubernetes.io/os': 'linux',
    'node.kubernetes.io/instance-type': 'm6i.xlarge',
    'topology.ebs.csi.aws.com/zone': zone,
    'topology.kubernetes.io/region': 'eu-west-1',
    'topology.kubernetes.io/zone': zone,
  }
  const usual: Record<string, string> = {
    'alpha.kubernetes.io/provided-node-ip': internalIP,
    'csi.volume.kubernetes.io/nodeid': JSON.stringify({ 'ebs.csi.aws.com': instance }),
    'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///var/run/containerd/containerd.sock',
    'node.alpha.kubernetes.io/ttl': '0',
    'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
  }
  const conditionFields = (types: string[]): FieldsV1 => Object.fromEntries(types.map((type) =>
    [`k:{"type":"${type}"}`, { '.': {}, ...fields(['lastHeartbeatTime', 'lastTransitionTime', 'message', 'reason', 'status', 'type']) }]))
  // The EBS volumes of the stateful pods it runs (the images' postgres, prometheus, grafana), as attach/detach and the kubelet report them.
  const volumes = [0, 1, 2].map((i) => `kubernetes.io/csi/ebs.csi.aws.com^vol-0${hex(`volume/${name}/${i}`, 16)}`)
  const resources = ['cpu', 'ephemeral-storage', 'hugepages-1Gi', 'hugepages-2Mi', 'memory', 'pods']
  const managedFields = [
    managed('kubeadm', 'Update', 'v1', created, { 'f:metadata': { 'f:annotations': fields(['kubeadm.alpha.kubernetes.io/cri-socket']) } }),
    managed('kubelet', 'Update', 'v1', created, {
      'f:metadata': {
        'f:annotations': fields(['alpha.kubernetes.io/provided-node-ip', 'volumes.kubernetes.io/controller-managed-attach-detach'], true),
        'f:labels': fields(['beta.kubernetes.io/arch', 'beta.kubernetes.io/os', 'kubernetes.io/arch', 'kubernetes.io/hostname', 'kubernetes.io/os'], true),
      },
    }),
    // An external cloud provider: its node controller sets the instance's labels, providerID and addresses.
    managed('aws-cloud-controller-manager', 'Update', 'v1', time(`node/${name}`, 9), {
      'f:metadata': { 'f:labels': fields(Object.keys(labels).filter((l) => /instance-type|region|zone/.test(l) && !l.startsWith('topology.ebs'))) },
      'f:spec': fields(['providerID']),
    }),
    managed('aws-cloud-controller-manager', 'Update', 'v1', time(`node/${name}`, 9), {
      'f:status': { 'f:addresses': { '.': {}, ...Object.fromEntries(['Hostname', 'InternalIP'].map((type) => [`k:{"type":"${type}"}`, { '.': {}, ...fields(['address', 'type']) }])) } },
    }, 'status'),
    managed('kube-controller-manager', 'Update', 'v1', time(`node/${name}`, 12), {
      'f:metadata': { 'f:annotations': fields(['node.alpha.kubernetes.io/ttl']) },
      'f:spec': { 'f:podCIDR': {}, 'f:podCIDRs': { '.': {}, ...Object.fromEntries(podCIDRs.map((c) => [`v:"${c}"`, {}])) } },
    }),
    managed('kube-controller-manager', 'Update', 'v1', time(`node/${name}`, 14), {
      'f:status': { 'f:conditions': conditionFields(['NetworkUnavailable']), 'f:volumesAttached': {} },
    }, 'status'),
    ...(Object.keys(annotations).length > 0
      ? [managed('flatnet', 'Update', 'v1', time(`node/${name}`, 40), { 'f:metadata': { 'f:annotations': fields(Object.keys(annotations)) } })]
      : []),
    managed('kubelet', 'Update', 'v1', heartbeat, {
      'f:metadata': { 'f:annotations': fields(['csi.volume.kubernetes.io/nodeid']), 'f:labels': fields(['topology.ebs.csi.aws.com/zone']) },
      'f:status': {
        'f:allocatable': fields(resources, true),
        'f:capacity': fields(resources, true),
        'f:conditions': { '.': {}, ...conditionFields(NODE_CONDITIONS.map(([type]) => type)) },
        'f:daemonEndpoints': { 'f:kubeletEndpoint': { 'f:Port': {} } },
        'f:features': { '.': {}, 'f:supplementalGroupsPolicy': {} },
        'f:images': {},
        'f:nodeInfo': fields(['architecture', 'bootID', 'containerRuntimeVersion', 'kernelVersion', 'kubeProxyVersion', 'kubeletVersion', 'machineID', 'operatingSystem', 'osImage', 'systemUUID']),
        'f:runtimeHandlers': {},
        'f:volumesInUse': {},
      },
    }, 'status'),
  ]
  const node = {
    apiVersion: 'v1' as const,
    kind: 'Node' as const,
    metadata: {
      name,
      uid: uid(`node/${name}`),
      resourceVersion: '',
      creationTimestamp: created,
      labels,
      annotations: { ...usual, ...annotations },
      managedFields,
    },
    spec: { podCIDR: podCIDRs[0], podCIDRs, providerID: `aws:///${zone}/${instance}` },
    status: {
      capacity: { cpu: '4', 'ephemeral-storage': '101430960Ki', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '15896988Ki', pods: '110' },
      allocatable: { cpu: '3920m', 'ephemeral-storage': '92403630526', 'hugepages-1Gi': '0', 'hugepages-2Mi': '0', memory: '14880156Ki', pods: '110' },
      conditions: [
        { type: 'NetworkUnavailable', status: 'False', lastHeartbeatTime: time(`node/${name}`, 14), lastTransitionTime: time(`node/${name}`, 14), reason: 'RouteCreated', message: 'RouteController created a route' },
        ...NODE_CONDITIONS.map(([type, status, reason, message]) =>
          ({ type, status, lastHeartbeatTime: heartbeat, lastTransitionTime: time(`node/${name}`, type === 'Ready' ? 21 : 2), reason, message })),
      ],
      addresses: [{ type: 'InternalIP', address: internalIP }, { type: 'Hostname', address: name }],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: hex(`machine/${name}`, 32),
        systemUUID: `ec2${hex(`system/${name}`, 5)}-${hex(`system/${name}#2`, 4)}-${hex(`system/${name}#3`, 4)}-${hex(`system/${name}#4`, 4)}-${hex(`system/${name}#5`, 12)}`,
        bootID: uid(`boot/${name}`),
        kernelVersion: '6.1.0-28-cloud-amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'containerd://1.7.24',
        kubeletVersion: 'v1.31.4',
        kubeProxyVersion: 'v1.31.4',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      images: [...NODE_IMAGES].sort((a, b) => b[2] - a[2]).map(([repo, tag, sizeBytes]) =>
        ({ names: [`${repo}@sha256:${hex(`image/${repo}:${tag}`, 64)}`, `${repo}:${tag}`], sizeBytes })),
      runtimeHandlers: [
        { name: 'runc', features: { recursiveReadOnlyMounts: true, userNamespaces: true } },
        { name: '', features: { recursiveReadOnlyMounts: true, userNamespaces: true } },
      ],
      features: { supplementalGroupsPolicy: true },
      volumesInUse: volumes,
      volumesAttached: volumes.map((v) => ({ name: v, devicePath: '' })),
    },
  }
  return node
}

export interface PodPort { containerPort: number, protocol?: string, name?: string, hostPort?: number }

export interface RealPodOptions {
  namespace: string
  name: string
  labels: Record<string, string>
  nodeName: string
  ips: string[]
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' // default Running
  ports?: PodPort[] // the container's; none if not given
  hostNetwork?: boolean
  hostIP?: string // default: ips[0] for a hostNetwork pod, else an address derived from nodeName
}

/**
 * A Deployment's Pod (~5.9 KB of JSON) as the ReplicaSet controller creates it and the
 * kubelet reports it: one container with resources, probes, env and the projected
 * service account token, tolerations, conditions and a container status. Labels,
 * nodeName, podIPs (ips), the container's ports, phase and hostNetwork are as passed.
 */
export function realPod (o: RealPodOptions): KubeObject {
  const { namespace, name, labels, nodeName, ips, phase = 'Running', ports, hostNetwork = false } = o
  const seed = `pod/${namespace}/${name}`
  const m = /^(.+)-[a-z0-9]{5}$/.exec(name)
  const replicaSet = m ? m[1] : `${name}-${suffix(`rs/${namespace}/${name}`, 10)}`
  const rsUid = uid(`rs/${namespace}/${replicaSet}`)
  const app = labels.app ?? labels['app.kubernetes.io/name'] ?? replicaSet.replace(/-[a-z0-9]{8,10}$/, '')
  const image = `registry.example.com/${namespace}/${app}:1.8.3`
  const hostIP = o.hostIP ?? (hostNetwork && ips[0] ? ips[0] : `192.0.2.${1 + int(`host/${nodeName}`, 254)}`)
  const tokenVolume = `kube-api-access-${suffix(`${seed}/token`, 5)}`
  const created = time(seed)
  const started = time(seed, 3)
  const ready = time(seed, 9)
  const running = phase === 'Running'
  const probePort = ports?.[0]?.name ?? ports?.[0]?.containerPort ?? 8080
  const probe = (path: string, delay: number): Record<string, unknown> => ({
    httpGet: { path, port: probePort, scheme: 'HTTP' }, initialDelaySeconds: delay, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3,
  })
  const env = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
    { name: 'LOG_LEVEL', value: 'info' },
  ]
  const container: Record<string, unknown> = {
    name: app,
    image,
    ...(ports ? { ports } : {}),
    env,
    resources: { limits: { cpu: '1', memory: '512Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    volumeMounts: [{ name: tokenVolume, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
    livenessProbe: probe('/healthz', 10),
    readinessProbe: probe('/readyz', 5),
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  }
  const containerID = `containerd://${hex(`${seed}/container`, 64)}`
  const state = phase === 'Pending'
    ? { waiting: { reason: 'ContainerCreating' } }
    : phase === 'Running'
      ? { running: { startedAt: started } }
      : { terminated: { exitCode: phase === 'Succeeded' ? 0 : 1, reason: phase === 'Succeeded' ? 'Completed' : 'Error', startedAt: started, finishedAt: ready, containerID } }
  const conditions = [
    ['PodReadyToStartContainers', phase === 'Pending' ? 'False' : 'True', started],
    ['Initialized', 'True', created],
    ['Ready', running ? 'True' : 'False', ready],
    ['ContainersReady', running ? 'True' : 'False', ready],
    ['PodScheduled', 'True', created],
  ].map(([type, status, at]) => ({ type, status, lastProbeTime: null, lastTransitionTime: at, ...(status === 'False' && type !== 'PodReadyToStartContainers' ? { reason: phase === 'Pending' ? 'ContainersNotReady' : 'PodCompleted' } : {}) }))
  const conditionFields = Object.fromEntries(conditions.map((c) => [`k:{"type":"${c.type}"}`, { '.': {}, ...fields(['lastProbeTime', 'lastTransitionTime', 'status', 'type']) }]))
  const containerFields = {
    [`k:{"name":"${app}"}`]: {
      '.': {},
      'f:env': { '.': {}, ...Object.fromEntries(env.map((e) => [`k:{"name":"${e.name}"}`, { '.': {}, 'f:name': {}, ...('value' in e ? { 'f:value': {} } : { 'f:valueFrom': { '.': {}, 'f:fieldRef': {} } }) }])) },
      ...fields(['image', 'imagePullPolicy', 'name']),
      'f:livenessProbe': { '.': {}, ...fields(['failureThreshold', 'initialDelaySeconds', 'periodSeconds', 'successThreshold', 'timeoutSeconds']), 'f:httpGet': { '.': {}, ...fields(['path', 'port', 'scheme']) } },
      ...(ports ? { 'f:ports': { '.': {}, ...Object.fromEntries(ports.map((p) => [`k:{"containerPort":${p.containerPort},"protocol":"${p.protocol ?? 'TCP'}"}`, { '.': {}, ...fields(['containerPort', ...(p.name ? ['name'] : []), 'protocol']) }])) } } : {}),
      'f:readinessProbe': { '.': {}, ...fields(['failureThreshold', 'initialDelaySeconds', 'periodSeconds', 'successThreshold', 'timeoutSeconds']), 'f:httpGet': { '.': {}, ...fields(['path', 'port', 'scheme']) } },
      'f:resources': { '.': {}, 'f:limits': fields(['cpu', 'memory'], true), 'f:requests': fields(['cpu', 'memory'], true) },
      ...fields(['terminationMessagePath', 'terminationMessagePolicy']),
    },
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: `${replicaSet}-`,
      namespace,
      uid: uid(seed),
      creationTimestamp: created,
      labels,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: replicaSet, uid: rsUid, controller: true, blockOwnerDeletion: true }],
      managedFields: [
        managed('kube-controller-manager', 'Update', 'v1', created, {
          'f:metadata': { 'f:generateName': {}, 'f:labels': fields(Object.keys(labels), true), 'f:ownerReferences': { '.': {}, [`k:{"uid":"${rsUid}"}`]: {} } },
          'f:spec': {
            'f:containers': containerFields,
            ...fields(['dnsPolicy', 'enableServiceLinks', ...(hostNetwork ? ['hostNetwork'] : []), 'restartPolicy', 'schedulerName', 'securityContext', 'terminationGracePeriodSeconds']),
          },
        }),
        managed('kubelet', 'Update', 'v1', ready, {
          'f:status': {
            'f:conditions': conditionFields,
            ...fields(['containerStatuses', 'hostIP']),
            'f:hostIPs': {},
            'f:phase': {},
            ...(ips.length > 0 ? { 'f:podIP': {}, 'f:podIPs': { '.': {}, ...Object.fromEntries(ips.map((ip) => [`k:{"ip":"${ip}"}`, { '.': {}, 'f:ip': {} }])) } } : {}),
            'f:startTime': {},
          },
        }, 'status'),
      ],
    },
    spec: {
      volumes: [{
        name: tokenVolume,
        projected: {
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
          ],
          defaultMode: 420,
        },
      }],
      containers: [container],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: hostNetwork ? 'ClusterFirstWithHostNet' : 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      nodeName,
      ...(hostNetwork ? { hostNetwork: true } : {}),
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase,
      conditions,
      hostIP,
      hostIPs: [{ ip: hostIP }],
      ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      startTime: created,
      containerStatuses: [{
        name: app,
        state,
        lastState: {},
        ready: running,
        restartCount: 0,
        image,
        imageID: phase === 'Pending' ? '' : `${image.replace(/:[^:/]+$/, '')}@sha256:${hex(`image/${image}`, 64)}`,
        ...(phase === 'Pending' ? {} : { containerID }),
        started: running,
        volumeMounts: [{ name: tokenVolume, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true, recursiveReadOnly: 'Disabled' }],
      }],
      qosClass: 'Burstable',
    },
  }
}

/** A Namespace (~0.5 KB) as `kubectl create` leaves it, with the kubernetes.io/metadata.name label the API server adds. */
export function realNamespace (name: string, labels: Record<string, string> = {}): KubeObject {
  const all = { 'kubernetes.io/metadata.name': name, ...labels }
  const created = time(`namespace/${name}`)
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      uid: uid(`namespace/${name}`),
      creationTimestamp: created,
      labels: all,
      managedFields: [managed('kubectl-create', 'Update', 'v1', created, { 'f:metadata': { 'f:labels': fields(Object.keys(all), true) } })],
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  }
}

/** JSON as Go's encoding/json writes a map: keys sorted, as in kubectl's last-applied-configuration. */
function sortedJSON (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJSON).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${sortedJSON((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

/**
 * A NetworkPolicy (~2.1 KB for a policy with an ingress and an egress rule) as `kubectl
 * apply` leaves it: the last-applied-configuration annotation and its managedFields.
 * The spec is as passed, without the API server's defaults (policyTypes, protocol).
 */
export function realNetworkPolicy (namespace: string, name: string, spec: Record<string, unknown>): KubeObject {
  const created = time(`networkpolicy/${namespace}/${name}`)
  const applied = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { annotations: {}, name, namespace }, spec }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name,
      namespace,
      uid: uid(`networkpolicy/${namespace}/${name}`),
      generation: 1,
      creationTimestamp: created,
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `${sortedJSON(applied)}\n` },
      managedFields: [managed('kubectl-client-side-apply', 'Update', 'networking.k8s.io/v1', created, {
        'f:metadata': { 'f:annotations': fields(['kubectl.kubernetes.io/last-applied-configuration'], true) },
        // podSelector is an atomic struct and the rule lists atomic lists: owned whole.
        'f:spec': fields(Object.keys(spec).sort()),
      })],
    },
    spec,
  }
}
