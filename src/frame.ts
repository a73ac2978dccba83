// Length-prefixed msgpack frames over a stream socket: a 4-byte big-endian length,
// then one msgpackr value. Shared by the local control socket and the control
// channel. A frame over the limit, or one that does not decode, ends the stream:
// the peer is broken or hostile, and nothing it sent is acted on.
import type { Socket } from 'node:net'
import { pack, unpack } from 'msgpackr'

export const MAX_FRAME = 1 << 20

export function writeFrame (socket: Socket, value: unknown): void {
  const body = pack(value)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length)
  socket.write(Buffer.concat([head, body]))
}

export class FrameError extends Error {}

/**
 * Calls onFrame for each complete frame; onError (then destroys the socket) on a bad one.
 * maxFrame may change as the connection goes (a peer not yet authenticated gets less); what
 * is buffered is never more than it and one chunk.
 */
export function readFrames (socket: Socket, onFrame: (value: unknown) => void,
  onError: (err: FrameError) => void, maxFrame: number | (() => number) = MAX_FRAME): void {
  let pending: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    // A frame that ended the connection ends the rest of the chunk too: nothing after it is read.
    while (pending.length >= 4 && !socket.destroyed) {
      const len = pending.readUInt32BE(0)
      const max = typeof maxFrame === 'number' ? maxFrame : maxFrame()
      if (len > max) return fail(new FrameError(`frame of ${len} bytes exceeds the ${max}-byte limit`))
      if (pending.length < 4 + len) return
      const body = pending.subarray(4, 4 + len)
      pending = pending.subarray(4 + len)
      let value: unknown
      try {
        value = unpack(body)
      } catch (err) {
        return fail(new FrameError(`undecodable frame: ${(err as Error).message}`))
      }
      onFrame(value)
    }
  })
  function fail (err: FrameError): void {
    pending = Buffer.alloc(0)
    onError(err)
    socket.destroy()
  }
}
