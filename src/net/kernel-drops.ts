// What the kernel drops around the data plane, which the data plane cannot count
// because those packets never reach it: packets routed into the TUN while its queue
// was full (the workers did not read them in time: overload, or a stalled daemon),
// packets the workers wrote that the kernel refused, and datagrams for the VTEP port
// dropped at a full socket receive buffer. Read from /proc/self/net, which is the
// daemon's own network namespace (the host's in the DaemonSet), at scrape time.
import { readFileSync } from 'node:fs'

export interface KernelDrops {
  tunQueue: number // TX drops of the TUN device: not read by the workers in time
  tunWrite: number // RX drops of the TUN device: written by the workers, dropped by the kernel
  underlaySocket: number // the receive sockets on the VTEP port: datagrams dropped, buffer full
}

export function kernelDrops (tunName: string, port: number, net = '/proc/self/net'): KernelDrops {
  // A file that cannot be read counts nothing (udp6 without IPv6): a metric must not stop the daemon.
  const read = (file: string): string => { try { return readFileSync(`${net}/${file}`, 'utf8') } catch { return '' } }
  return { ...tunDrops(read('dev'), tunName), underlaySocket: socketDrops(read('udp'), port) + socketDrops(read('udp6'), port) }
}

/** /proc/net/dev: "name: rx bytes packets errs drop fifo frame compressed multicast, tx bytes packets errs drop ...". */
export function tunDrops (procNetDev: string, tunName: string): { tunQueue: number, tunWrite: number } {
  for (const line of procNetDev.split('\n')) {
    const colon = line.indexOf(':')
    if (colon < 0 || line.slice(0, colon).trim() !== tunName) continue
    const n = line.slice(colon + 1).trim().split(/\s+/).map(Number)
    return { tunQueue: n[11] ?? 0, tunWrite: n[3] ?? 0 }
  }
  return { tunQueue: 0, tunWrite: 0 } // the device is gone (being reopened): nothing to count
}

/** /proc/net/udp(6): the drops (last column) of every socket bound to the port (local_address "ADDR:PORT" in hex). */
export function socketDrops (procNetUdp: string, port: number): number {
  let drops = 0
  for (const line of procNetUdp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 13 || parseInt(f[1].split(':')[1], 16) !== port) continue
    drops += Number(f[f.length - 1])
  }
  return drops
}

/**
 * Returns a check that reports what grew since it last reported, at most once per
 * `everyMs` (a log line, not a flood of them); undefined when nothing grew. A count
 * that went down (the TUN was re-created) starts counting afresh.
 */
export function dropGrowth (read: () => KernelDrops, everyMs: number, now = Date.now): () => KernelDrops | undefined {
  let since = read()
  let reported = -Infinity
  return () => {
    if (now() - reported < everyMs) return undefined
    const d = read()
    const grown: KernelDrops = { tunQueue: d.tunQueue - since.tunQueue, tunWrite: d.tunWrite - since.tunWrite, underlaySocket: d.underlaySocket - since.underlaySocket }
    const counts = Object.values(grown)
    if (counts.some((n) => n < 0)) { since = d; return undefined }
    if (!counts.some((n) => n > 0)) return undefined
    since = d
    reported = now()
    return grown
  }
}

/** The kernel's UDP counters of a namespace by name (RcvbufErrors, InErrors, ...): /proc/net/snmp, a "Udp:" names line then a values line. */
export function udpCounters (procNetSnmp: string): Record<string, number> {
  const [names = [], values = []] = procNetSnmp.split('\n').filter((l) => l.startsWith('Udp:')).map((l) => l.trim().split(/\s+/).slice(1))
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]))
}
