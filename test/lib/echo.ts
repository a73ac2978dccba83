// ping through the lab (iputils-ping): ICMP across the overlay, for the tests that
// check it; the Node-only traffic (echo, sink, UDP round trips) is src/lab/traffic.ts.
import type { Pod } from '../../src/lab/cluster.js'
import type { Namespace } from '../../src/lab/netns.js'

/** ping or ping -6, a few packets; true when they came back. */
export async function pingFrom (from: Namespace, address: string, count = 2, waitS = 2): Promise<boolean> {
  try {
    await from.execAsync('ping', [address.includes(':') ? '-6' : '-4', '-c', String(count), '-i', '0.2', '-W', String(waitS), '-q', address], Math.max(15_000, (count + waitS + 5) * 1000))
    return true
  } catch {
    return false
  }
}

/** Pings at 20/s for `seconds` in the background; resolves to [sent, received]. By count,
 *  not `-w seconds`: a deadline stops ping with the last echo's reply still on its way,
 *  counted lost (1 of 37 in a CI run of faults.test.ts), where `-c` waits for it (`-W 1`). */
export function steadyPing (from: Pod, to: string, seconds: number): Promise<[number, number]> {
  const count = String(Math.round(seconds * 20))
  return from.ns.execAsync('ping', ['-i', '0.05', '-W', '1', '-c', count, '-q', to], (seconds + 10) * 1000)
    .catch((err: { stdout?: string }) => err.stdout ?? '') // exit 1 when some were lost
    .then((out) => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
      return m ? [Number(m[1]), Number(m[2])] : [0, 0]
    })
}

/** ms until one ping from `from` to `to` is answered, polling; -1 after timeoutMs. */
export async function msUntilPing (from: Pod, to: string, timeoutMs = 10_000, since = Date.now()): Promise<number> {
  while (Date.now() - since < timeoutMs) {
    try {
      await from.ns.execAsync('ping', ['-c', '1', '-W', '0.2', '-q', to], 5_000)
      return Date.now() - since
    } catch { /* not yet */ }
  }
  return -1
}
