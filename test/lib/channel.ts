// Shared set-up of the control-channel namespace tests: a run tag for names, a state
// directory removed at the end, and the peer list a node's control socket reports.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { LabNode, NodeSpec } from '../../src/lab/cluster.js'
import { channelNodes, channelSocket, peerNames } from '../../src/lab/channel.js'

export interface ChannelLab {
  tag: string
  state: string
  sock: (i: number) => string
  peersOf: (n: LabNode) => Promise<string[]>
  /** n flatnet node specs on the channel, joined through seeds n1 and n2, default heartbeats (500 ms, dead after 3 s). */
  nodes: (n: number, key: string) => NodeSpec[]
}

export function channelLab (test: Test, prefix: string): ChannelLab {
  const tag = `${prefix}${Math.random().toString(36).slice(2, 5)}`
  const state = mkdtempSync(join(tmpdir(), `flatnet-${prefix}-`))
  test.teardown(() => rmSync(state, { recursive: true, force: true }))
  const sock = (i: number): string => channelSocket(tag, i)
  const peersOf = async (n: LabNode): Promise<string[]> => await peerNames(sock(n.index))
  const nodes = (n: number, key: string): NodeSpec[] => channelNodes(n, key, tag, state)
  return { tag, state, sock, peersOf, nodes }
}
