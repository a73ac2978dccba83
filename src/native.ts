// The one place that loads the addon, and the typed surface the rest of the
// TypeScript sees. Arguments are checked here (or earlier, in config.ts), so the
// native side only converts them.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { Cidr } from './net/cidr.js'

export interface DataplaneOptions {
  tunName: string
  offloads: boolean
  underlayAddress: Buffer
  port: number
  vni: number
  vtepMAC: Buffer
  sendSockets: number // outer source ports the flow hash spreads over
  batch: number // packets per wakeup
  busyPollMicros: number // keep polling this long after traffic before sleeping (0 = never)
  workers: 'auto' | 'pipeline' | 'per-cpu' // per-cpu: a worker per CPU, TUN queues and receive sockets steered by CPU
  mtu?: number // the TUN's: a kernel peer's TCP super-packet received whole (veth underlay) is cut to it
  memoryBudget: number // bytes the workers' packet buffers may take (0 = no bound): per-cpu gets fewer workers than CPUs past it
  adopt?: AdoptedDataplane // run on a predecessor's descriptors (src/handover.ts) instead of opening new ones
  wgPort?: number // WireGuard's UDP port: a socket per queue on it (absent: WireGuard off)
}

/** What a running data plane is made of, less its descriptors: what a successor needs to run on them. */
export interface HandoverState {
  queueCpus: number[] // per-cpu: queue q's CPU; empty: the pipeline
  queues: number
  wgQueues: number // WireGuard sockets handed after the receive sockets (0: off)
  tunOffloads: number
  tunSteeringErrno: number
  groOn: boolean
  perCpuErrno: number
  socketSteering: string
  socketSteeringErrno: number
}
export interface AdoptedDataplane extends HandoverState {
  tun: number[] // TUN queue descriptors, as received
  rx: number[] // receive sockets, as received
  wg?: number[] // WireGuard sockets, as received
  baton: number // the predecessor's pipe: the threads start once it is written or closed
}

export interface NativePrefix { address: Buffer, length: number }
export interface NativePeer {
  name: string
  address: Buffer
  port: number
  mac: Buffer
  cidrs: NativePrefix[]
  // Encryption on: 'wireguard' seals its traffic and sends it to address:wgPort; 'blocked' drops it.
  encryption?: 'wireguard' | 'blocked'
  wgPort?: number
}
export interface NativeTable { local: NativePrefix[], peers: NativePeer[] }
/** The peers that changed since the last push: set adds or replaces by name, remove drops by name. */
export interface NativePeerChanges { set: NativePeer[], remove: string[] }

export interface WorkerStats { packets: number, bytes: number, batches: number, syscalls: number, coalesced: number, partialChecksums: number }
export interface PeerStats { name: string, txPackets: number, txBytes: number, rxPackets: number, rxBytes: number }
export interface QueueStats { txPackets: number, rxPackets: number }
export interface DataplaneStats { tx: WorkerStats, rx: WorkerStats, drops: Record<string, number>, peers: PeerStats[], queues: QueueStats[] }
export interface DataplaneInfo {
  tunName: string
  vnetHdr: boolean
  tunCsum: boolean
  tunTso: boolean
  tunUso: boolean
  udpGro: boolean
  udpGso: boolean
  udpGsoErrno: number // why UDP GSO was turned off (EIO = 5), 0 if it was not
  tunError: number // last TUN read errno (device deleted), 0 if none
  queues: number // TUN queues = receive sockets = workers (per-cpu), else 1
  workers: 'pipeline' | 'per-cpu' // the layout running ('auto' resolved)
  perCpuErrno: number // auto: why the workers are the pipeline (the steering program's load errno: EPERM without CAP_BPF), else 0
  allowedCpus: number // CPUs the daemon may run on; per-cpu has fewer workers when memoryBudget holds fewer
  packetMemoryPerWorker: number // bytes of packet buffers a worker holds under load
  tunSteeringErrno: number // per-cpu: why the TUN does not pick queues by CPU (then by flow hash), 0 if it does
  socketSteering: 'flow' | 'cpu' | 'hash' | 'none' // per-cpu: a flow keeps the socket of its CPU; without CAP_BPF each datagram that of the CPU it arrives on; failing that, by hash; none: one socket
  socketSteeringErrno: number // per-cpu: why the receive sockets do not keep flows (EPERM without CAP_BPF), 0 if they do
  takingOver: boolean // started on a predecessor's descriptors, its threads not yet stopped
}

