// Network namespaces for tests, the demo and benchmarks. Safety: every namespace is
// named flatnet-*, traffic only flows between namespaces made here, and whoever
// creates one removes it (and its processes, by PID) even when a run fails.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { openSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

// What this process built and has not torn down yet, each with a synchronous undo. A
// teardown only runs if the process lives to run it: a test file killed by tap's
// timeout (SIGTERM) left nine namespaces behind with its daemons and echo servers
// still running in them. So the undos also run on exit, and on the signals that
// reapOnSignals takes over.
const pending = new Set<() => void>()
let exitHooked = false
let signalsHooked = false

/** Registers a synchronous undo that runs if the process ends first; returns the call that drops it. */
export function untilTeardown (undo: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', reapNow)
  }
  pending.add(undo)
  return () => { pending.delete(undo) }
}

/** Runs every undo still registered, newest first (pods before their node, namespaces before the underlay). */
function reapNow (): void {
  for (const undo of [...pending].reverse()) {
    pending.delete(undo)
    try { undo() } catch { /* the rest must still go */ }
  }
}

/**
 * For a process with no signal handling of its own (a test file): on SIGINT, SIGTERM or
 * SIGHUP removes what is registered, then exits as the signal would have (128 + its number).
 */
export function reapOnSignals (): void {
  if (signalsHooked) return
  signalsHooked = true
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      reapNow()
      process.exit(128 + constants.signals[signal])
    })
  }
}

/** Kills every process inside the namespace (by PID) and deletes it; quiet if it is gone already. */
export function removeNamespace (name: string): void {
  let pids: string[] = []
  try {
    pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean)
  } catch { /* gone already */ }
  for (const pid of pids) {
    try { process.kill(Number(pid), 'SIGKILL') } catch { /* already gone */ }
  }
  try { execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' }) } catch { /* gone already */ }
}

/** Why namespaces cannot be used here, or undefined when they can. */
export function labUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TUN devices)'
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' })
  } catch {
    return 'needs iproute2 (`ip`)'
  }
  return undefined
}

export function run (cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`)
  }
}

export class Namespace {
  private readonly children = new Set<ChildProcess>()
  private dropUndo = (): void => {}

  constructor (readonly name: string) {
    if (!name.startsWith('flatnet-')) throw new Error(`namespace ${name}: lab namespaces are named flatnet-*`)
  }

  static create (name: string): Namespace {
    run('ip', ['netns', 'add', name])
    const ns = new Namespace(name)
    ns.dropUndo = untilTeardown(() => {
      for (const c of ns.children) c.kill('SIGKILL')
      removeNamespace(name)
    })
    ns.ip('link', 'set', 'lo', 'up')
    return ns
  }

  /** Runs a command inside, synchronously; throws with its stderr on failure. */
  exec (cmd: string, ...args: string[]): string {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args])
  }

  async execAsync (cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', this.name, cmd, ...args],
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 })
    return stdout
  }

  ip (...args: string[]): string {
    return this.exec('ip', ...args)
  }

  sysctl (key: string, value: string): void {
    this.exec('sysctl', '-qw', `${key}=${value}`)
  }

  /** Starts a long-running process inside; it is killed when the namespace is destroyed. */
  spawn (cmd: string, args: string[], logFile?: string): ChildProcess {
    const out = logFile ? openSync(logFile, 'a') : 'ignore'
    // `ip netns exec` and setpriv exec the command, so the child's PID is the command's.
    // --pdeathsig: killed with this process even when it dies by SIGKILL (a tap timeout
    // that ends in one), which no exit hook outlives.
    const child = spawn('ip', ['netns', 'exec', this.name, 'setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args], { stdio: ['ignore', out, out] })
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    return child
  }

  /** Kills what it spawned (SIGTERM, then SIGKILL) and deletes the namespace. */
  async destroy (): Promise<void> {
    await Promise.all([...this.children].map((c) => stopProcess(c)))
    try {
      run('ip', ['netns', 'delete', this.name])
    } catch (err) {
      if (!/No such file/.test((err as Error).message)) throw err
    }
    this.dropUndo()
  }
}

export async function stopProcess (child: ChildProcess, graceMs = 3000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  const code = await exited
  clearTimeout(timer)
  return code
}

/** Namespaces left by a run that died before its teardown (matching the given tag prefix). */
export function leftoverNamespaces (prefix = 'flatnet-'): string[] {
  return run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(prefix))
}

/** A process's log file as it is now; empty if not written yet. */
export function readLog (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}
