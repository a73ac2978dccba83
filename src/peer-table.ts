// The control plane's view of the peer VTEPs, and the one place that turns it into
// the native forwarding table. Every change is pushed whole: the native side swaps
// tables atomically, so flows to unchanged peers never see a gap.
import type { PeerConfig } from './config.js'
import type { Cidr } from './net/cidr.js'
import { type Dataplane, type NativeTable, nativePrefix } from './native.js'

export interface PeerEntry extends PeerConfig {
  source: string // which peer source announced it (static, channel, kubernetes, etcd)
  since: number // ms epoch of the last change
}

export class PeerTable {
  private peers = new Map<string, PeerEntry>()

  constructor (private readonly dataplane: Dataplane, private readonly local: Cidr[]) {}

  /** Replaces the whole set (a static file, a full resync); unchanged peers keep their age. */
  replaceAll (peers: PeerConfig[], source: string): void {
    const now = Date.now()
    this.peers = new Map(peers.map((p) => {
      const old = this.peers.get(p.nodeName)
      const same = old && JSON.stringify(strip(old)) === JSON.stringify(p)
      return [p.nodeName, { ...p, source, since: same ? old.since : now }]
    }))
    this.push()
  }

  list (): PeerEntry[] {
    return [...this.peers.values()]
  }

  private push (): void {
    const table: NativeTable = {
      local: this.local.map(nativePrefix),
      peers: this.list().map((p) => ({
        name: p.nodeName,
        address: p.address.bytes,
        port: p.port,
        mac: p.vtepMAC,
        cidrs: p.podCIDRs.map(nativePrefix),
      })),
    }
    this.dataplane.setTable(table)
  }
}

function strip (e: PeerEntry): PeerConfig {
  const { source: _source, since: _since, ...config } = e
  return config
}
