// Self-healing of what someone else can take away from a running node (flannel#869,
// #877): the TUN device deleted (`ip link del flatnet0`), set down, or a cluster route
// removed. Checked every intervalMs from cheap sources (the native TUN error, sysfs,
// /proc/net/*route: no subprocess while all is well); on a problem the device is
// reopened under the running loops and configured again (idempotent `replace`s), and
// the log says what was found and what was done.
import { readFileSync } from 'node:fs'
import type { Logger } from './log.js'
import type { Dataplane } from './native.js'
import { type Cidr, formatCidr } from './net/cidr.js'
import { configureTun } from './net/link.js'

export interface HealOptions {
  dataplane: Dataplane
  tunName: string
  mtu: number
  podCIDRs: Cidr[]
  clusterCIDRs: Cidr[]
  log: Logger
  intervalMs?: number // default 250: a deleted device is back well within 2 s
}

export interface Healer {
  stop(): void
  /** One check now; returns what was wrong (empty when nothing). */
  check(): string[]
  stats(): { heals: number, failures: number }
}

export function startHealer (o: HealOptions): Healer {
  const counts = { heals: 0, failures: 0 }
  let lastFailure = ''
  const check = (): string[] => {
    const started = Date.now()
    let problems: string[] = []
    const actions: string[] = []
    // Nothing the checks or repairs throw may escape: from a timer it would end the daemon.
    try {
      problems = findProblems(o)
      if (problems.length === 0) return problems
      if (problems.some((p) => p.startsWith('device'))) {
        o.dataplane.reopenTun()
        actions.push(`reopened TUN ${o.tunName}`)
      }
      configureTun(o.tunName, o.mtu, o.podCIDRs, o.clusterCIDRs)
      actions.push(`set MTU ${o.mtu}, addresses, up, routes ${o.clusterCIDRs.map(formatCidr).join(', ')}`)
      counts.heals++
      lastFailure = ''
      o.log.warn({ problems, actions, ms: Date.now() - started }, 'healed the TUN device and routes')
    } catch (err) {
      counts.failures++
      const why = (err as Error).message
      // Retried every interval; logged once per distinct failure, not every 250 ms.
      if (why !== lastFailure) o.log.error({ problems, actions, err: why }, 'cannot heal the TUN device yet; retrying')
      lastFailure = why
    }
    return problems
  }
  const timer = setInterval(check, o.intervalMs ?? 250)
  timer.unref()
  return { stop: () => clearInterval(timer), check, stats: () => ({ ...counts }) }
}

/** What is missing, in words; device problems start with "device". */
export function findProblems (o: Pick<HealOptions, 'dataplane' | 'tunName' | 'clusterCIDRs'>): string[] {
  const problems: string[] = []
  const err = o.dataplane.info().tunError
  // One read answers both "is it there" and "is it up": an existence check before it
  // would leave a window in which a deletion made the read throw (and the daemon die).
  const flags = err ? undefined : deviceFlags(o.tunName)
  if (err) problems.push(`device ${o.tunName}: TUN read failed (errno ${err})`)
  else if (flags === undefined) problems.push(`device ${o.tunName} is gone`)
  if (problems.length) return problems // the routes went with the device
  if (!(flags! & 1)) problems.push(`${o.tunName} is down`) // IFF_UP
  for (const c of o.clusterCIDRs) {
    if (!hasRoute(c, o.tunName)) problems.push(`route ${formatCidr(c)} dev ${o.tunName} is missing`)
  }
  return problems
}

/** The device's IFF_* flags, or undefined when there is no such device. */
function deviceFlags (name: string): number | undefined {
  try {
    return Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8'), 16)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

// /proc/net/route: "Iface Destination Gateway Flags ... Mask ..." with addresses as
// little-endian hex; /proc/net/ipv6_route: "dest plen src plen next metric ref use flags dev".
function hasRoute (c: Cidr, dev: string): boolean {
  if (c.family === 4) {
    const dest = Buffer.from(c.bytes).readUInt32LE(0).toString(16).toUpperCase().padStart(8, '0')
    const mask = (c.length === 0 ? 0 : (~0 << (32 - c.length)) >>> 0)
    const maskHex = Buffer.from([mask >>> 24, (mask >>> 16) & 255, (mask >>> 8) & 255, mask & 255]).readUInt32LE(0).toString(16).toUpperCase().padStart(8, '0')
    return readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).some((line) => {
      const f = line.trim().split(/\s+/)
      return f[0] === dev && f[1] === dest && f[7] === maskHex
    })
  }
  const dest = Buffer.from(c.bytes).toString('hex')
  const plen = c.length.toString(16).padStart(2, '0')
  return readFileSync('/proc/net/ipv6_route', 'utf8').split('\n').some((line) => {
    const f = line.trim().split(/\s+/)
    return f[0] === dest && f[1] === plen && f[9] === dev
  })
}
