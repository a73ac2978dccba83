// The node's devices as uninstall sees them: the TUN (and the routes through it) and the
// pod bridge, each removed only when it is the kind of device flatnet made under that name.
import { ip } from '../net/link.js'

interface LinkJson { ifname: string, linkinfo?: { info_kind?: string } }

/** The device's kind (tun, bridge, veth, ...; '' for none given), or undefined when there is no such device. */
export function linkKind (name: string): string | undefined {
  let out: string
  try {
    out = ip('-d', '-j', 'link', 'show', 'dev', name)
  } catch (err) {
    if (/does not exist/.test((err as Error).message)) return undefined
    throw err
  }
  return (JSON.parse(out) as LinkJson[])[0]?.linkinfo?.info_kind ?? ''
}

/** The main table's routes through the device, both families, as `ip route` prints their destinations. */
export function routesThrough (name: string): string[] {
  return ['-4', '-6'].flatMap((family) => (JSON.parse(ip(family, '-j', 'route', 'show', 'dev', name)) as Array<{ dst: string }>)
    .map((r) => r.dst).filter((dst) => !dst.startsWith('fe80::')))
}

/** The ports attached to a bridge. */
export function bridgePortCount (name: string): number {
  return (JSON.parse(ip('-j', 'link', 'show', 'master', name)) as unknown[]).length
}

export function deleteLink (name: string): void {
  ip('link', 'delete', 'dev', name)
}

export function flushRoutes (name: string): void {
  for (const family of ['-4', '-6']) ip(family, 'route', 'flush', 'dev', name)
}
