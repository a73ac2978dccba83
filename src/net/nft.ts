// nft(8), for flatnet's own tables: NAT outgoing (masquerade.ts) and NetworkPolicy
// (policy/enforce.ts). Each caller replaces its table whole in one `nft -f`
// transaction, so re-applying converges and never leaves a gap. Start-up and teardown
// may wait for it; anything that runs while the daemon serves uses nftAsync, so the
// event loop answering probes never waits on a child process.
import { execFileSync } from 'node:child_process'
import { runPiped } from './spawn.js'

function nftError (args: string[], err: unknown): Error {
  const e = err as { stderr?: string, message: string, code?: string }
  if (e.code === 'ENOENT') return new Error('nft not found: install nftables (NAT outgoing needs it unless ipMasq is false; NetworkPolicy needs it)')
  return new Error(`nft ${args.join(' ')}: ${(e.stderr?.trim() || e.message).trim()}`)
}

export function nft (args: string[], input?: string): string {
  try {
    return execFileSync('nft', args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], maxBuffer: 256 << 20 })
  } catch (err) {
    throw nftError(args, err)
  }
}

/**
 * nft with its input written as it is produced (a table's text can run to hundreds of MB:
 * never one string), started by posix_spawn (src/net/spawn.ts): a fork of the daemon would
 * hold the event loop for milliseconds at every apply.
 */
export async function nftAsync (args: string[], input?: string | Iterable<string | Buffer>): Promise<string> {
  try {
    return (await runPiped('nft', args, input, 256 << 20)).stdout
  } catch (err) {
    throw nftError(args, err)
  }
}

/** The transaction that replaces `table <family> <name>` by `body` (the table's full text), or removes it when body is undefined. */
export function tableReplacement (family: string, name: string, body: string | undefined): string {
  return `${tableReplacing(family, name)}${body ?? ''}\n`
}

/** The first commands of that transaction, for a body streamed after them. */
export function tableReplacing (family: string, name: string): string {
  return `add table ${family} ${name}\ndelete table ${family} ${name}\n`
}

export function replaceTable (family: string, name: string, body: string | undefined): void {
  nft(['-f', '-'], tableReplacement(family, name, body))
}
