// Where the load generators run. On this kind of machine (a small VM) the scheduler's
// choice of CPUs changes results run to run far more than the data planes differ:
// iperf3's sender and receiver sharing a CPU halves TCP throughput, and a ping-pong
// whose ends sit on different CPUs pays a ~50 us cross-CPU wake-up that comes and goes.
// Pinning makes those choices the same for every mode.
import { availableParallelism } from 'node:os'

/** The command and arguments that run `cmd` on `cpu` (unpinned when there is no such CPU). */
export function onCpu (cpu: number, cmd: string, args: string[]): [string, string[]] {
  if (cpu >= availableParallelism()) return [cmd, args]
  return ['taskset', ['-c', String(cpu), cmd, ...args]]
}

/** Throughput: sender and receiver on different CPUs, as on two machines. */
export const SENDER_CPU = 0
export const RECEIVER_CPU = 1
/** Latency: both ends of every ping-pong (RTT, TCP_RR, UDP_RR) and of TCP_CRR on one CPU, so no cross-CPU wake-up is measured. */
export const PING_PONG_CPU = 0
