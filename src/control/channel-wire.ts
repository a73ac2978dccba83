// The control channel's frames: each is [payload, mac], a msgpack payload and
// HMAC-SHA256(cluster key, label | receiver's nonce | payload). Binding the MAC to
// the nonce the receiver chose for this connection, plus a per-connection sequence
// number, makes a recorded frame worthless anywhere else: replays, reorders and
// reflections fail. Only `hello` (which carries no peer data) is bound to no
// nonce; it has a timestamp window and a seen-nonce cache instead.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { pack, unpack } from 'msgpackr'

export const SCHEMA = 2 // bump on an incompatible change of any message (2: hello says which end it is)
const LABEL = Buffer.from('flatnet-channel-v1')
const NO_NONCE = Buffer.alloc(0)
export const CLOCK_WINDOW_MS = 30_000 // frames stamped further from our clock are refused

export type Rejection = 'auth' | 'malformed' | 'oversized' | 'replay' | 'schema' | 'handshake'

export class ChannelError extends Error {
  constructor (readonly reason: Rejection, message: string) {
    super(message)
  }
}

export function seal (key: Buffer, receiverNonce: Buffer | undefined, message: Record<string, unknown>): [Buffer, Buffer] {
  const payload = pack({ v: SCHEMA, ts: Date.now(), ...message })
  return [payload, mac(key, receiverNonce ?? NO_NONCE, payload)]
}

/** Checks the MAC, schema and clock; returns the message. Throws ChannelError saying why not. */
export function open (key: Buffer, ownNonce: Buffer | undefined, frame: unknown): Record<string, unknown> {
  if (!Array.isArray(frame) || frame.length !== 2 || !isBytes(frame[0]) || !isBytes(frame[1])) {
    throw new ChannelError('malformed', 'frame is not [payload, mac]')
  }
  const payload = Buffer.from(frame[0])
  const given = Buffer.from(frame[1])
  const want = mac(key, ownNonce ?? NO_NONCE, payload)
  if (given.length !== want.length || !timingSafeEqual(given, want)) throw new ChannelError('auth', 'bad MAC (wrong cluster key, or a forged or replayed frame)')
  let m: unknown
  try {
    m = unpack(payload)
  } catch (err) {
    throw new ChannelError('malformed', `undecodable payload: ${(err as Error).message}`)
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new ChannelError('malformed', 'payload is not a map')
  const msg = m as Record<string, unknown>
  if (msg.v !== SCHEMA) throw new ChannelError('schema', `schema ${String(msg.v)} (this node speaks ${SCHEMA})`)
  if (typeof msg.ts !== 'number' || Math.abs(Date.now() - msg.ts) > CLOCK_WINDOW_MS) {
    throw new ChannelError('replay', `timestamp ${String(msg.ts)} outside the ${CLOCK_WINDOW_MS / 1000} s window`)
  }
  if (typeof msg.t !== 'string') throw new ChannelError('malformed', 'no message type')
  return msg
}

function mac (key: Buffer, nonce: Buffer, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(LABEL).update(nonce).update(payload).digest()
}

function isBytes (v: unknown): v is Uint8Array {
  return v instanceof Uint8Array
}

/** Hello nonces seen lately: a replayed hello inside the clock window is refused. Bounded. */
export class NonceCache {
  private readonly seen = new Map<string, number>()
  constructor (private readonly max = 65_536) {}

  /** False if this nonce was seen within the window. */
  fresh (nonce: Buffer, now = Date.now()): boolean {
    const k = nonce.toString('hex')
    const at = this.seen.get(k)
    if (at !== undefined && now - at < 2 * CLOCK_WINDOW_MS) return false
    this.seen.set(k, now)
    if (this.seen.size > this.max) {
      for (const [key, t] of this.seen) {
        if (now - t < 2 * CLOCK_WINDOW_MS && this.seen.size <= this.max) break
        this.seen.delete(key)
      }
    }
    return true
  }
}
