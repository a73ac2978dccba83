// The one interface every peer source implements (as flannel's subnet managers do):
// it learns VTEPs somewhere and reports batches of changes, or a full snapshot when
// it has (re)listed everything and anything it said before but not now is gone.
import type { SourceName, VtepRecord } from './vtep.js'

export interface PeerChanges {
  set?: VtepRecord[] // added or updated
  remove?: string[] // node names withdrawn
}

export interface PeerSink {
  update (source: SourceName, changes: PeerChanges): void
  /** The source's complete view: its peers not in it are removed. */
  resync (source: SourceName, records: VtepRecord[]): void
}

export interface PeerSource {
  readonly name: SourceName
  /** Resolves once the source runs (not when it has answered: the persisted table covers that gap). */
  start (sink: PeerSink): Promise<void>
  /**
   * Graceful: withdraws this node where the source supports it (channel, etcd), unless
   * withdraw is false: a successor carries on with the same VTEP (src/handover.ts).
   */
  stop (options?: { withdraw?: boolean }): Promise<void>
  /** Counters for `flatnet stats`. */
  stats? (): Record<string, number>
  /** Whether it is connected and in sync right now (metrics: flatnet_source_up). */
  up (): boolean
}
