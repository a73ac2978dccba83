// VTEP MAC addresses. A stable MAC matters: peers cache it (neighbour and FDB
// entries), so one that changed on restart would strand traffic (flannel#1330).
import { createHash } from 'node:crypto'

export function parseMac (text: string): Buffer | undefined {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(text)) return undefined
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)))
}

export function formatMac (mac: Buffer): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':')
}

/** A locally administered unicast MAC derived from the node name: same name, same MAC. */
export function macFromName (name: string): Buffer {
  const mac = createHash('sha256').update(`flatnet-vtep:${name}`).digest().subarray(0, 6)
  mac[0] = (mac[0] & 0xfc) | 0x02
  return Buffer.from(mac)
}
