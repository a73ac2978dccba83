// Shared set-up of the control-channel namespace tests: a run tag for names, a state
// directory removed at the end, and the peer list a node's control socket reports.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type t from 'tap'
import { queryControl } from '../../src/control-socket.js'
import type { LabNode, NodeSpec } from '../../src/lab/cluster.js'

export interface ChannelLab {
  tag: string
  state: string
  sock: (i: number) => string
  peersOf: (n: LabNode) => Promise<string[]>
  /** n flatnet node specs on the channel, joined through seeds n1 and n2, default heartbeats (500 ms, dead after 3 s). */
  nodes: (n: number, key: string) => NodeSpec[]
}

export function channelLab (test: typeof t, prefix: string): ChannelLab {
  const tag = `${prefix}${Math.random().toString(36).slice(2, 5)}`
  const state = mkdtempSync(join(tmpdir(), `flatnet-${prefix}-`))
  test.teardown(() => rmSync(state, { recursive: true, force: true }))
  const sock = (i: number): string => `/run/flatnet/${tag}-n${i}.sock`
  const peersOf = async (n: LabNode): Promise<string[]> => {
    const res = await queryControl(sock(n.index), 'peers')
    return (res.peers as Array<{ nodeName: string }>).map((p) => p.nodeName).sort()
  }
  const nodes = (n: number, key: string): NodeSpec[] => Array.from({ length: n }, (_, i) => ({
    kind: 'flatnet' as const,
    extra: {
      peers: [],
      controlSocket: sock(i + 1),
      stateFile: join(state, `n${i + 1}.peers`),
      channel: { key, join: '192.168.77.1,192.168.77.2' },
    },
  }))
  return { tag, state, sock, peersOf, nodes }
}
