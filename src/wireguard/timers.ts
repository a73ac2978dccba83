// A peer's WireGuard timers (whitepaper 6.1-6.5), as a state machine the daemon drives: it reports
// what happened (data sent or received, a handshake sent or completed, an authenticated message
// either way) with when, and asks what is due. The packet threads keep the per-peer timestamps;
// the control plane reads them, so no JavaScript runs per packet and these rules run once per
// peer and tick. Times are milliseconds of a monotonic clock.
import { REJECT_AFTER_MS } from './transport.js'

/** Whitepaper 6.1's constants. */
export const REKEY_AFTER_MESSAGES = 1n << 60n
export const REKEY_AFTER_MS = 120_000
export const REJECT_AFTER_TIME_MS = REJECT_AFTER_MS
export const REKEY_ATTEMPT_MS = 90_000
export const REKEY_TIMEOUT_MS = 5_000
export const KEEPALIVE_TIMEOUT_MS = 10_000
/** Up to this much is added to each retransmission's wait, so that peers do not retry in step (6.4). */
export const REKEY_JITTER_MS = 333
/** Initiations sent for one attempt before it is given up (RekeyAttemptTime / RekeyTimeout). */
export const MAX_INITIATIONS = REKEY_ATTEMPT_MS / REKEY_TIMEOUT_MS

export type TimerAction =
  /** Send a handshake initiation (a new one: the last is superseded). */
  | 'initiate'
  /** Send an empty transport message: the peer sent data and has heard nothing back for 10 s. */
  | 'keepalive'
  /** The attempt failed for 90 s: drop the packets waiting for a session. */
  | 'give-up'
  /** No session for 3 x Reject-After-Time: forget every key of this peer. */
  | 'forget-keys'

export interface CurrentSession {
  createdAt: number
  initiator: boolean
  /** Messages sent with it so far (its send counter). */
  sent: bigint
}

export class PeerTimers {
  private retransmitAt: number | undefined // our initiation unanswered: send another then
  private initiations = 0 // in this attempt
  private lastInitiationAt: number | undefined
  // Data received and nothing sent since: a keepalive then. It answers everything received
  // before it, so data arriving while one is due does not move it.
  private keepaliveAt: number | undefined
  private newHandshakeAt: number | undefined // data sent and nothing received since: a new handshake then
  private forgetAt: number | undefined
  private finalInitiationSent = false // 6.2's one initiation from the receive side, per session

  /** random(): [0, 1), for the retransmission jitter (injected for tests). rekeyAfterMs: Rekey-After-Time. */
  constructor (private readonly random: () => number = Math.random, private readonly rekeyAfterMs = REKEY_AFTER_MS) {}

  /** A data packet (not a keepalive) was sent at t with session (6.2: rekey on send). */
  dataSent (t: number, session: CurrentSession | undefined): TimerAction[] {
    if (this.newHandshakeAt === undefined) this.newHandshakeAt = t + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS
    // The initiator's session is renewed by it after 120 s or 2^60 messages; the responder only
    // renews one past them by time, as the initiator did not (6.2).
    if (session === undefined) return this.initiateUnlessRecent(t)
    const old = t - session.createdAt >= this.rekeyAfterMs
    if ((session.initiator && old) || session.sent >= REKEY_AFTER_MESSAGES) return this.initiateUnlessRecent(t)
    return []
  }

  /** A data packet was received at t with session (6.2: the initiator renews at 165 s). */
  dataReceived (t: number, session: CurrentSession): TimerAction[] {
    if (this.keepaliveAt === undefined) this.keepaliveAt = t + KEEPALIVE_TIMEOUT_MS
    const late = REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS
    if (session.initiator && !this.finalInitiationSent && t - session.createdAt >= late) {
      this.finalInitiationSent = true
      return this.initiateUnlessRecent(t)
    }
    return []
  }

  /** Any authenticated message sent (data, keepalive, handshake): the peer has heard from us. */
  anySent (): void {
    this.keepaliveAt = undefined
  }

  /** Any authenticated message received: we have heard from the peer. */
  anyReceived (): void {
    this.newHandshakeAt = undefined
  }

  /** An initiation was sent at t (by initiate or a retransmission). */
  initiationSent (t: number): void {
    this.lastInitiationAt = t
    this.initiations++
    this.retransmitAt = t + REKEY_TIMEOUT_MS + Math.floor(this.random() * REKEY_JITTER_MS)
  }

  /** A handshake completed at t (either side): a new session, the attempt over. */
  sessionDerived (t: number): void {
    this.retransmitAt = undefined
    this.initiations = 0
    this.finalInitiationSent = false
    this.forgetAt = t + 3 * REJECT_AFTER_TIME_MS
  }

  /** What is due at t; call it at least as often as the earliest of next(). */
  due (t: number): TimerAction[] {
    const actions: TimerAction[] = []
    if (this.retransmitAt !== undefined && t >= this.retransmitAt) {
      this.retransmitAt = undefined
      if (this.initiations >= MAX_INITIATIONS) {
        this.initiations = 0
        this.newHandshakeAt = undefined
        actions.push('give-up')
        if (this.forgetAt === undefined) this.forgetAt = t + 3 * REJECT_AFTER_TIME_MS
      } else {
        actions.push('initiate')
      }
    }
    if (this.keepaliveAt !== undefined && t >= this.keepaliveAt) {
      actions.push('keepalive')
      this.keepaliveAt = undefined
    }
    if (this.newHandshakeAt !== undefined && t >= this.newHandshakeAt) {
      this.newHandshakeAt = undefined
      if (!actions.includes('initiate')) actions.push(...this.initiateUnlessRecent(t))
    }
    if (this.forgetAt !== undefined && t >= this.forgetAt) {
      this.forgetAt = undefined
      actions.push('forget-keys')
    }
    return actions
  }

  /** The earliest time something may be due, or undefined when nothing is pending. */
  next (): number | undefined {
    const times = [this.retransmitAt, this.keepaliveAt, this.newHandshakeAt, this.forgetAt].filter((x): x is number => x !== undefined)
    return times.length ? Math.min(...times) : undefined
  }

  // At most one initiation per Rekey-Timeout outside the retransmissions (6.4), so a burst of
  // packets waiting for a session starts one handshake, not one each.
  private initiateUnlessRecent (t: number): TimerAction[] {
    if (this.retransmitAt !== undefined) return [] // an attempt is under way: its retransmissions carry it
    if (this.lastInitiationAt !== undefined && t - this.lastInitiationAt < REKEY_TIMEOUT_MS) return []
    return ['initiate']
  }
}
