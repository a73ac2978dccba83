// The control plane's view of the peer VTEPs, and the one place that turns it into
// the native forwarding table. Sources report batches of changes; each batch that
// changes forwarding is pushed once, carrying only the peers it changed (the whole
// table only the first time), so a change costs the same with 10 peers or 5,000.
// The native table changes in place under the workers, so flows to unchanged peers
// never see a gap.
import { type Cidr, contains, formatCidr, overlaps } from './net/cidr.js'
import { PrefixClaims } from './net/prefix-claims.js'
import type { Dataplane, NativePeer, NativePrefix } from './native.js'
import type { PeerChanges, PeerSink } from './control/source.js'
import { sameBytes, sameVtep, type SourceName, type VtepRecord } from './control/vtep.js'

/**
 * How traffic to a peer goes with encryption on: `wireguard`, it published a key; `plain`, it
 * did not, and VXLAN goes to it unencrypted (a mixed cluster during a rollout); `blocked`, it
 * did not and `wireguard.strict` drops what would go to it.
 */
export type EncryptionState = 'wireguard' | 'plain' | 'blocked'

export interface PeerEntry extends VtepRecord {
  since: number // ms epoch of the last change that mattered to forwarding
  restored: boolean // from the state file, not yet confirmed by its source
}

export interface PeerTableOptions {
  self: string // this node: never a peer of itself
  vni: number // records for another VNI are refused
  clusterCIDRs?: Cidr[] // records with a pod CIDR outside these are refused (undefined: no check)
  onReject?: (nodeName: string, why: string) => void
  // encryption "wireguard", with this node's public key and WireGuard port (every node's: flannel's
  // wireguard backend also uses one port cluster-wide); undefined: "none"
  encryption?: { strict: boolean, publicKey: Buffer, port: number }
}

/** Called after every push: peers whose forwarding changed, peers removed, and peers whose WireGuard key alone changed. */
export type TableListener = (changed: PeerEntry[], removed: string[], rekeyed: PeerEntry[]) => void

export class PeerTable implements PeerSink {
  private readonly peers = new Map<string, PeerEntry>()
  // Native form of each peer changed since the last push, built once per change. Until
  // the first push that is every peer, which it sends as the whole table.
  private readonly changed = new Map<string, NativePeer>()
  private readonly removed = new Set<string>()
  private installed = false // the first push sets the whole table (and the local CIDRs)
  private readonly rekeyed = new Set<string>()
  private readonly listeners: TableListener[] = []
  private readonly localNative
  private readonly claims = new PrefixClaims()
  private readonly keyHolders = new Map<string, string>() // base64 WireGuard key -> node; with encryption on only
  /** Records refused (another VNI, a CIDR outside the cluster's or overlapping another node's). */
  refused = 0

  constructor (private readonly dataplane: Pick<Dataplane, 'setTable' | 'updatePeers'>, private readonly local: Cidr[],
    private readonly options: PeerTableOptions) {
    this.localNative = local.map(nativePrefix)
  }

  update (source: SourceName, changes: PeerChanges): void {
    let changed = false
    for (const r of changes.set ?? []) changed = this.set(r) || changed
    for (const name of changes.remove ?? []) {
      const old = this.peers.get(name)
      if (old?.source !== source) continue // another source owns it now
      for (const c of old.podCIDRs) this.claims.release(c, name)
      this.releaseKey(old)
      this.peers.delete(name)
      this.changed.delete(name)
      this.rekeyed.delete(name)
      this.removed.add(name)
      changed = true
    }
    if (changed) this.push()
  }

  resync (source: SourceName, records: VtepRecord[]): void {
    const keep = new Set(records.map((r) => r.nodeName))
    const gone = [...this.peers.values()].filter((p) => p.source === source && !keep.has(p.nodeName)).map((p) => p.nodeName)
    this.update(source, { set: records, remove: gone })
  }

  /** The persisted table, installed before any source answers. */
  restore (records: VtepRecord[]): void {
    for (const r of records) this.set(r, true)
    this.push()
  }

  list (): PeerEntry[] {
    return [...this.peers.values()]
  }

  get (nodeName: string): PeerEntry | undefined {
    return this.peers.get(nodeName)
  }

  get size (): number {
    return this.peers.size
  }

  /** Called after every push with the peers whose forwarding changed, those removed and those rekeyed (the state file is written from here). */
  onChange (fn: TableListener): void {
    this.listeners.push(fn)
  }

  /** How traffic to the peer goes; undefined with encryption off. */
  encryptionOf (p: VtepRecord): EncryptionState | undefined {
    const e = this.options.encryption
    if (!e) return undefined
    return p.wgKey ? 'wireguard' : e.strict ? 'blocked' : 'plain'
  }

  /** Peers by encryption state; undefined with encryption off. */
  encryptionCounts (): Record<EncryptionState, number> | undefined {
    if (!this.options.encryption) return undefined
    const counts: Record<EncryptionState, number> = { wireguard: 0, plain: 0, blocked: 0 }
    for (const p of this.peers.values()) counts[this.encryptionOf(p) as EncryptionState]++
    return counts
  }

