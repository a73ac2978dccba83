// The addon's test surface (native/testing*.cc: the packet functions, a forwarding
// table, the steering programs), built as its own target, flatnet_testing.node, so the
// daemon's addon carries none of it. FLATNET_TESTING_ADDON names another build (ASan).
import { type Dataplane, loadAddon } from '../../src/native.js'

/** testing.Table: a native forwarding table changed as the Dataplane's is, read as the workers read it. */
export interface NativeTestTable extends Pick<Dataplane, 'setTable' | 'updatePeers'> {
  lookup(destination: Buffer): string | null
  peerByAddress(underlay: Buffer): string | null
  isLocal(destination: Buffer): boolean
  peers(): string[]
  /** Looks every destination up, repeat times; returns how many were routed. */
  benchLookup(destinations: Buffer[], repeat: number): number
}
export const testing = loadAddon<{ testing: Record<string, (...args: any[]) => any> & { Table: new () => NativeTestTable } }>(
  'flatnet_testing', process.env.FLATNET_TESTING_ADDON).testing
