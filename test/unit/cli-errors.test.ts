// What a user typed comes back in the error: the flag rather than the config field, the
// file's line and column, both entries of a duplicate, the address no interface holds; a
// config error is one line on stderr and exit 2, never a stack trace or a long wait.
// Each daemon here stops at its config: none gets as far as the node's network.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toolsMissing } from '../../src/lab/tools.js'

const cli = new URL('../../bin/flatnet.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'flatnet-cli-errors-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const run = (args: string[], o: { env?: NodeJS.ProcessEnv, input?: string } = {}): { status: number | null, stdout: string, stderr: string } =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', ...o })

const config = (name: string, fields: Record<string, unknown> = {}): string => {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify({
    nodeName: 'n1',
    clusterCIDR: '10.244.0.0/16',
    podCIDR: '10.244.1.0/24',
    underlay: { address: '127.0.0.1' },
    stateFile: false,
    cni: false,
    healthPort: 0,
    metricsPort: 0,
    ...fields,
  }, null, 2))
  return file
}

t.test('a flag\'s bad value is named by the flag', async (t) => {
  const file = config('node.json')
  for (const [flag, value, problem] of [
    ['--log-level', 'verbose', 'must be one of trace, debug, info, warn, error'],
    ['--node-name', 'N_1', '"N_1" is not a node name'],
    ['--pod-cidr', '10.245.1.0/24', '10.245.1.0/24 is not inside clusterCIDR'],
    ['--underlay-address', '192.0.2.300', '"192.0.2.300" is not an IP address'],
    ['--join', '192.0.2.7:0', '"192.0.2.7:0": port must be 1-65535'],
  ]) {
    const r = run(['daemon', '--config', file, flag, value])
    t.equal(r.status, 2, `${flag} ${value}: exit 2`)
    t.ok(r.stderr.startsWith(`flatnet: ${flag}: ${problem}`), r.stderr)
    t.equal(r.stderr.split('\n').length, 2, 'one line')
  }
  const r = run(['daemon', '--config', config('vni.json', { vni: 0 }), '--log-level', 'info'])
  t.same([r.status, r.stderr], [2, 'flatnet: config.vni: 0 must be an integer from 1 to 16777215\n'], 'the file\'s own field still as config.FIELD')
})

t.test('a JSON syntax error: FILE:LINE:COLUMN', async (t) => {
  const file = join(dir, 'broken.json')
  writeFileSync(file, '{\n  "nodeName": "n1",\n  "logLevel": verbose\n}\n')
  const r = run(['daemon', '--config', file])
  t.same([r.status, r.stderr], [2, `flatnet: ${file}:3:15: Unexpected token 'v' (not valid JSON)\n`])
})

t.test('a static peer given twice: both entries named', async (t) => {
  const peer = { nodeName: 'n2', podCIDR: '10.244.2.0/24', address: '192.0.2.2', vtepMAC: '02:00:00:00:00:02' }
  const file = config('peers.json', { peers: [peer, { ...peer, nodeName: 'n3', podCIDR: '10.244.3.0/24' }, { ...peer, podCIDR: '10.244.4.0/24' }] })
  const r = run(['daemon', '--config', file])
  t.same([r.status, r.stderr], [2, 'flatnet: config.peers[2].nodeName: "n2" is also peers[0]: keep one entry per node\n'])
})

t.test('an underlay address on no interface of the node: one line, exit 2', async (t) => {
  const missing = toolsMissing(['ip'])
  if (missing) {
    t.pass(missing, { skip: true })
    return
  }
  const address = '192.0.2.123' // TEST-NET-1 (RFC 5737): on no interface, else this test does not run
  if (execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' }).includes(`"${address}"`)) {
    t.pass(`${address} is on an interface here`, { skip: true })
    return
  }
  const file = config('underlay.json', { underlay: { address } })
  const fromFile = run(['daemon', '--config', file])
  t.same([fromFile.status, fromFile.stderr], [2, `flatnet: config.underlay.address: ${address} is on no interface of this node: give one of its addresses (ip -br addr)\n`])
  const r = run(['daemon', '--config', config('node.json'), '--underlay-address', address])
  t.same([r.status, r.stderr], [2, `flatnet: --underlay-address: ${address} is on no interface of this node: give one of its addresses (ip -br addr)\n`])
})

