// The lab's Kubernetes API server as a process of its own, so it can live in a lab
// network namespace (the daemons reach it over the underlay, as a real one) and so its
// CPU is not the test's or the benchmark's. `node dist/src/lab/kube-api-process.js HOST
// PORT` prints {"url": ...} and then answers JSON-lines commands on stdin, one line each,
// until stdin closes; KubeApiProcess drives it from the test process.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { KubeApiServer, type KubeObject, type RequestRecord } from './kube-api.js'
import { APPS, type ClusterSpec, clusterObjects, clusterPod } from './kube-cluster.js'
import { untilTeardown } from './netns.js'
import type { Manifests } from '../policy/manifests.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../policy/objects.js'

// The compiled file, also when the driver runs from the TypeScript sources (tap).
const SCRIPT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? './kube-api-process.js' : '../../dist/src/lab/kube-api-process.js', import.meta.url))

interface Command { id: number, op: string, args?: unknown[] }

// Infinity does not survive JSON (it becomes null): a count of -1 or null means always.
const countFromWire = (c: unknown): number => c === null || c === -1 ? Infinity : Number(c)
const countToWire = (c: number): number => c === Infinity ? -1 : c

/** Every object of the synthetic cluster, generated and stored here: hundreds of MB that never cross the pipe. */
function generate (api: KubeApiServer, spec: ClusterSpec): { objects: number, bytes: number, resourceVersion: number } {
  let objects = 0
  let bytes = 0
  for (const o of clusterObjects(spec)) {
    bytes += Buffer.byteLength(JSON.stringify(o))
    api.putObject(o)
    objects++
  }
  return { objects, bytes, resourceVersion: api.resourceVersion() }
}

/** The server's Namespaces, Pods and NetworkPolicies now, as the policy engine reads them (a fraction of their JSON). */
function policyObjects (api: KubeApiServer): Manifests {
  return {
    namespaces: [...api.objectsOf('Namespace')].map(parseNamespace),
    pods: [...api.objectsOf('Pod')].map(parsePod),
    policies: [...api.objectsOf('NetworkPolicy')].map(parseNetworkPolicy),
    errors: [],
  }
}

/**
 * Pods of the other nodes changed, perSecond of them for `seconds`, spread over the
 * cluster; resolves when done. Relabels (move false) add a label no selector reads, so
 * they move no set element; moves give the pod another app, which takes it out of the
 * peer sets of its old app and into those of the new one.
 */
