// Where the API server is and how to authenticate: in-cluster (the DaemonSet), a
// kubeconfig file (paths relative to it, inline data, tokens), and the refusals that
// must say what to do instead.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { KubeConfigError, loadKubeEndpoint } from '../../src/kube/config.js'

const dir = mkdtempSync(join(tmpdir(), 'flatnet-kubeconfig-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function kubeconfig (name: string, user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://192.0.2.1:6443/' }): string {
  const file = join(dir, name)
  writeFileSync(file, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'c',
    contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
    clusters: [{ name: 'k', cluster }],
    users: [{ name: 'u', user }],
  }))
  return file
}

t.test('a kubeconfig: server, CA and client certificate relative to the file, token', async (t) => {
  mkdirSync(join(dir, 'pki'), { recursive: true })
  writeFileSync(join(dir, 'pki', 'ca.crt'), 'CA')
  writeFileSync(join(dir, 'pki', 'client.crt'), 'CERT')
  const e = loadKubeEndpoint(kubeconfig('a', { 'client-certificate': 'pki/client.crt', 'client-key-data': Buffer.from('KEY').toString('base64'), token: 'tok' },
    { server: 'https://192.0.2.1:6443/', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'api' }), {})
  t.equal(e.server, 'https://192.0.2.1:6443', 'no trailing slash')
  t.equal(e.ca?.toString(), 'CA')
  t.equal(e.cert?.toString(), 'CERT')
  t.equal(e.key?.toString(), 'KEY', 'inline data is base64')
  t.equal(e.token, 'tok')
  t.equal(e.servername, 'api')
  t.equal(e.insecure, false)
})

t.test('in-cluster: the service account\'s token file (re-read as it rotates) and CA', async (t) => {
  const sa = join(dir, 'sa')
  mkdirSync(sa, { recursive: true })
  writeFileSync(join(sa, 'token'), 'sa-token')
  writeFileSync(join(sa, 'ca.crt'), 'SA-CA')
  const e = loadKubeEndpoint(undefined, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa)
  t.equal(e.server, 'https://[fd00::1]:443', 'an IPv6 service address in brackets')
  t.equal(e.tokenFile, join(sa, 'token'))
  t.equal(e.ca?.toString(), 'SA-CA')
  t.throws(() => loadKubeEndpoint(undefined, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, join(dir, 'none')),
    /in-cluster config: cannot read the service account .*automountServiceAccountToken/)
})

t.test('refusals name what is wrong and what to do', async (t) => {
  t.throws(() => loadKubeEndpoint(kubeconfig('exec', { exec: { command: 'aws' } }), {}),
    /user "u" authenticates with an exec plugin, which flatnet does not run; give it a token, tokenFile or client certificate/)
  t.throws(() => loadKubeEndpoint(kubeconfig('noserver', { token: 'x' }, {}), {}), /cluster "k" has no http\(s\) server/)
  t.throws(() => loadKubeEndpoint(join(dir, 'missing'), {}), /missing: cannot read the kubeconfig/)
  const err = (() => { try { loadKubeEndpoint(undefined, { HOME: join(dir, 'home') }) } catch (e) { return e } })()
  t.ok(err instanceof KubeConfigError)
  t.match(String((err as Error).message), /no Kubernetes API server configured: not in a cluster \(KUBERNETES_SERVICE_HOST is unset\) and no kubeconfig/)
})
