// The daemon's side of flatnet-cni (native/cni/flatnet_cni.cc), the last plugin of the
// conflist: the runtime's ADD, CHECK and DEL arrive here with the bridge plugin's result.
// ADD binds the pod's addresses to its bridge port (port-guard.ts) and fails while this
// node cannot isolate the pod yet (its policy table not in, the TUN not up), so after a
// reboot or a crash no pod starts unprotected: the kubelet retries until it can. Unix
// socket, owner-only (0600 in a 0700 directory), as the control socket.
import { readlinkSync } from 'node:fs'
import { listenOwnerOnly } from '../control-socket.js'
import { createServer, type Server, type Socket } from 'node:net'
import { basename } from 'node:path'
import type { Logger } from '../log.js'
import { type Cidr, contains, formatAddress, parseAddress } from '../net/cidr.js'
import type { Binding, PortGuard } from './port-guard.js'

export const DEFAULT_CNI_SOCKET = '/run/flatnet/cni.sock'
export const CNI_PLUGIN = 'flatnet-cni' // the binary's name: the conflist's plugin type
const MAX_REQUEST = 1 << 20
const IDLE_MS = 10_000
const MAX_CONNECTIONS = 64

export interface CniServerOptions {
  path: string
  guard: PortGuard
  podCIDRs: Cidr[]
  /** Why a pod cannot be isolated on this node now, or undefined. */
  notReady: () => string | undefined
  /** With NetworkPolicy: resolves once the table judges these addresses as this pod's (src/policy/enforce.ts). */
  admit?: (namespace: string, name: string, ips: string[]) => Promise<void>
  /** Whether a client may talk at all (the daemon checks its peer's uid). */
  trusted?: (socket: Socket) => boolean
  log: Logger
}

/** The pod a kubelet's runtime names in CNI_ARGS ("K8S_POD_NAMESPACE=x;K8S_POD_NAME=y;..."), if any. */
export function podOf (args: string | undefined): { namespace: string, name: string } | undefined {
  const fields = new Map((args ?? '').split(';').map((kv) => kv.split('=', 2) as [string, string | undefined]))
  const namespace = fields.get('K8S_POD_NAMESPACE')
  const name = fields.get('K8S_POD_NAME')
  // DNS-1123 names, as the API server allows them: anything else is not a pod's name.
  const valid = (s: string | undefined): s is string => s !== undefined && /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(s)
  return valid(namespace) && valid(name) ? { namespace, name } : undefined
}

/** A CNI error result (CNI spec, "Error"); 11: try again later. */
class CniError extends Error {
  constructor (readonly code: number, message: string, readonly details = '') {
    super(message)
  }
}

interface Interface { name?: unknown, sandbox?: unknown }
interface IpConfig { address?: unknown, interface?: unknown }
interface NetConf { cniVersion?: unknown, prevResult?: { interfaces?: unknown, ips?: unknown } }

/** Splits the shim's request: "NAME=value\0"..., "\0", then the network config. */
export function parseRequest (bytes: Buffer): { env: Record<string, string>, config: string } {
  const env: Record<string, string> = {}
  let at = 0
  for (;;) {
    const end = bytes.indexOf(0, at)
    if (end < 0) throw new CniError(4, 'truncated request from flatnet-cni')
    if (end === at) break
    const pair = bytes.subarray(at, end).toString('utf8')
    const eq = pair.indexOf('=')
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1)
    at = end + 1
  }
  return { env, config: bytes.subarray(at + 1).toString('utf8') }
}

/** The port and addresses the bridge plugin's result gives the pod (the host veth: no sandbox, not the bridge). */
export function bindingOf (conf: NetConf, bridge: string, podCIDRs: Cidr[]): Binding {
  const prev = conf.prevResult
  if (prev === undefined || !Array.isArray(prev.interfaces) || !Array.isArray(prev.ips)) {
    throw new CniError(7, 'flatnet-cni runs after the bridge plugin: no prevResult with interfaces and ips')
  }
  const interfaces = prev.interfaces as Interface[]
  const hosts = interfaces.filter((i) => typeof i?.name === 'string' && i.sandbox === undefined && i.name !== bridge)
  if (hosts.length !== 1) throw new CniError(7, `prevResult names ${hosts.length} host-side interfaces besides ${bridge}; want the pod's veth`)
  const port = hosts[0].name as string
  if (!/^[^\s/:]{1,15}$/.test(port)) throw new CniError(7, `prevResult: ${JSON.stringify(port)} is not an interface name`)
  const b: Binding = { port, v4: [], v6: [] }
  for (const ip of prev.ips as IpConfig[]) {
    // Addresses of the sandbox's interfaces only (an index into interfaces, when given).
    if (typeof ip?.interface === 'number' && interfaces[ip.interface]?.sandbox === undefined) continue
    // "address/prefix", the prefix the pod's subnet's: the address alone is what is bound.
    const c = typeof ip?.address === 'string' ? parseAddress(ip.address.split('/')[0]) : undefined
    if (c === undefined) throw new CniError(7, `prevResult: bad address ${JSON.stringify(ip?.address)}`)
    if (!podCIDRs.some((p) => contains(p, c))) throw new CniError(7, `prevResult: ${formatAddress(c)} is outside this node's pod CIDRs`)
    ;(c.family === 4 ? b.v4 : b.v6).push(formatAddress(c))
  }
  if (b.v4.length + b.v6.length === 0) throw new CniError(7, 'prevResult gives the pod no address')
  return b
}

