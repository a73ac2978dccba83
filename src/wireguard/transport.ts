// Transport data messages in TypeScript (whitepaper 5.4.6): for tests and the interop check only —
// the daemon seals and opens them natively. The nonce is the message's own 64-bit counter, never
// reused for a key; the packet is padded with zeros to a multiple of 16 bytes (at most to the
// MTU), and an empty packet is a keepalive.
import { aeadOpen, aeadSeal } from './aead.js'
import { MESSAGE_TRANSPORT, newMessage, Transport, TRANSPORT_HEADER_LENGTH, TRANSPORT_MIN_LENGTH, type DropReason } from './messages.js'
import type { TransportKeys } from './noise.js'
import { REJECT_AFTER_MESSAGES, ReplayWindow } from './replay.js'

/** Whitepaper 6.1: Reject-After-Time, a session's lifetime. */
export const REJECT_AFTER_MS = 180_000
const EMPTY = Buffer.alloc(0)

export class Session {
  private sendCounter = 0n
  private readonly replay = new ReplayWindow()
  /** The initiator may send at once; the responder only after the first message from the initiator (key confirmation, 5.4.5). */
  confirmed: boolean

  constructor (readonly localIndex: number, readonly remoteIndex: number, readonly keys: TransportKeys,
    readonly initiator: boolean, readonly createdAt: number, private readonly now: () => number = Date.now) {
    this.confirmed = initiator
  }

  get expired (): boolean {
    return this.now() - this.createdAt >= REJECT_AFTER_MS
  }

  /** The next transport message carrying packet, or undefined when this side may not send (unconfirmed, expired, counters spent). */
  seal (packet: Buffer, mtu = 65535): Buffer | undefined {
    if (!this.confirmed || this.expired || this.sendCounter >= REJECT_AFTER_MESSAGES) return undefined
    const padded = Math.min(Math.ceil(packet.length / 16) * 16, Math.max(mtu, packet.length))
    const plain = padded === packet.length ? packet : Buffer.concat([packet, Buffer.alloc(padded - packet.length)])
    const header = newMessage(MESSAGE_TRANSPORT, TRANSPORT_HEADER_LENGTH)
    header.writeUInt32LE(this.remoteIndex >>> 0, Transport.receiver)
    header.writeBigUInt64LE(this.sendCounter, Transport.counter)
    const sealed = aeadSeal(this.keys.send, this.sendCounter, plain, EMPTY)
    this.sendCounter++
    return Buffer.concat([header, sealed])
  }

  keepalive (): Buffer | undefined {
    return this.seal(EMPTY)
  }

  /**
   * Opens a transport message addressed to this session (length, type and index checked): the
   * padded packet (empty: a keepalive), or why it is dropped. The counter is checked before the
   * decryption and recorded only after it, so that a forged message cannot move the window.
   */
  open (message: Buffer): { packet: Buffer } | { reason: DropReason } {
    if (message.length < TRANSPORT_MIN_LENGTH) return { reason: 'length' }
    if (this.expired) return { reason: 'expired' }
    const counter = message.readBigUInt64LE(Transport.counter)
    if (!this.replay.check(counter)) return { reason: 'replay' }
    const packet = aeadOpen(this.keys.receive, counter, message.subarray(Transport.packet), EMPTY)
    if (!packet) return { reason: 'decrypt' }
    if (!this.replay.accept(counter)) return { reason: 'replay' }
    this.confirmed = true
    return { packet }
  }
}
