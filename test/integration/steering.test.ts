// per-cpu's two steering programs, run by the kernel on a chosen CPU: the TUN's eBPF
// program (through BPF_PROG_TEST_RUN) and the receive sockets' reuseport classic BPF
// (a datagram over loopback). Worker q runs on the q-th allowed CPU, so a CPU must map
// to its index in that list, not to CPU % workers: in a cpuset with gaps (a node whose
// other CPUs are pods' exclusive ones) the two differ. The lists here are made up, so
// two real CPUs are enough to test a gap.
import t from 'tap'
import { availableParallelism } from 'node:os'
import { addon } from '../../src/native.js'
import { udpPacket } from '../lib/packets.js'

const { tunSteeringQueue, socketSteeringIndex } = addon.testing as {
  tunSteeringQueue: (queueCpus: number[], packet: Buffer, cpu: number) => number
  socketSteeringIndex: (queueCpus: number[], cpu: number) => number
}

const root = process.getuid?.() === 0
if (!root && process.env.CI) throw new Error('steering tests must run in CI but cannot: they need root (BPF programs)')
const why = !root ? 'needs root (loading BPF programs)' : availableParallelism() < 2 ? 'needs two CPUs to choose from' : undefined

const small = udpPacket(Buffer.alloc(32))
const small6 = udpPacket(Buffer.alloc(32), { v: 6 })
const superPacket = udpPacket(Buffer.alloc(2900)) // > 1500: what a TSO/USO send looks like

t.test('TUN program: a flow starts on the queue of its CPU, by position in the list', { skip: why }, async (t) => {
  t.equal(tunSteeringQueue([1, 5], small, 1), 0, 'CPUs [1, 5], sent on CPU 1: queue 0 (not 1 % 2)')
  t.equal(tunSteeringQueue([1, 5], small6, 1), 0, 'the same for IPv6')
  t.equal(tunSteeringQueue([5, 1], small, 1), 1, 'CPUs [5, 1], sent on CPU 1: queue 1')
  t.equal(tunSteeringQueue([1, 5], small, 0), 0, 'CPU 0, not in the list: 0 % 2')
  t.equal(tunSteeringQueue([0, 1], small, 0), 0, 'CPUs [0, 1]: CPU 0 -> queue 0')
  t.equal(tunSteeringQueue([0, 1], small, 1), 1, 'CPUs [0, 1]: CPU 1 -> queue 1')
  // The TUN takes the result modulo the number of queues: 2 of 2 queues is queue 0.
  t.equal(tunSteeringQueue([1, 5], superPacket, 1), 1, 'a flow that starts bulk goes to the next queue: 1')
  t.equal(tunSteeringQueue([0, 1], superPacket, 1), 2, 'from the last queue, the next is queue 0 (2 mod 2)')
})

t.test('receive sockets: a datagram goes to the socket of the CPU it arrives on', { skip: why }, async (t) => {
  t.equal(socketSteeringIndex([1, 5], 1), 0, 'CPUs [1, 5], received on CPU 1: socket 0 (not 1 % 2)')
  t.equal(socketSteeringIndex([5, 1], 1), 1, 'CPUs [5, 1]: socket 1')
  t.equal(socketSteeringIndex([1, 5], 0), 0, 'CPU 0, not in the list: 0 % 2')
  t.equal(socketSteeringIndex([0, 1], 0), 0, 'CPUs [0, 1]: CPU 0 -> socket 0')
  t.equal(socketSteeringIndex([0, 1], 1), 1, 'CPUs [0, 1]: CPU 1 -> socket 1')
  t.equal(socketSteeringIndex([3, 1, 7], 1), 1, 'three sockets, CPUs [3, 1, 7]: CPU 1 -> socket 1')
})
