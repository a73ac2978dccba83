// Lab nodes that learn each other over the control channel: the specs the channel
// tests and the convergence benchmark build their clusters from.
import { join } from 'node:path'
import { queryControl } from '../control-socket.js'
import type { NodeSpec } from './cluster.js'

/** The control socket of lab node i (1-based) in the run tagged `tag`. */
export const channelSocket = (tag: string, i: number): string => `/run/flatnet/${tag}-n${i}.sock`

/**
 * n flatnet node specs with no static peers, joined through seeds n1 and n2 (the lab's
 * underlay addresses), default heartbeats (500 ms, dead after 3 s), state files in stateDir.
 */
export function channelNodes (n: number, key: string, tag: string, stateDir: string): NodeSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'flatnet' as const,
    extra: {
      peers: [],
      controlSocket: channelSocket(tag, i + 1),
      stateFile: join(stateDir, `n${i + 1}.peers`),
      channel: { key, join: '192.168.77.1,192.168.77.2' },
    },
  }))
}

/** The node names in a running daemon's peer table, sorted (`flatnet peers` over its control socket). */
export async function peerNames (socket: string): Promise<string[]> {
  const res = await queryControl(socket, 'peers')
  return (res.peers as Array<{ nodeName: string }>).map((p) => p.nodeName).sort()
}
