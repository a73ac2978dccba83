// Where the API server is and how to authenticate to it: the in-cluster service account
// (what the DaemonSet uses) or a kubeconfig file. Read here rather than through the
// official client, whose KubeConfig alone loads its whole generated API (the decision
// record in docs/performance.md has the cost).
// Supported: bearer tokens (inline or tokenFile), client certificates, basic auth, a CA
// or insecure-skip-tls-verify, tls-server-name. Exec plugins and auth-providers run
// other programs; they are refused with a message naming the user.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join } from 'node:path'
import { parse } from 'yaml'

// Kubernetes' in-cluster config (client-go rest.InClusterConfig): the service account's mount.
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface KubeEndpoint {
  /** https://host:port or http://host:port, without a trailing slash. */
  server: string
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  insecure: boolean
  servername?: string
  /** A token to send as Bearer: inline, or re-read from a file (projected tokens rotate). */
  token?: string
  tokenFile?: string
  basic?: { username: string, password: string }
  /** Where it came from, for error messages. */
  origin: string
}

export class KubeConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'KubeConfigError'
  }
}

/** A kubeconfig file if given, else in-cluster when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config. */
export function loadKubeEndpoint (kubeconfig?: string, env = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): KubeEndpoint {
  if (kubeconfig) return fromKubeconfig(kubeconfig)
  if (env.KUBERNETES_SERVICE_HOST) return inCluster(env, serviceAccountDir)
  const candidates = [...(env.KUBECONFIG ?? '').split(':').filter(Boolean), join(env.HOME ?? homedir(), '.kube', 'config')]
  for (const file of candidates) {
    try {
      readFileSync(file)
    } catch {
      continue
    }
    return fromKubeconfig(file)
  }
  throw new KubeConfigError('no Kubernetes API server configured: not in a cluster (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig ' +
    `(${candidates.join(', ')}); set kubernetes.kubeconfig in the config or KUBECONFIG`)
}

function inCluster (env: NodeJS.ProcessEnv, dir: string): KubeEndpoint {
  const host = env.KUBERNETES_SERVICE_HOST as string
  const port = env.KUBERNETES_SERVICE_PORT ?? '443'
  const tokenFile = join(dir, 'token')
  let ca: Buffer
  try {
    ca = readFileSync(join(dir, 'ca.crt'))
    readFileSync(tokenFile)
  } catch (err) {
    throw new KubeConfigError(`in-cluster config: cannot read the service account (${(err as Error).message}); is automountServiceAccountToken off?`)
  }
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ca, insecure: false, tokenFile, origin: 'in-cluster service account' }
}

type Json = Record<string, unknown>

function named (list: unknown, name: string, what: string, file: string): Json {
  const entry = (Array.isArray(list) ? list : []).find((e) => (e as Json | null)?.name === name) as Json | undefined
  const body = entry?.[what] as Json | undefined
  if (!body || typeof body !== 'object') throw new KubeConfigError(`${file}: no ${what} named "${name}"`)
  return body
}

function fromKubeconfig (file: string): KubeEndpoint {
  let doc: Json
  try {
    doc = parse(readFileSync(file, 'utf8')) as Json
  } catch (err) {
    throw new KubeConfigError(`${file}: cannot read the kubeconfig: ${(err as Error).message}`)
  }
  if (!doc || typeof doc !== 'object') throw new KubeConfigError(`${file}: not a kubeconfig`)
  const contextName = doc['current-context']
  if (typeof contextName !== 'string' || contextName === '') throw new KubeConfigError(`${file}: no current-context`)
  const context = named(doc.contexts, contextName, 'context', file)
  const cluster = named(doc.clusters, String(context.cluster), 'cluster', file)
  const userName = String(context.user ?? '')
  const user = userName ? named(doc.users, userName, 'user', file) : {}
  const base = dirname(file)
  // Paths in a kubeconfig are relative to the file that names them (clientcmd's ResolvePaths).
  const read = (path: unknown, data: unknown, field: string): Buffer | undefined => {
    if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64')
    if (typeof path !== 'string' || path === '') return undefined
    try {
      return readFileSync(isAbsolute(path) ? path : join(base, path))
    } catch (err) {
      throw new KubeConfigError(`${file}: ${field}: ${(err as Error).message}`)
    }
  }
  if (user.exec || user['auth-provider']) {
    throw new KubeConfigError(`${file}: user "${userName}" authenticates with ${user.exec ? 'an exec plugin' : 'an auth-provider'}, which flatnet does not run; ` +
      'give it a token, tokenFile or client certificate (e.g. a service account token)')
  }
  const server = cluster.server
  if (typeof server !== 'string' || !/^https?:\/\//.test(server)) throw new KubeConfigError(`${file}: cluster "${String(context.cluster)}" has no http(s) server`)
  const tokenFile = typeof user.tokenFile === 'string' && user.tokenFile !== '' ? (isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile)) : undefined
  return {
    server: server.replace(/\/+$/, ''),
    ca: read(cluster['certificate-authority'], cluster['certificate-authority-data'], 'certificate-authority'),
    cert: read(user['client-certificate'], user['client-certificate-data'], 'client-certificate'),
    key: read(user['client-key'], user['client-key-data'], 'client-key'),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    token: typeof user.token === 'string' && user.token !== '' ? user.token : undefined,
    tokenFile,
    basic: typeof user.username === 'string' && typeof user.password === 'string' ? { username: user.username, password: user.password } : undefined,
    origin: file,
  }
}
