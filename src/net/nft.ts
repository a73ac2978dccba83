// nft(8), for flatnet's own tables: NAT outgoing (masquerade.ts) and NetworkPolicy
// (policy/enforce.ts). Each caller replaces its table whole in one `nft -f`
// transaction, so re-applying converges and never leaves a gap.
import { execFileSync } from 'node:child_process'

export function nft (args: string[], input?: string): string {
  try {
    return execFileSync('nft', args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string, message: string, code?: string }
    if (e.code === 'ENOENT') throw new Error('nft not found: install nftables (NAT outgoing needs it unless ipMasq is false; NetworkPolicy needs it)')
    throw new Error(`nft ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`)
  }
}

/** One transaction that replaces `table <family> <name>` by `body` (the table's full text), or removes it when body is undefined. */
export function replaceTable (family: string, name: string, body: string | undefined): void {
  nft(['-f', '-'], `add table ${family} ${name}\ndelete table ${family} ${name}\n${body ?? ''}\n`)
}