export interface Dataplane {
  start(): void
  stop(): void
  handoverState(): HandoverState
  /** Passes the TUN queues, the receive sockets and a baton pipe to the successor listening at path (SCM_RIGHTS); forwarding goes on. */
  handTo(path: string): void
  /**
   * Stops the packet threads and passes the baton: the successor's start. passSessions: the
   * WireGuard sessions' final state goes with it (a successor that speaks handover version 2).
   * 0, or an errno (EPIPE: it is gone; start() resumes).
   */
  handOff(passSessions: boolean): number
  /** Makes the native table exactly this one (first install, restore): peers absent from it are removed. */
  setTable(table: NativeTable): void
  /** Applies only the changed peers: costs the same with 10 peers or 5,000. */
  updatePeers(changes: NativePeerChanges): void
  /** peers: the maxPeers busiest (bytes both ways), busiest first; all by default (an object per peer: 5,000 at scale). */
  stats(maxPeers?: number): DataplaneStats
  info(): DataplaneInfo
  /** Reopens the TUN by name (it was deleted): loops restarted around the swap; sockets, table, counters kept. */
  reopenTun(): void
  /** WireGuard (native/wg_js.h): peer's traffic is sealed with this session from now on; false if it is no WireGuard peer. */
  wgInstall(peer: string, session: NativeWgSession): boolean
  /** The session with this local index is used no more. */
  wgRetire(localIndex: number): void
  /** Sends a datagram from the WireGuard port; false if the socket refused it. */
  wgSend(address: Buffer, port: number, datagram: Buffer): boolean
  /** An empty transport message to peer; false when no session may send to it yet. */
  wgKeepalive(peer: string): boolean
  /** The handshake messages received (at most maxHandshakes), and the peers with activity since the last poll. */
  wgPoll(maxHandshakes: number): WgPoll
  /** A successor, before its threads start: a session its predecessor had, installed when the predecessor's final state of it comes with the baton. */
  wgHand(peer: string, session: NativeWgSession): boolean
  /** After the baton: the local indexes of the handed sessions installed (the others are forgotten). */
  wgHanded(): number[]
}

export interface NativeWgSession { localIndex: number, remoteIndex: number, send: Buffer, receive: Buffer, initiator: boolean }
/** Bits of a peer's activity (native/wg_table.h WgActivity). */
export const WG_DATA_SENT = 1
export const WG_DATA_RECEIVED = 2
export const WG_ANY_RECEIVED = 4
export const WG_WANTS_SESSION = 8
export interface WgPoll {
  handshakes: Array<{ data: Buffer, address: Buffer, port: number }>
  /** [peer, activity bits, messages its newest session has sent] */
  activity: Array<[string, number, number]>
}

interface Addon {
  Dataplane: new (options: DataplaneOptions) => Dataplane
  /** A unix socket (0600) where a successor waits for the descriptors; returns its fd. */
  listenHandover(path: string): number
  /** Accepts one connection on the fd within timeoutMs and returns the descriptors it passed. */
  receiveDescriptors(fd: number, timeoutMs: number): number[]
  closeDescriptor(fd: number): void
  /** The uid at the other end of a unix socket (SO_PEERCRED); -1 when there is none. */
  peerUid(fd: number): number
  /** A non-blocking NETLINK_NETFILTER socket bound to an NFLOG group, copying copyRange bytes of each packet; close with closeDescriptor. */
  nflogOpen(group: number, copyRange: number): number
  /** What the group queued, about max records at most, without blocking; overruns: times the socket's buffer overflowed. */
  nflogRead(fd: number, max: number): { records: NflogRecord[], overruns: number }
  /** TCP connect probes watched by a native thread (native/prober.h); each times out after timeoutMs. */
  Prober: new (timeoutMs: number) => NativeProber
  /** Keyed BLAKE2s (OpenSSL 3's BLAKE2SMAC, native/blake2s_mac.h): key 1-32 bytes, outLen 1-32. */
  blake2sMac(key: Buffer, data: Buffer, outLen: number): Buffer
  /** A child by posix_spawn (native/spawn.h) with non-blocking pipes to its stdin, stdout and stderr, ours to close. */
  spawnPiped(file: string, args: string[]): { pid: number, stdin: number, stdout: number, stderr: number }
  /** A spawnPiped child's exit, reaped; undefined while it runs. */
  reap(pid: number): { code?: number, signal?: number } | undefined
}

export interface NativeProber {
  /** Opens a probe from src to dst:port (4 or 16 bytes each, of family). */
  probe(id: number, family: 4 | 6, dst: Buffer, src: Buffer, port: number): void
  /** The results since the last take: [id, answered (1/0), rtt in microseconds, errno] each. */
  take(): Float64Array
  stop(): void
}

/** One packet an NFLOG group received (native/nflog.h): ports 0 where the copy has none (ICMP, a later fragment). */
export interface NflogRecord {
  family: 4 | 6
  saddr: string
  daddr: string
  proto: number
  sport: number
  dport: number
  /** The log rule's prefix. */
  prefix: string
  indev: number
  outdev: number
  physindev: number
  physoutdev: number
  /** The group's sequence number (NFULNL_CFG_F_SEQ): a gap is records lost. */
  seq?: number
}

/** The file of build/Release/<name>.node (or the one an environment variable names, e.g. an ASan build). */
export function addonPath (name: string, override: string | undefined): string {
  let file = override
  // src/native.ts runs from src/ (tests) or dist/src/ (the built CLI).
  for (const rel of [`../build/Release/${name}.node`, `../../build/Release/${name}.node`]) {
    if (file) break
    const candidate = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(candidate)) file = candidate
  }
  if (!file) throw new Error(`flatnet native addon ${name}.node not built: run \`npm install\` (or \`npx node-gyp rebuild\`) in the repository`)
  return file
}

export function loadAddon<T> (name: string, override: string | undefined): T {
  return createRequire(import.meta.url)(addonPath(name, override)) as T
}

export const addon: Addon = loadAddon<Addon>('flatnet', process.env.FLATNET_ADDON)

export function nativePrefix (c: Cidr): NativePrefix {
  return { address: c.bytes, length: c.length }
}