t.test('--pod-cidr-from-node with no API server configured: said at once, exit 2', async (t) => {
  const home = mkdtempSync(join(dir, 'home-'))
  const env = { PATH: process.env.PATH, HOME: home } // no KUBERNETES_SERVICE_HOST, no KUBECONFIG, no ~/.kube/config
  const r = run(['daemon', '--config', config('node.json'), '--pod-cidr-from-node'], { env })
  t.equal(r.status, 2)
  t.match(r.stderr, /^flatnet: --pod-cidr-from-node: no Kubernetes API server configured: not in a cluster \(KUBERNETES_SERVICE_HOST is unset\) and no kubeconfig/)
  t.equal(r.stderr.split('\n').length, 2, 'one line')
})

t.test('-o json wherever --json is', async (t) => {
  for (const command of ['peers', 'status']) {
    const r = run([command, '--socket', join(dir, 'no-daemon.sock'), '-o', 'json'])
    t.equal(r.status, 1, `${command} -o json: accepted; no daemon there (exit 1, not a usage error)`)
    t.equal(run([command, '--socket', join(dir, 'no-daemon.sock'), '-o', 'yaml']).status, 2, `${command} -o yaml: a usage error`)
  }
})

const manifests = `apiVersion: v1
kind: List
items:
- {kind: Pod, metadata: {namespace: x, name: web, labels: {app: web}}, spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}, status: {podIPs: [{ip: 10.244.1.20}]}}
- {kind: Pod, metadata: {namespace: x, name: client, labels: {app: client}}, status: {podIPs: [{ip: 10.244.2.30}]}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: web-http}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]
`

t.test('policy explain and matrix: manifests from stdin or a file, a named --port', async (t) => {
  const explain = run(['policy', 'explain', '--manifests', '-', '--from', 'x/client', '--to', 'x/web', '--port', 'http'], { input: manifests })
  t.equal(explain.status, 0, explain.stderr)
  t.match(explain.stdout, /^x\/client \(10\.244\.2\.30\) -> x\/web \(10\.244\.1\.20\) 8080\/TCP \(http\): ALLOWED\n/)
  const file = join(dir, 'cluster.yaml')
  writeFileSync(file, manifests)
  t.equal(run(['policy', 'explain', '--manifests', file, '--from', 'x/web', '--to', 'x/web', '--port', 'http/tcp']).status, 3, 'denied: exit 3')
  const none = run(['policy', 'explain', '--manifests', file, '--from', 'x/web', '--to', 'x/client', '--port', 'http'])
  t.same([none.status, none.stderr], [1, 'flatnet: pod x/client has no TCP container port named http (its named ports: none); give its number or another name\n'])
  const matrix = run(['policy', 'matrix', '--manifests', '-', '--port', 'http'], { input: manifests })
  t.same([matrix.status, matrix.stdout], [0, '-\tx/client\tx/web\nx/client\t-\t.\nx/web\t-\tX\n'])
  t.match(run(['--help']).stdout, '"-" the destination has\n           no port of that name', 'the legend says what "-" is')
  const bad = run(['policy', 'matrix', '--manifests', file, '--port', 'HTTP'])
  t.same([bad.status, bad.stderr.split('\n')[0]], [2, 'flatnet: --port HTTP: give PORT/PROTO or NAME/PROTO (a container port\'s name), e.g. 80/tcp or http'])
})

t.test('encryption "wireguard" with a key file that holds no key: exit 2 naming the field, before anything is touched', async (t) => {
  const keyFile = join(dir, 'wg.key')
  writeFileSync(keyFile, 'not a key\n', { mode: 0o600 })
  const r = run(['daemon', '--config', config('wg.json', { encryption: 'wireguard', wireguard: { privateKeyFile: keyFile } })])
  t.equal(r.status, 2)
  t.match(r.stderr, /^flatnet: config\.wireguard\.privateKeyFile: .*wg\.key: does not hold a WireGuard private key/)
  t.equal(readFileSync(keyFile, 'utf8'), 'not a key\n', 'the file is left as it was')
})
