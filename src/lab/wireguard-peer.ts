// A WireGuard peer made of flatnet's TypeScript handshake (src/wireguard/) and its test-only
// transport seal/open, for the interop test against wireguard-go: run inside a lab namespace
// (`ip netns exec`, hence a script of its own), it binds the underlay port and plays one node as
// flannel's wireguard backend configures it, carrying one ICMP echo inside the tunnel.
//   node wireguard-peer.js '<json Options>'
// Prints one JSON line per event: ready, drop (with its reason), session, echo, done or timeout.
import dgram from 'node:dgram'
import { isIPv6 } from 'node:net'
import { parseAddress } from '../net/cidr.js'
import { Handshaker, type Endpoint, type Outcome } from '../wireguard/handshaker.js'
import { parseKey } from '../wireguard/keys.js'
import type { Session } from '../wireguard/transport.js'

export interface WireGuardPeerOptions {
  /** initiate: handshake first, then ping target from podAddress; respond: answer the other side's handshake and its ping. */
  mode: 'initiate' | 'respond'
  privateKey: string // base64, as `wg genkey`
  peerPublicKey: string
  presharedKey?: string
  bind: string // the underlay address
  port: number
  endpoint: Endpoint // the other node's underlay address and port
  podAddress: string // the inner source (in our allowed IPs on the other side)
  target?: string // initiate: the address to ping
  timeoutMs: number
  /** initiate: first send an initiation with a broken mac1 (the other side must ignore it). */
  hostileFirst?: boolean
  /** Act as a responder under load: handshake messages need a valid mac2, else get a cookie reply. */
  underLoad?: boolean
}

function emit (event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n')
}

/** RFC 1071 internet checksum. */
export function internetChecksum (buf: Buffer): number {
  let sum = 0
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i)
  if (buf.length & 1) sum += buf[buf.length - 1] << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

/** An IPv4 packet carrying an ICMP echo request (type 8) or reply (type 0), checksums filled. */
export function icmpEcho (type: 0 | 8, src: string, dst: string, id: number, seq: number, payload: Buffer): Buffer {
  const icmp = Buffer.concat([Buffer.alloc(8), payload])
  icmp[0] = type
  icmp.writeUInt16BE(id, 4)
  icmp.writeUInt16BE(seq, 6)
  icmp.writeUInt16BE(internetChecksum(icmp), 2)
  const ip = Buffer.alloc(20)
  ip[0] = 0x45
  ip.writeUInt16BE(20 + icmp.length, 2)
  ip.writeUInt16BE(0x4000, 6) // don't fragment
  ip[8] = 64
  ip[9] = 1 // ICMP
  const s = parseAddress(src)
  const d = parseAddress(dst)
  if (s?.family !== 4 || d?.family !== 4) throw new Error('icmpEcho: IPv4 addresses')
  s.bytes.copy(ip, 12)
  d.bytes.copy(ip, 16)
  ip.writeUInt16BE(internetChecksum(ip), 10)
  return Buffer.concat([ip, icmp])
}

export interface ParsedEcho { type: number, src: string, dst: string, id: number, seq: number, payload: Buffer, checksumsOk: boolean }

/** An ICMP echo in an IPv4 packet (its padding after the IP total length ignored), or undefined. */
export function parseIcmpEcho (packet: Buffer): ParsedEcho | undefined {
  if (packet.length < 28 || packet[0] !== 0x45 || packet[9] !== 1) return undefined
  const total = packet.readUInt16BE(2)
  if (total < 28 || total > packet.length) return undefined
  const ip = packet.subarray(0, 20)
  const icmp = packet.subarray(20, total)
  if (icmp[0] !== 0 && icmp[0] !== 8) return undefined
  return {
    type: icmp[0],
    src: [...ip.subarray(12, 16)].join('.'),
    dst: [...ip.subarray(16, 20)].join('.'),
    id: icmp.readUInt16BE(4),
    seq: icmp.readUInt16BE(6),
    payload: Buffer.from(icmp.subarray(8)),
    checksumsOk: internetChecksum(ip) === 0 && internetChecksum(icmp) === 0,
  }
}