async function churn (api: KubeApiServer, spec: ClusterSpec, perSecond: number, seconds: number, move = false): Promise<{ changes: number, lastVersion: number }> {
  const pods = spec.nodes * spec.podsPerNode
  const total = pods > 0 ? Math.round(perSecond * seconds) : 0
  const start = performance.now()
  let changes = 0
  let lastVersion = api.resourceVersion()
  while (changes < total) {
    // The changes due by now, on a 10 ms tick: a steady rate, however long each put takes.
    const due = Math.min(total, Math.floor((performance.now() - start) / 1000 * perSecond) + 1)
    for (; changes < due; changes++) {
      const n = (changes * 7919) % pods // a prime stride: successive changes land on different nodes
      const labels: Record<string, string> = move ? { app: `app-${(changes * 13) % APPS}` } : { rev: `c${changes}` }
      lastVersion = api.putObject(clusterPod(spec, Math.floor(n / spec.podsPerNode), n % spec.podsPerNode, labels))
    }
    if (changes < total) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return { changes, lastVersion }
}

function dispatch (api: KubeApiServer, op: string, args: unknown[]): unknown {
  const namespace = (args[2] ?? undefined) as string | undefined // null over JSON: none
  switch (op) {
    case 'put': return api.putObject(args[0] as KubeObject)
    case 'putMany': {
      let rv = api.resourceVersion()
      for (const o of args[0] as KubeObject[]) rv = api.putObject(o)
      return rv
    }
    case 'delete': return api.deleteObject(args[0] as string, args[1] as string, namespace)
    case 'compact': return api.compact()
    case 'closeWatches': return api.closeWatches()
    case 'bookmark': return api.bookmark()
    case 'failLists': return api.failLists(args[0] as string, countFromWire(args[1]), args[2] as number | undefined)
    case 'failWatches': return api.failWatches(args[0] as string, countFromWire(args[1]), args[2] as number | undefined)
    // Times on the wall clock (epoch ms), which the driver turns back into its own performance.now().
    case 'requestLog': return api.requestLog.slice(Number(args[0] ?? 0)).map((r) => ({ ...r, at: performance.timeOrigin + r.at }))
    case 'resourceVersion': return api.resourceVersion()
    case 'object': return api.object(args[0] as string, args[1] as string, namespace) ?? null
    case 'generate': return generate(api, args[0] as ClusterSpec)
    case 'churn': return churn(api, args[0] as ClusterSpec, Number(args[1]), Number(args[2]), args[3] === true)
    case 'policyObjects': return policyObjects(api)
    default: throw new Error(`unknown op ${JSON.stringify(op)}`)
  }
}

async function main (host: string, port: number): Promise<void> {
  const api = new KubeApiServer()
  const url = await api.start(host, port)
  process.stdout.write(`${JSON.stringify({ url })}\n`)
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  lines.on('line', (line) => {
    if (line.trim() === '') return
    let id: unknown = null
    const answer = (reply: { result?: unknown, error?: string }): void => { process.stdout.write(`${JSON.stringify({ id, ...reply })}\n`) }
    const failed = (err: unknown): void => answer({ error: (err as Error).message })
    try {
      const c = JSON.parse(line) as Command
      id = c.id
      // Most answer at once; a churn when it is over, while the server and the other commands go on.
      Promise.resolve(dispatch(api, c.op, c.args ?? [])).then((result) => answer({ result: result ?? null }), failed)
    } catch (err) {
      failed(err)
    }
  })
  // The driver is gone (or stopped us): so are we, open watches and all.
  lines.on('close', () => process.exit(0))
}

/** Drives a kube-api-process from the test or benchmark process. */
export class KubeApiProcess {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private exited?: Error

  private constructor (private readonly child: ChildProcess, readonly url: string, lines: ReturnType<typeof createInterface>, stderr: { text: string }, drop: () => void) {
    // Idle, it does not keep this process alive: one that ends without stop() kills it on exit (untilTeardown).
    child.unref()
    this.hold(false)
    lines.on('line', (line) => {
      const reply = JSON.parse(line) as { id: number, result?: unknown, error?: string }
      const p = this.pending.get(reply.id)
      if (!p) return
      this.pending.delete(reply.id)
      if (this.pending.size === 0) this.hold(false)
      if (reply.error !== undefined) p.reject(new Error(`kube-api-process: ${reply.error}`)); else p.resolve(reply.result)
    })
    child.once('exit', (code, signal) => {
      drop()
      this.exited = new Error(`kube-api-process exited (${signal ?? code})${stderr.text ? `: ${stderr.text.trim()}` : ''}`)
      for (const p of this.pending.values()) p.reject(this.exited)
      this.pending.clear()
    })
  }

  /**
   * Starts the server on host:port (port 0: any free one), inside `netns` if given (`ip netns
   * exec`, which needs root); nodeArgs go to node before the script (e.g. --max-old-space-size).
   */
  static async start (options: { netns?: string, host: string, port: number, nodeArgs?: string[] }): Promise<KubeApiProcess> {
    if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: compile first (tsc -p tsconfig.json)`)
    const args = [...(options.nodeArgs ?? []), SCRIPT, options.host, String(options.port)]
    // `ip netns exec` execs node: the child's PID is the server's.
    const child = options.netns
      ? spawn('ip', ['netns', 'exec', options.netns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    // Killed by PID if this process ends first, as everything the lab starts; gone once it has exited.
    const pid = child.pid
    const drop = pid === undefined ? () => {} : untilTeardown(() => { try { process.kill(pid, 'SIGKILL') } catch { /* gone already */ } })
    const stderr = { text: '' }
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (d: string) => { stderr.text = (stderr.text + d).slice(-16_384) })
    child.stdin?.on('error', () => {}) // EPIPE once it has died: reported by its exit
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream, crlfDelay: Infinity })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const early = (code: number | null, signal: string | null): void =>
          reject(new Error(`kube-api-process ended before serving (${signal ?? code}): ${stderr.text.trim()}`))
        child.once('error', reject)
        child.once('exit', early)
        lines.once('line', (line) => {
          child.off('exit', early)
          child.off('error', reject)
          try {
            resolve((JSON.parse(line) as { url: string }).url)
          } catch {
            reject(new Error(`kube-api-process: not a url line: ${line}`))
          }
        })
      })
      return new KubeApiProcess(child, url, lines, stderr, drop)
    } catch (err) {
      child.kill('SIGKILL')
      drop()
      throw err
    }
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  /** While an answer is awaited, its pipes keep this process alive. */
  private hold (on: boolean): void {
    for (const s of [this.child.stdout, this.child.stderr] as Array<{ ref?: () => void, unref?: () => void } | null>) {
      if (on) s?.ref?.(); else s?.unref?.()
    }
  }

  private async call<T> (op: string, ...args: unknown[]): Promise<T> {
    if (this.exited) throw this.exited
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.hold(true)
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.stdin?.write(`${JSON.stringify({ id, op, args })}\n`)
    })
  }

  /** Creates or replaces an object of any served kind (Node too); resolves to the new resourceVersion. */
  async put (o: KubeObject): Promise<number> { return await this.call('put', o) }
  /** Puts each in turn; resolves to the last resourceVersion. */
  async putMany (objects: KubeObject[]): Promise<number> { return await this.call('putMany', objects) }
  /** Resolves to the new resourceVersion (the current one if there was no such object). */
  async delete (kind: string, name: string, namespace?: string): Promise<number> { return await this.call('delete', kind, name, namespace ?? null) }
  async compact (): Promise<void> { await this.call('compact') }
  async closeWatches (): Promise<void> { await this.call('closeWatches') }
  async bookmark (): Promise<void> { await this.call('bookmark') }
  async failLists (kind: string, count: number, code = 500): Promise<void> { await this.call('failLists', kind, countToWire(count), code) }
  async failWatches (kind: string, count: number, code = 500): Promise<void> { await this.call('failWatches', kind, countToWire(count), code) }
  async resourceVersion (): Promise<number> { return await this.call('resourceVersion') }
  async object (kind: string, name: string, namespace?: string): Promise<KubeObject | undefined> {
    return await this.call<KubeObject | null>('object', kind, name, namespace ?? null) ?? undefined
  }

  /** Generates the synthetic cluster (kube-cluster.ts) in the server's process and stores it; its JSON's size. */
  async generate (spec: ClusterSpec): Promise<{ objects: number, bytes: number, resourceVersion: number }> { return await this.call('generate', spec) }
  /** The server's Namespaces, Pods and NetworkPolicies now, parsed as the policy engine parses them. */
  async policyObjects (): Promise<Manifests> { return await this.call('policyObjects') }
  /** Relabels pods of the other nodes, perSecond for `seconds`, in the server's process; resolves when done. */
  async churn (spec: ClusterSpec, perSecond: number, seconds: number, move = false): Promise<{ changes: number, lastVersion: number }> {
    return await this.call('churn', spec, perSecond, seconds, move)
  }

  /** The requests from index `from` on, `at` in this process's performance.now() (both clocks are the machine's). */
  async requestLog (from = 0): Promise<RequestRecord[]> {
    const log = await this.call<RequestRecord[]>('requestLog', from)
    return log.map((r) => ({ ...r, at: r.at - performance.timeOrigin }))
  }

  /** Closes its stdin, on which it exits; SIGKILL if it has not within 3 s. */
  async stop (): Promise<void> {
    if (this.exited) return
    this.child.ref()
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.stdin?.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const [host, port] = process.argv.slice(2)
  if (!host || !port || !/^\d+$/.test(port)) {
    process.stderr.write('usage: kube-api-process HOST PORT\n')
    process.exit(2)
  }
  main(host, Number(port)).catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`)
    process.exit(1)
  })
}
