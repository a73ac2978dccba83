// Whether this host can make the kernel's vxlan device, which the demo's kernel node and
// the bench's kernel-vxlan mode need and flatnet does not. Probed by making one in a
// throwaway namespace, as the lab makes it: the module may be present and still refused
// (modules_disabled, a container without CAP_SYS_MODULE, a locked-down kernel).
import { Namespace } from './netns.js'

/**
 * A test hook: with FLATNET_LAB_NO_VXLAN=1 the probe fails as on a host that refuses the
 * vxlan module, so a test can run the demo and the bench as such a host would.
 */
export const NO_VXLAN_HOOK = 'FLATNET_LAB_NO_VXLAN'

/** Why the kernel cannot make a vxlan device here, as one line; undefined when it can. */
export async function kernelVxlanUnavailable (): Promise<string | undefined> {
  if (process.env[NO_VXLAN_HOOK] === '1') return `the kernel refused a vxlan device (emulated by ${NO_VXLAN_HOOK}=1)`
  const probe = Namespace.create(`flatnet-vxprobe${process.pid}`)
  try {
    probe.ip('link', 'add', 'vx', 'type', 'vxlan', 'id', '1', 'dstport', '8472')
    return undefined
  } catch (err) {
    return `the kernel refused a vxlan device (${(err as Error).message.split('\n')[0]}): modprobe vxlan`
  } finally {
    await probe.destroy()
  }
}
