// The control plane's view of the peer VTEPs, and the one place that turns it into
// the native forwarding table. Every change is pushed whole: the native side swaps
// tables atomically, so flows to unchanged peers never see a gap.
import type { PeerConfig } from './config.js'
import type { Cidr } from './net/cidr.js'
import { type Dataplane, type NativeTable, nativePrefix } from './native.js'

export class PeerTable {
  private peers = new Map<string, PeerConfig>()

  constructor (private readonly dataplane: Dataplane, private readonly local: Cidr[]) {}

  /** Replaces the whole set (a static file, a full resync). */
  replaceAll (peers: PeerConfig[]): void {
    this.peers = new Map(peers.map((p) => [p.nodeName, p]))
    this.push()
  }

  list (): PeerConfig[] {
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