function main (options: WireGuardPeerOptions): void {
  const key = (text: string | undefined, what: string): Buffer => {
    const k = text === undefined ? undefined : parseKey(text)
    if (!k) throw new Error(`${what}: not a base64 32-byte key`)
    return k
  }
  const hs = new Handshaker(key(options.privateKey, 'privateKey'))
  const peer = hs.addPeer({
    publicKey: key(options.peerPublicKey, 'peerPublicKey'),
    presharedKey: options.presharedKey === undefined ? undefined : key(options.presharedKey, 'presharedKey'),
  })
  hs.underLoad = options.underLoad === true
  const socket = dgram.createSocket(isIPv6(options.bind) ? 'udp6' : 'udp4')
  const drops: Record<string, number> = {}
  const payload = Buffer.from('flatnet wireguard interop 0123456789abcdef')
  const echoId = process.pid & 0xffff
  let session: Session | undefined
  let retry: NodeJS.Timeout | undefined

  // Closed only once the last datagram has left: a socket closed with a send queued drops it.
  let sending = 0
  let closing = false
  const send = (message: Buffer): void => {
    sending++
    socket.send(message, options.endpoint.port, options.endpoint.address, () => {
      if (--sending === 0 && closing) socket.close()
    })
  }
  const finish = (event: Record<string, unknown>): void => {
    clearTimeout(deadline)
    clearInterval(retry)
    emit({ ...event, drops })
    closing = true
    if (sending === 0) socket.close()
  }
  const deadline = setTimeout(() => finish({ event: 'timeout' }), options.timeoutMs)

  const handle = (o: Outcome): void => {
    switch (o.kind) {
      case 'drop':
        drops[o.reason] = (drops[o.reason] ?? 0) + 1
        emit({ event: 'drop', reason: o.reason })
        return
      case 'cookie':
        send(o.message)
        emit({ event: 'cookie' })
        return
      case 'cookie-stored':
        return
      case 'response':
        session = o.session
        send(o.message)
        emit({ event: 'session', role: 'responder', localIndex: o.session.localIndex, remoteIndex: o.session.remoteIndex })
        return
      case 'session': {
        session = o.session
        clearInterval(retry)
        emit({ event: 'session', role: 'initiator', localIndex: o.session.localIndex, remoteIndex: o.session.remoteIndex })
        const request = icmpEcho(8, options.podAddress, options.target as string, echoId, 1, payload)
        send(o.session.seal(request) as Buffer)
        return
      }
      case 'data': {
        if (o.packet.length === 0) {
          emit({ event: 'keepalive' })
          return
        }
        const echo = parseIcmpEcho(o.packet)
        if (!echo) {
          emit({ event: 'packet', length: o.packet.length })
          return
        }
        emit({ event: 'echo', ...echo, payload: echo.payload.toString('hex') })
        if (options.mode === 'initiate' && echo.type === 0) {
          finish({ event: 'done', reply: { ...echo, payload: echo.payload.toString('hex') }, sent: payload.toString('hex'), id: echoId })
        } else if (options.mode === 'respond' && echo.type === 8) {
          // Answer as the pod would: the reply confirms the tunnel works back the other way too.
          const reply = icmpEcho(0, echo.dst, echo.src, echo.id, echo.seq, echo.payload)
          const sealed = o.session.seal(reply)
          if (sealed) send(sealed)
          finish({ event: 'done', request: { ...echo, payload: echo.payload.toString('hex') }, replied: sealed !== undefined })
        }
      }
    }
  }

  socket.on('message', (msg, rinfo) => handle(hs.receive(msg, { address: rinfo.address, port: rinfo.port })))
  socket.on('error', (err) => {
    emit({ event: 'error', message: err.message })
    process.exit(1)
  })
  socket.bind(options.port, options.bind, () => {
    emit({ event: 'ready', publicKey: hs.local.publicKey.toString('base64') })
    if (options.mode !== 'initiate') return
    const initiate = (): void => {
      if (session) return
      const init = hs.initiate(peer)
      if (init) send(init)
    }
    if (options.hostileFirst) {
      const bad = hs.initiate(peer) as Buffer
      bad[bad.length - 32] ^= 0xff // mac1
      send(bad)
    }
    // Rekey-Timeout (whitepaper 6.4) shortened: a lost initiation is sent again, a later timestamp each time.
    setTimeout(initiate, options.hostileFirst ? 50 : 0)
    retry = setInterval(initiate, 1000)
  })
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  main(JSON.parse(process.argv[2] ?? '{}') as WireGuardPeerOptions)
}
