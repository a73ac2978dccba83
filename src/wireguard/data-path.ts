// WireGuard between nodes, wired together: the peer table says which nodes are WireGuard peers
// (they published a key), the control side (peers.ts) runs their handshakes and timers, and the
// native data path (native/wg_js.h) seals and opens their traffic on the packet threads. What
// crosses between them is per handshake or per poll, never per packet: the packet threads queue
// handshake messages and set activity bits, which a poll every POLL_MS takes.
import { type Address, formatAddress, parseAddress } from '../net/cidr.js'
import type { PeerEntry, PeerTable } from '../peer-table.js'
import { type Dataplane, WG_ANY_RECEIVED, WG_DATA_RECEIVED, WG_DATA_SENT, WG_WANTS_SESSION } from '../native.js'
import { type HandedPeer, WireGuardPeers, type WireGuardDrop } from './peers.js'

/** How often the packet threads' queue and bits are read: at most this long is added to a first packet's handshake. */
export const POLL_MS = 20
/** How often the timers run (whitepaper 6: their deadlines are seconds; keepalives and retries need no finer grain). */
export const TICK_MS = 250
// Handshake messages taken per poll: 3,200 a second, past what the rate limiter lets through.
const MAX_HANDSHAKES_PER_POLL = 64

export interface WireGuardStats { sessions: number, established: number, drops: Partial<Record<WireGuardDrop, number>> }

export interface WireGuardDataPathOptions {
  dataplane: Pick<Dataplane, 'wgInstall' | 'wgRetire' | 'wgSend' | 'wgKeepalive' | 'wgPoll' | 'wgHand' | 'wgHanded'>
  table: Pick<PeerTable, 'list' | 'onChange' | 'encryptionOf'>
  privateKey: Buffer
  presharedKey?: Buffer
  port: number // every node's WireGuard port
  rekeyAfterMs?: number // Rekey-After-Time (default the whitepaper's 120 s)
}

export class WireGuardDataPath {
  readonly peers: WireGuardPeers
  private readonly timers: NodeJS.Timeout[] = []

  constructor (private readonly o: WireGuardDataPathOptions) {
    const dp = o.dataplane
    this.peers = new WireGuardPeers(o.privateKey, {
      send: (to, datagram) => {
        const address = parseAddress(to.address)
        if (address) dp.wgSend(address.bytes, to.port, datagram)
      },
      install: (peer, session) => {
        dp.wgInstall(peer, {
          localIndex: session.localIndex,
          remoteIndex: session.remoteIndex,
          send: session.keys.send,
          receive: session.keys.receive,
          initiator: session.initiator,
        })
      },
      retire: (localIndex) => dp.wgRetire(localIndex),
      keepalive: (peer) => { dp.wgKeepalive(peer) },
      // What waits natively for a session (16 packets a peer at most) is not dropped at a
      // give-up, as the whitepaper's queue is (6.4): it goes when a later handshake succeeds.
      flush: () => {},
    }, Date.now, Math.random, o.rekeyAfterMs)
  }

  start (): void {
    for (const p of this.o.table.list()) this.setPeer(p)
    this.o.table.onChange((changed, removed, rekeyed) => {
      for (const p of [...changed, ...rekeyed]) this.setPeer(p)
      for (const name of removed) this.peers.remove(name)
    })
    this.resume()
  }

  /** Stops the poll and the timers: nothing changes a session until resume(). */
  stop (): void {
    for (const t of this.timers) clearInterval(t)
    this.timers.length = 0
  }

  resume (): void {
    if (this.timers.length > 0) return
    this.timers.push(setInterval(() => this.poll(), POLL_MS), setInterval(() => this.peers.tick(), TICK_MS))
    for (const t of this.timers) t.unref()
  }

  /**
   * A handover: stops (resume() if it fails) and returns every session, keys included, for the
   * successor. The packet threads make no session of their own, so once stopped the sessions
   * are those the threads hold when they are joined, whose counters go with the baton.
   */
  handover (): HandedPeer[] {
    this.stop()
    return this.peers.handover()
  }

  /**
   * A successor, before its threads start: the predecessor's sessions, kept by the data path
   * until their final state comes with the baton. handed is what the predecessor sent (checked:
   * a malformed entry is skipped). Returns what adoptHanded() takes after the baton.
   */
  hand (handed: unknown): HandedPeer[] {
    const peers = handedPeers(handed)
    for (const h of peers) {
      for (const s of h.sessions) {
        this.o.dataplane.wgHand(h.name, { localIndex: s.localIndex, remoteIndex: s.remoteIndex, send: Buffer.from(s.send, 'base64'), receive: Buffer.from(s.receive, 'base64'), initiator: s.initiator })
      }
    }
    return peers
  }

  /** After the baton, with start() called: the handed sessions the data path installed become this daemon's. Returns how many. */
  adoptHanded (handed: HandedPeer[]): number {
    return this.peers.adopt(handed, new Set(this.o.dataplane.wgHanded()))
  }

  get publicKey (): Buffer { return this.peers.publicKey }

  /** Handshakes completed, peers with a live session, and handshake messages dropped by reason. */
  stats (): WireGuardStats {
    return { sessions: this.peers.sessions, established: this.peers.established(), drops: Object.fromEntries(this.peers.drops) }
  }

  private setPeer (p: PeerEntry): void {
    if (this.o.table.encryptionOf(p) !== 'wireguard' || !p.wgKey) return this.peers.remove(p.nodeName)
    this.peers.set(p.nodeName, {
      publicKey: p.wgKey,
      presharedKey: this.o.presharedKey,
      endpoint: { address: formatAddress(p.address), port: p.wgPort ?? this.o.port },
    })
  }

  /** One read of what the packet threads queued and marked (the timer runs it every POLL_MS). */
  poll (): void {
    const { handshakes, activity } = this.o.dataplane.wgPoll(MAX_HANDSHAKES_PER_POLL)
    for (const h of handshakes) {
      const address: Address = { family: h.address.length === 16 ? 6 : 4, bytes: h.address }
      this.peers.receive(h.data, { address: formatAddress(address), port: h.port })
    }
    for (const [name, bits, sent] of activity) {
      if (bits & WG_WANTS_SESSION) this.peers.wantsSession(name)
      this.peers.activity(name, {
        dataSent: (bits & WG_DATA_SENT) !== 0,
        dataReceived: (bits & WG_DATA_RECEIVED) !== 0,
        anyReceived: (bits & WG_ANY_RECEIVED) !== 0,
        sent: BigInt(sent),
      })
    }
  }
}

const KEY = /^[A-Za-z0-9+/]{43}=$/ // 32 bytes in base64

/** The handed peers that are well formed (a newer or older predecessor may send more, or other). */
function handedPeers (v: unknown): HandedPeer[] {
  if (!Array.isArray(v)) return []
  const u32 = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff
  return v.filter((h): h is HandedPeer => typeof h?.name === 'string' && Array.isArray(h.sessions) &&
    (h.lastTimestamp === undefined || (typeof h.lastTimestamp === 'string' && /^[0-9a-f]{24}$/.test(h.lastTimestamp))) &&
    h.sessions.length <= 2 && h.sessions.every((s: Record<string, unknown> | null) => s !== null && typeof s === 'object' &&
      u32(s.localIndex) && u32(s.remoteIndex) && typeof s.send === 'string' && KEY.test(s.send) &&
      typeof s.receive === 'string' && KEY.test(s.receive) && typeof s.initiator === 'boolean' && Number.isFinite(s.createdAt)))
}
