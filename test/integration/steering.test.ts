// per-cpu's steering programs, run by the kernel on a chosen CPU: the TUN's eBPF
// program (through BPF_PROG_TEST_RUN) and the receive sockets' reuseport programs
// (datagrams over loopback). Worker q runs on the q-th allowed CPU, so a CPU must map
// to its index in that list, not to CPU % workers: in a cpuset with gaps (a node whose
// other CPUs are pods' exclusive ones) the two differ. The lists here are made up, so
// two real CPUs are enough to test a gap.
import t from 'tap'
import { availableParallelism } from 'node:os'
import { testing } from '../lib/testing-addon.js'
import { vxlanFrame } from '../lib/frames.js'
import { udpPacket } from '../lib/packets.js'

// The queue of the last of `repeat` copies of a packet sent on `cpu` (the first is its flow's first);
// for a list of [packet, ms to wait before], each one's, all through one program.
const tunSteeringQueue: ((queueCpus: number[], packet: Buffer, cpu: number, repeat: number, moveBursts: boolean) => number) &
  ((queueCpus: number[], sends: Array<[Buffer, number]>, cpu: number, repeat: number, moveBursts: boolean) => number[]) =
  testing.tunSteeringQueue
// Each datagram's socket, sent from one socket from [cpu, ms to wait before, payload?] in turn.
const socketSteering: (program: 'flow' | 'cpu', queueCpus: number[], sends: Array<[number, number, Buffer?]>) => number[] =
  testing.socketSteering

const root = process.getuid?.() === 0
if (!root && process.env.CI) throw new Error('steering tests must run in CI but cannot: they need root (BPF programs)')
const why = !root ? 'needs root (loading BPF programs)' : availableParallelism() < 2 ? 'needs two CPUs to choose from' : undefined

const small = udpPacket(Buffer.alloc(32))
const small6 = udpPacket(Buffer.alloc(32), { v: 6 })
const superPacket = udpPacket(Buffer.alloc(2900)) // > 1500: what a TSO/USO send looks like

/** The queue of a flow's first packet (offloads on: the daemon's default). */
const firstQueue = (cpus: number[], packet: Buffer, cpu: number): number => tunSteeringQueue(cpus, packet, cpu, 1, true)

t.test('TUN program: a flow starts on the queue of its CPU, by position in the list', { skip: why }, async (t) => {
  t.equal(firstQueue([1, 5], small, 1), 0, 'CPUs [1, 5], sent on CPU 1: queue 0 (not 1 % 2)')
  t.equal(firstQueue([1, 5], small6, 1), 0, 'the same for IPv6')
  t.equal(firstQueue([5, 1], small, 1), 1, 'CPUs [5, 1], sent on CPU 1: queue 1')
  t.equal(firstQueue([1, 5], small, 0), 0, 'CPU 0, not in the list: 0 % 2')
  t.equal(firstQueue([0, 1], small, 0), 0, 'CPUs [0, 1]: CPU 0 -> queue 0')
  t.equal(firstQueue([0, 1], small, 1), 1, 'CPUs [0, 1]: CPU 1 -> queue 1')
  // The TUN takes the result modulo the number of queues: 2 of 2 queues is queue 0.
  t.equal(firstQueue([1, 5], superPacket, 1), 1, 'a flow that starts bulk goes to the next queue: 1')
  t.equal(firstQueue([0, 1], superPacket, 1), 2, 'from the last queue, the next is queue 0 (2 mod 2)')
})

// A flood of small packets is bulk too, but moving it pays only with offloads (GSO
// trains out, merged TUN writes in); without them both daemons' per-packet syscalls
// then share the next CPU with the receiver: 64-byte UDP 65 kpps moved, 134 kept.
t.test('TUN program: a small-packet flood moves to the next queue with offloads only', { skip: why }, async (t) => {
  t.equal(tunSteeringQueue([0, 1], small, 0, 1000, true), 1, 'offloads: 1,000 small packets at once from CPU 0 move to queue 1')
  t.equal(tunSteeringQueue([0, 1], small, 0, 1000, false), 0, 'no offloads: they stay on queue 0')
  t.equal(tunSteeringQueue([0, 1], superPacket, 0, 1, false), 1, 'a super-packet still moves')
})

