// WireGuard's four message layouts (whitepaper 5.4.2-5.4.7) and the reasons a datagram is dropped.
// Every field is at a fixed offset; the first 4 bytes are the type as a little-endian u32 (1 byte
// of type, 3 reserved zero bytes), which is how wireguard-go reads them too.

export const MESSAGE_INITIATION = 1
export const MESSAGE_RESPONSE = 2
export const MESSAGE_COOKIE_REPLY = 3
export const MESSAGE_TRANSPORT = 4

export const INITIATION_LENGTH = 148
export const RESPONSE_LENGTH = 92
export const COOKIE_REPLY_LENGTH = 64
export const TRANSPORT_HEADER_LENGTH = 16 // type, receiver index, 64-bit counter
export const TRANSPORT_MIN_LENGTH = TRANSPORT_HEADER_LENGTH + 16 // a keepalive: an empty packet and its tag

// Initiation (5.4.2): type, sender, ephemeral, static (32 + tag), timestamp (12 + tag), mac1, mac2.
export const Initiation = { sender: 4, ephemeral: 8, static: 40, timestamp: 88, mac1: 116, mac2: 132 } as const
// Response (5.4.3): type, sender, receiver, ephemeral, empty (tag only), mac1, mac2.
export const Response = { sender: 4, receiver: 8, ephemeral: 12, empty: 44, mac1: 60, mac2: 76 } as const
// Cookie reply (5.4.7): type, receiver, 24-byte nonce, cookie (16 + tag).
export const CookieReply = { receiver: 4, nonce: 8, cookie: 32 } as const
// Transport data (5.4.6): type, receiver, counter (little-endian u64), the sealed packet.
export const Transport = { receiver: 4, counter: 8, packet: 16 } as const

/** Why a datagram was dropped: each is counted by its name. */
export type DropReason =
  | 'length' // not the exact size of its type (or a transport message shorter than a tag)
  | 'type' // not one of the four types, or reserved bytes not zero
  | 'mac1' // mac1 does not verify: not meant for this key (checked before any public-key work)
  | 'index' // no handshake or session of ours has this receiver index
  | 'peer' // the initiator's static key is no peer of ours
  | 'timestamp' // an initiation not newer than the last one from that peer (a replay)
  | 'decrypt' // an AEAD tag does not verify (wrong key, wrong PSK, tampering)
  | 'replay' // a transport counter already seen, or older than the window
  | 'expired' // a session past its lifetime (whitepaper 6.1: reject after 180 s)

/** The message type of a datagram whose first four bytes are a known type with zero reserved bytes, else 0. */
export function messageType (datagram: Buffer): number {
  if (datagram.length < 4) return 0
  const t = datagram.readUInt32LE(0)
  return t >= MESSAGE_INITIATION && t <= MESSAGE_TRANSPORT ? t : 0
}

/** The exact length each handshake type must have; transport messages are checked by their minimum. */
export function lengthOk (type: number, length: number): boolean {
  switch (type) {
    case MESSAGE_INITIATION: return length === INITIATION_LENGTH
    case MESSAGE_RESPONSE: return length === RESPONSE_LENGTH
    case MESSAGE_COOKIE_REPLY: return length === COOKIE_REPLY_LENGTH
    case MESSAGE_TRANSPORT: return length >= TRANSPORT_MIN_LENGTH
    default: return false
  }
}

/** A zeroed message of a type, its type field written. */
export function newMessage (type: number, length: number): Buffer {
  const m = Buffer.alloc(length)
  m.writeUInt32LE(type, 0)
  return m
}