  private set (r: VtepRecord, restored = false): boolean {
    const reject = (why: string): false => { this.refused++; this.options.onReject?.(r.nodeName, why); return false }
    if (r.nodeName === this.options.self) return false // our own record, echoed by a source
    if (r.vni !== this.options.vni) return reject(`VNI ${r.vni} is not this cluster's ${this.options.vni}`)
    if (r.podCIDRs.some((c) => this.local.some((own) => overlaps(own, c)))) return reject('pod CIDR overlaps this node\'s')
    // A record may speak only for its own node: a CIDR outside the cluster, or inside another
    // node's (longest prefix wins in the table, so a /32 would take one pod's traffic), is
    // refused; the first claimant keeps what it has.
    const cluster = this.options.clusterCIDRs
    const outside = cluster === undefined ? undefined : r.podCIDRs.find((c) => !cluster.some((k) => contains(k, c)))
    if (outside !== undefined) return reject(`pod CIDR ${formatCidr(outside)} is outside the cluster's ${cluster?.map(formatCidr).join(', ')}`)
    for (const c of r.podCIDRs) {
      const other = this.claims.conflict(c, r.nodeName)
      if (other !== undefined) return reject(`pod CIDR ${formatCidr(c)} overlaps ${other}'s, which claimed it first`)
    }
    const encryption = this.options.encryption
    if (!r.vtepMAC && !encryption) return reject('speaks WireGuard only (no VTEP MAC), and this node does not encrypt: set "encryption": "wireguard"')
    if (encryption && r.wgKey) {
      // A key names one peer (whitepaper 2: the receiver finds the sender by its static key); a
      // second holder has a copied key file, or is impersonating the first.
      if (r.wgKey.equals(encryption.publicKey)) return reject('WireGuard public key is this node\'s own (a copied key file?)')
      const holder = this.keyHolders.get(r.wgKey.toString('base64'))
      if (holder !== undefined && holder !== r.nodeName) return reject(`WireGuard public key is ${holder}'s, which published it first`)
    }
    const old = this.peers.get(r.nodeName)
    if (old && old.source === r.source && r.version < old.version && !old.restored) return false // stale
    for (const c of old?.podCIDRs ?? []) this.claims.release(c, r.nodeName)
    for (const c of r.podCIDRs) this.claims.claim(c, r.nodeName)
    if (old) this.releaseKey(old)
    if (encryption && r.wgKey) this.keyHolders.set(r.wgKey.toString('base64'), r.nodeName)
    const same = old !== undefined && sameVtep(old, r)
    this.peers.set(r.nodeName, { ...r, since: same ? old.since : Date.now(), restored })
    if (same && !sameBytes(old.wgKey, r.wgKey)) {
      // Updated in place, never removed and re-added: the data path re-handshakes with the new
      // key. Only a key published or withdrawn changes how its traffic goes.
      this.rekeyed.add(r.nodeName)
      if (this.encryptionOf(old) === this.encryptionOf(r)) return true
    } else if (same) {
      return old.restored !== restored || old.source !== r.source // listing changed, forwarding did not
    }
    const state = this.encryptionOf(r)
    this.changed.set(r.nodeName, {
      name: r.nodeName,
      address: r.address.bytes,
      port: r.port,
      mac: r.vtepMAC ?? NO_MAC, // unused: a peer without one is reached by WireGuard only
      cidrs: r.podCIDRs.map(nativePrefix),
      ...(state === 'wireguard' ? { encryption: state, wgPort: r.wgPort ?? encryption?.port } : state === 'blocked' ? { encryption: state } : {}),
    })
    this.removed.delete(r.nodeName)
    return true
  }

  private push (): void {
    if (!this.installed) {
      this.dataplane.setTable({ local: this.localNative, peers: [...this.changed.values()] })
      this.installed = true
    } else if (this.changed.size > 0 || this.removed.size > 0) { // else only the listing changed
      this.dataplane.updatePeers({ set: [...this.changed.values()], remove: [...this.removed] })
    }
    const changed = [...this.changed.keys()].map((name) => this.peers.get(name) as PeerEntry)
    const removed = [...this.removed]
    const rekeyed = [...this.rekeyed].filter((name) => !this.changed.has(name)).map((name) => this.peers.get(name) as PeerEntry)
    this.changed.clear()
    this.removed.clear()
    this.rekeyed.clear()
    for (const fn of this.listeners) fn(changed, removed, rekeyed)
  }

  private releaseKey (p: VtepRecord): void {
    const k = p.wgKey?.toString('base64')
    if (k !== undefined && this.keyHolders.get(k) === p.nodeName) this.keyHolders.delete(k)
  }
}

const NO_MAC = Buffer.alloc(6)

// Types only from native.ts: the table (and its tests, benchmarks) must not need the addon loaded.
function nativePrefix (c: Cidr): NativePrefix {
  return { address: c.bytes, length: c.length }
}