// A parallel transfer (iperf3 -P 4, a download in several connections) from one CPU
// must not pile up on the one next CPU: flows that turn bulk together go round the
// others (never back to the sender's, which lost 2x on 2 CPUs), and after a quiet
// spell the next one again goes next door (steering.cc moveStep, kSpreadNs 100 ms).
t.test('TUN program: bulk flows that start together spread over the other queues', { skip: why }, async (t) => {
  const flow = (port: number): Buffer => udpPacket(Buffer.alloc(2900), { srcPort: port })
  t.same(tunSteeringQueue([0, 1, 2, 3], [[flow(1), 0], [flow(2), 0], [flow(3), 0], [flow(4), 0]], 0, 1, true), [1, 2, 3, 1],
    '4 queues, 4 flows from CPU 0: queues 1, 2, 3, then 1 again')
  t.same(tunSteeringQueue([2, 3, 0, 1], [[flow(1), 0], [flow(2), 0], [flow(1), 0], [flow(2), 0]], 1, 1, true), [4, 5, 4, 5],
    'CPUs [2, 3, 0, 1], from CPU 1 (queue 3): 4 and 5 (0 and 1 mod 4); a flow keeps its queue')
  t.same(tunSteeringQueue([0, 1], [[flow(1), 0], [flow(2), 0], [flow(3), 0]], 0, 1, true), [1, 1, 1],
    '2 queues: every flow to the other one')
  t.same(tunSteeringQueue([0, 1, 2, 3], [[flow(1), 0], [flow(2), 0], [flow(3), 250], [flow(4), 0]], 0, 1, true), [1, 2, 1, 2],
    'after 250 ms without a move the next flow goes next door again')
})

// Both programs for the receive sockets: "flow" (eBPF, per-cpu's) and "cpu" (classic
// BPF, what is left without CAP_BPF). A flow's first datagram goes to its CPU's socket.
for (const program of ['flow', 'cpu'] as const) {
  const first = (cpus: number[], cpu: number): number => socketSteering(program, cpus, [[cpu, 0]])[0]
  t.test(`receive sockets (${program}): a flow's first datagram goes to the socket of the CPU it arrives on`, { skip: why }, async (t) => {
    t.equal(first([1, 5], 1), 0, 'CPUs [1, 5], received on CPU 1: socket 0 (not 1 % 2)')
    t.equal(first([5, 1], 1), 1, 'CPUs [5, 1]: socket 1')
    t.equal(first([1, 5], 0), 0, 'CPU 0, not in the list: 0 % 2')
    t.equal(first([0, 1], 0), 0, 'CPUs [0, 1]: CPU 0 -> socket 0')
    t.equal(first([0, 1], 1), 1, 'CPUs [0, 1]: CPU 1 -> socket 1')
    t.equal(first([3, 1, 7], 1), 1, 'three sockets, CPUs [3, 1, 7]: CPU 1 -> socket 1')
  })
}

// A kernel vxlan peer's TCP flow arrives on two CPUs at once (sent from the
// application's CPU and, ACK-clocked, from the CPU its ACKs arrive on): one worker must
// take all of it, or the flow is reordered. A flow that moved for good is followed
// after 100 ms (steering.cc kFollowNs). Waits only ever get longer on a busy machine,
// so each case allows ~80 ms of delay.
t.test('receive sockets (flow): a flow stays on one socket while it arrives on two CPUs, and follows a move', { skip: why }, async (t) => {
  t.same(socketSteering('flow', [0, 1], [[0, 0], [1, 0], [0, 0], [1, 0]]), [0, 0, 0, 0],
    'arrivals on CPUs 0, 1, 0, 1: all to socket 0, the first CPU\'s')
  t.same(socketSteering('flow', [0, 1], [[1, 0], [0, 0], [1, 60], [0, 60], [1, 0]]), [1, 1, 1, 1, 1],
    'back at its own CPU within 100 ms each time: it never moves')
  t.same(socketSteering('flow', [0, 1], [[0, 0], [1, 0], [1, 20], [1, 100], [1, 0]]), [0, 0, 0, 1, 1],
    'arriving only on CPU 1 for over 100 ms: it follows, and stays')
  // A flatnet peer sends many inner flows from each of its few sockets: the flow is
  // the inner packet's, not the outer datagram's.
  const inner = (srcPort: number, v: 4 | 6 = 4): Buffer => vxlanFrame({ vni: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02', ethType: v === 6 ? 0x86dd : 0x0800, inner: udpPacket(Buffer.alloc(8), { v, srcPort }) })
  t.same(socketSteering('flow', [0, 1], [[0, 0, inner(1000)], [1, 0, inner(2000)], [0, 0, inner(2000)], [1, 0, inner(1000)]]), [0, 1, 1, 0],
    'two inner flows in one outer one, started on CPUs 0 and 1: each kept on its own CPU\'s socket')
  t.same(socketSteering('flow', [0, 1], [[0, 0, inner(1000, 6)], [1, 0, inner(2000, 6)], [0, 0, inner(2000, 6)], [1, 0, inner(1000, 6)]]), [0, 1, 1, 0],
    'the same for IPv6 inside')
  t.same(socketSteering('cpu', [0, 1], [[0, 0], [1, 0], [0, 0]]), [0, 1, 0],
    'the classic BPF fallback (no CAP_BPF) picks per datagram: the flow is split')
})