function masterOf (port: string): string | undefined {
  try {
    return basename(readlinkSync(`/sys/class/net/${port}/master`))
  } catch {
    return undefined
  }
}

export async function serveCni (o: CniServerOptions): Promise<Server> {
  const handle = async (env: Record<string, string>, text: string): Promise<string> => {
    const command = env.CNI_COMMAND
    let conf: NetConf
    try {
      conf = JSON.parse(text) as NetConf
    } catch (err) {
      throw new CniError(6, 'the network config is not JSON', (err as Error).message)
    }
    if (command === 'DEL') {
      // libcni passes the cached ADD result; without one, the guard drops the port's binding
      // once the bridge plugin's DEL has removed the port (PortGuard.gc).
      let port: string | undefined
      try {
        port = bindingOf(conf, o.guard.bridge, o.podCIDRs).port
      } catch {}
      if (port !== undefined) await o.guard.unbind(port)
      return ''
    }
    const b = bindingOf(conf, o.guard.bridge, o.podCIDRs)
    if (masterOf(b.port) !== o.guard.bridge) throw new CniError(7, `${b.port} is not a port of ${o.guard.bridge}`)
    const result = JSON.stringify({ ...conf.prevResult, cniVersion: conf.cniVersion })
    if (command === 'CHECK') {
      const have = o.guard.get(b.port)
      if (have === undefined || have.v4.join() !== b.v4.join() || have.v6.join() !== b.v6.join()) {
        throw new CniError(100, `${b.port} is not bound to the pod's addresses`)
      }
      return ''
    }
    if (command !== 'ADD') throw new CniError(4, `unknown CNI_COMMAND ${JSON.stringify(command)}`)
    const why = o.notReady()
    if (why !== undefined) throw new CniError(11, 'flatnet cannot isolate a pod on this node yet: the pod waits', why)
    await o.guard.bind(b)
    // Its policies in before it runs: the kubelet starts the pod's containers only after ADD.
    const pod = podOf(env.CNI_ARGS)
    if (o.admit !== undefined && pod !== undefined) {
      try {
        await o.admit(pod.namespace, pod.name, [...b.v4, ...b.v6])
      } catch (err) {
        throw new CniError(11, `flatnet cannot isolate the pod ${pod.namespace}/${pod.name} yet: the pod waits`, (err as Error).message)
      }
    }
    o.log.info({ port: b.port, addresses: [...b.v4, ...b.v6], container: env.CNI_CONTAINERID }, 'pod port bound')
    return result
  }

  // Half-open: the shim shuts down its side to end the request, then reads the answer.
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    if (o.trusted !== undefined && !o.trusted(socket)) {
      socket.destroy()
      return
    }
    socket.setTimeout(IDLE_MS, () => socket.destroy())
    socket.on('error', () => {})
    const chunks: Buffer[] = []
    let size = 0
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_REQUEST) socket.destroy()
      else chunks.push(chunk)
    })
    socket.on('end', () => {
      let env: Record<string, string> = {}
      const answer = async (): Promise<string> => {
        const req = parseRequest(Buffer.concat(chunks))
        env = req.env
        return await handle(req.env, req.config)
      }
      answer().then((stdout) => socket.end(`0${stdout}`), (err: Error) => {
        const e = err instanceof CniError ? err : new CniError(5, err.message)
        o.log.warn({ command: env.CNI_COMMAND, container: env.CNI_CONTAINERID, code: e.code, err: e.message, details: e.details }, 'CNI request refused')
        socket.end(`1${JSON.stringify({ cniVersion: '1.0.0', code: e.code, msg: e.message, details: e.details })}`)
      })
    })
  })
  server.maxConnections = MAX_CONNECTIONS
  await listenOwnerOnly(server, o.path)
  return server
}
