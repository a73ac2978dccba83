// flatnet's nftables tables on the node: NAT outgoing, NetworkPolicy and the pod port
// guard. The last two outlive the daemon on purpose (pods stay isolated across a restart
// or an update), so only uninstall removes them.
import { TABLE as MASQUERADE_TABLE, removeMasquerade } from '../net/masquerade.js'
import { nft, replaceTable } from '../net/nft.js'
import { POLICY_TABLE } from '../policy/nftables.js'
import { GUARD_TABLE } from '../guard/port-guard.js'

/** The node's tables, as "family name". */
function tables (): Set<string> {
  let out: string
  try {
    out = nft(['list', 'tables'])
  } catch (err) {
    const message = (err as Error).message
    if (message.startsWith('nft not found')) throw new Error('nft not found: install nftables, or run uninstall from the flatnet image (deploy/uninstall/)')
    throw new Error(`cannot list the node's nftables tables: ${message}`)
  }
  return new Set(out.split('\n').map((l) => l.trim().replace(/^table /, '')).filter(Boolean))
}

/** Removes the tables of `family name` that exist; returns which did. */
function remove (names: Array<[string, string]>, drop: () => void): string[] {
  const present = tables()
  const found = names.filter(([family, name]) => present.has(`${family} ${name}`)).map(([family, name]) => `table ${family} ${name}`)
  if (found.length) drop()
  return found
}

export function removeNatTables (): string[] {
  return remove([['ip', MASQUERADE_TABLE], ['ip6', MASQUERADE_TABLE]], removeMasquerade)
}

export function removePolicyTable (): string[] {
  return remove([['inet', POLICY_TABLE]], () => replaceTable('inet', POLICY_TABLE, undefined))
}

export function removeGuardTable (): string[] {
  return remove([['bridge', GUARD_TABLE]], () => replaceTable('bridge', GUARD_TABLE, undefined))
}

export { GUARD_TABLE, MASQUERADE_TABLE, POLICY_TABLE }
