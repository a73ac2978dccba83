// The addon's test surface (native/testing*.cc: the packet functions, a forwarding
// table, the steering programs), built as its own target, flatnet_testing.node, so the
// daemon's addon carries none of it. FLATNET_TESTING_ADDON names another build (ASan).
import { addonPath, type Dataplane, loadAddon } from '../../src/native.js'
import type { Namespace } from '../../src/lab/netns.js'

/** testing.Table: a native forwarding table changed as the Dataplane's is, read as the workers read it. */
export interface NativeTestTable extends Pick<Dataplane, 'setTable' | 'updatePeers'> {
  lookup(destination: Buffer): string | null
  peerByAddress(underlay: Buffer): string | null
  isLocal(destination: Buffer): boolean
  peers(): string[]
  /** Looks every destination up, repeat times; returns how many were routed. */
  benchLookup(destinations: Buffer[], repeat: number): number
}
/** testing.WgSession: a native WireGuard transport session (native/wg_session.h); times in ms. */
export interface NativeWgSession {
  seal(packet: Buffer, mtu: number, nowMs?: number): Buffer | undefined
  open(message: Buffer, nowMs?: number): { packet: Buffer, reason?: undefined } | { packet?: undefined, reason: string }
  /** The receive path's admission (native/wg_admit.h) with this session as the only one, held by table's peer. */
  admit(table: NativeTestTable, datagram: Buffer, peer: string, nowMs?: number): { verdict: string, packet?: Buffer }
}
export interface NativeReplayWindow { check(counter: bigint): boolean, accept(counter: bigint): boolean }
export const testing = loadAddon<{
  testing: Record<string, (...args: any[]) => any> & {
    Table: new () => NativeTestTable
    WgSession: new (localIndex: number, remoteIndex: number, sendKey: Buffer, receiveKey: Buffer, initiator: boolean, createdMs?: number) => NativeWgSession
    ReplayWindow: new () => NativeReplayWindow
  }
}>('flatnet_testing', process.env.FLATNET_TESTING_ADDON).testing

/** Sends raw Ethernet frames on ifname from inside namespace ns (as a pod with NET_RAW); resolves to how many went. */
export async function sendFramesFrom (ns: Namespace, ifname: string, frames: Buffer[]): Promise<number> {
  const file = addonPath('flatnet_testing', process.env.FLATNET_TESTING_ADDON)
  const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(file)})
    process.stdout.write(String(m.exports.testing.sendFrames(${JSON.stringify(ifname)}, ${JSON.stringify(frames.map((f) => f.toString('hex')))}.map((h) => Buffer.from(h, 'hex')))))`
  return Number(await ns.execAsync(process.execPath, ['-e', script]))
}
