// Node bring-up against a small API server on loopback: the pod CIDRs are read from
// the Node (waiting while none is allocated), and NetworkUnavailable=False is
// written to its status as a strategic merge patch (conditions merge by type).
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { markNetworkAvailable, nodeIdentity, podCIDRsFromNode } from '../../src/node-cidr.js'
import { KubeConfigError } from '../../src/kube/config.js'
import { toolsMissing } from '../../src/lab/tools.js'
// @ts-expect-error: a plain .mjs fixture, also run as a process by the namespace test
import { kubeconfig as kubeconfigFor, nodeApi } from '../fixtures/node-api.mjs'

async function serve (t: Test, options: { nodeName: string, podCIDRs: string[], allocateAfter?: number }): Promise<{ file: string, requests: () => Promise<any[]> }> {
  const server = nodeApi(options) as Server
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-node-cidr-'))
  const file = join(dir, 'kubeconfig')
  writeFileSync(file, kubeconfigFor(url))
  t.teardown(() => { server.closeAllConnections(); server.close(); rmSync(dir, { recursive: true, force: true }) })
  return { file, requests: async () => await (await fetch(`${url}/_requests`)).json() as any[] }
}

t.test('pod CIDRs from the Node, once allocated', async (t) => {
  const api = await serve(t, { nodeName: 'k1', podCIDRs: ['10.244.7.0/24', 'fd00:10:244:7::/64'], allocateAfter: 2 })
  const waits: string[] = []
  const cidrs = await podCIDRsFromNode('k1', api.file, { timeoutMs: 5000, pollMs: 20, onWait: (why) => waits.push(why) })
  t.same(cidrs, ['10.244.7.0/24', 'fd00:10:244:7::/64'], 'both families, IPv4 first')
  t.equal(waits.length, 1, 'one message while waiting, not one per poll')
  t.match(waits[0], /Node k1 has no spec.podCIDRs yet/)
  t.equal((await api.requests()).filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes/k1').length, 3, 'read until allocated')
})

t.test('a missing Node times out naming the problem', async (t) => {
  const api = await serve(t, { nodeName: 'k1', podCIDRs: ['10.244.7.0/24'] })
  await t.rejects(podCIDRsFromNode('nope', api.file, { timeoutMs: 200, pollMs: 20 }), /--pod-cidr-from-node: cannot read Node nope: HTTP 404/)
})

t.test('NetworkUnavailable=False as a strategic merge patch of the status', async (t) => {
  const api = await serve(t, { nodeName: 'k1', podCIDRs: ['10.244.7.0/24'] })
  const now = new Date('2026-11-22T00:00:00Z')
  await markNetworkAvailable('k1', api.file, now)
  const patch = (await api.requests()).find((r) => r.method === 'PATCH')
  t.equal(patch?.path, '/api/v1/nodes/k1/status')
  t.equal(patch?.contentType, 'application/strategic-merge-patch+json')
  t.same(patch?.body, {
    status: {
      conditions: [{
        type: 'NetworkUnavailable',
        status: 'False',
        reason: 'FlatnetIsUp',
        message: 'flatnet is running on this node',
        lastTransitionTime: now.toISOString(),
        lastHeartbeatTime: now.toISOString()
      }]
    }
  })
})

t.test('node identity: the flag wins over the file; kubeconfig from the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-node-cidr-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ nodeName: 'from-file', kubernetes: { kubeconfig: '/etc/kubeconfig' } }))
  t.same(nodeIdentity(file, undefined), { nodeName: 'from-file', kubeconfig: '/etc/kubeconfig' })
  t.same(nodeIdentity(file, 'from-flag'), { nodeName: 'from-flag', kubeconfig: '/etc/kubeconfig' })
  t.same(nodeIdentity(join(dir, 'missing.json'), undefined), { nodeName: undefined, kubeconfig: undefined })
})

// A certificate the configured CA does not verify will not change while the daemon waits:
// said at once (a KubeConfigError: exit 2), not after the 10 minutes the CLI allows.
t.test('a server whose certificate does not verify: refused at once, naming where the config came from', async (t) => {
  const missing = toolsMissing(['openssl'])
  if (missing) {
    if (process.env.CI) throw new Error(`must run in CI but cannot: ${missing}`)
    t.pass(missing, { skip: true })
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-node-cidr-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
    '-days', '2', '-subj', '/CN=flatnet-test'], { cwd: dir, stdio: 'ignore' })
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('{}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const file = join(dir, 'kubeconfig')
  const config = JSON.parse(kubeconfigFor(url))
  delete config.clusters[0].cluster['insecure-skip-tls-verify'] // and no CA: the self-signed certificate cannot verify
  writeFileSync(file, JSON.stringify(config))
  const wait = (why: string): never => { throw new Error(`waited: ${why}`) }
  const err = await podCIDRsFromNode('k1', file, { timeoutMs: 600_000, pollMs: 20, onWait: wait }).then(() => undefined, (e: unknown) => e)
  t.type(err, KubeConfigError, String(err))
  t.match((err as Error).message, `${url} (from ${file}) fails TLS: self-signed certificate`)
})
