// Whether this process holds a capability, from /proc/self/status's CapEff mask (proc(5)).
// bpf() fails with EPERM both without CAP_BPF and when a seccomp profile refuses it
// despite CAP_BPF; the log must name the right one.
import { readFileSync } from 'node:fs'

export const CAP_BPF = 39 // linux/capability.h

/** True when the effective set holds capability `bit`; false when it does not or /proc cannot tell. */
export function hasCapability (bit: number, status?: string): boolean {
  try {
    const mask = /^CapEff:\s+([0-9a-f]+)$/m.exec(status ?? readFileSync('/proc/self/status', 'utf8'))?.[1]
    return mask !== undefined && ((BigInt(`0x${mask}`) >> BigInt(bit)) & 1n) === 1n
  } catch {
    return false
  }
}
