// A command run while the daemon serves, its input written as it is produced and its
// output collected: posix_spawn through the addon (native/spawn.h says why not
// child_process), pipes as sockets on the event loop, and the exit reaped once both
// output pipes have closed.
import { Socket } from 'node:net'
import { constants } from 'node:os'
import { addon } from '../native.js'

export interface Ran { stdout: string, stderr: string }

/** An error as child_process's execFile gives one: code (exit status or ENOENT), signal, stderr. */
export class CommandFailed extends Error {
  constructor (message: string, readonly code: number | string | undefined, readonly signal: string | undefined, readonly stderr: string) {
    super(message)
  }
}

// How often to look for the exit once the child has closed its output: it exits
// right after, so the first look nearly always finds it.
const REAP_EVERY_MS = 2

export async function runPiped (file: string, args: string[], input: string | Iterable<string | Buffer> | undefined, maxBuffer: number): Promise<Ran> {
  let child: ReturnType<typeof addon.spawnPiped>
  try {
    child = addon.spawnPiped(file, args)
  } catch (err) {
    const e = err as Error & { code?: string }
    throw new CommandFailed(e.message, e.code, undefined, '')
  }
  const stdin = new Socket({ fd: child.stdin, readable: false, writable: true })
  const outputs = [child.stdout, child.stderr].map((fd) => new Socket({ fd, readable: true, writable: false }))
  const texts = ['', '']
  let size = 0
  let overflow = false
  const closed = outputs.map(async (s, i) => await new Promise<void>((resolve) => {
    s.setEncoding('utf8')
    s.on('data', (chunk: string) => {
      size += chunk.length
      if (size > maxBuffer) {
        overflow = true
        process.kill(child.pid, 'SIGKILL')
        return
      }
      texts[i] += chunk
    })
    s.on('error', () => resolve())
    s.on('close', () => resolve())
  }))
  stdin.on('error', () => {}) // a child that exits without reading all reports through its status
  let writeError: unknown
  writeInput(stdin, input, (err) => {
    writeError = err
    process.kill(child.pid, 'SIGKILL')
  })
  await Promise.all(closed)
  stdin.destroy()
  const exit = await reaped(child.pid)
  const [stdout, stderr] = texts
  if (writeError !== undefined) throw writeError
  if (overflow) throw new CommandFailed(`${file}: output past ${maxBuffer} bytes`, undefined, 'SIGKILL', stderr)
  if (exit.code === 0) return { stdout, stderr }
  const signal = exit.signal === undefined ? undefined : signalName(exit.signal)
  throw new CommandFailed(`${file} ${args.join(' ')}: ${signal === undefined ? `exit status ${exit.code as number}` : `killed by ${signal}`}`, exit.code, signal, stderr)
}

function writeInput (stdin: Socket, input: string | Iterable<string | Buffer> | undefined, fail: (err: unknown) => void): void {
  if (input === undefined || typeof input === 'string') {
    stdin.end(input ?? '')
    return
  }
  const chunks = input[Symbol.iterator]()
  const write = (): void => {
    try {
      for (let c = chunks.next(); !c.done; c = chunks.next()) {
        if (!stdin.write(c.value)) { stdin.once('drain', write); return }
      }
      stdin.end()
    } catch (err) {
      stdin.destroy()
      fail(err)
    }
  }
  write()
}

async function reaped (pid: number): Promise<{ code?: number, signal?: number }> {
  for (;;) {
    const exit = addon.reap(pid)
    if (exit) return exit
    await new Promise((resolve) => setTimeout(resolve, REAP_EVERY_MS))
  }
}

function signalName (n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? String(n)
}
