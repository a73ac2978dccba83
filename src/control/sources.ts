// Starts the peer sources the config names, behind the persisted table: the state
// file is installed first (forwarding resumes before any source answers), then
// every change is written back to it.
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import type { PeerTable } from '../peer-table.js'
import { ChannelSource } from './channel.js'
import { EtcdSource } from './etcd.js'
import type { PeerSource } from './source.js'
import { loadTable, persistOnChange } from './state-file.js'
import { StaticSource } from './static.js'
import type { VtepRecord } from './vtep.js'

export interface RunningSources {
  /** withdraw: false when a successor takes over the node (src/handover.ts). */
  stop (withdraw?: boolean): Promise<void>
  stats (): Record<string, Record<string, number>>
  up (): Record<string, boolean>
}

/** This node's record as the channel, etcd and its Node annotations publish it; wgKey: its WireGuard public key, with encryption on. */
export function selfRecord (config: Config, wgKey?: Buffer): VtepRecord {
  const self: VtepRecord = {
    nodeName: config.nodeName,
    podCIDRs: config.podCIDRs,
    address: config.underlay.address,
    port: config.underlay.port,
    vni: config.vni,
    vtepMAC: config.vtepMAC,
    version: 0,
    source: 'static',
  }
  if (wgKey) self.wgKey = wgKey
  if (wgKey && config.wireguard) self.wgPort = config.wireguard.port
  return self
}

export async function startSources (config: Config, configFile: string, overrides: Record<string, unknown>,
  table: PeerTable, log: Logger, wgKey?: Buffer): Promise<RunningSources> {
  const { stateFile, channel, kubernetes, etcd } = config.sources
  let persist: ReturnType<typeof persistOnChange> | undefined
  if (stateFile) {
    try {
      // Only sources still configured: nothing else would ever withdraw the others.
      const running = new Set(['static', channel && 'channel', kubernetes && 'kubernetes', etcd && 'etcd'])
      const saved = loadTable(stateFile).filter((r) => running.has(r.source))
      if (saved.length) table.restore(saved)
      log.info({ stateFile, peers: saved.length }, 'restored the last known peer table')
    } catch (err) {
      log.warn({ stateFile, err: (err as Error).message }, 'ignoring a damaged state file')
    }
    persist = persistOnChange(stateFile, () => table.list(), (err) => log.warn({ stateFile, err: err.message }, 'cannot write the state file'))
    table.onChange(persist.schedule)
  }
  const self = selfRecord(config, wgKey)
  const sources: PeerSource[] = [new StaticSource({ configFile, overrides, config, log })]
  if (channel) sources.push(new ChannelSource(channel, self, log.child({ source: 'channel' })))
  if (kubernetes) {
    // Loaded only when used: the Kubernetes client alone adds ~80 MB of RSS.
    const { KubernetesSource } = await import('./kubernetes.js')
    sources.push(new KubernetesSource(kubernetes, self, log.child({ source: 'kubernetes' })))
  }
  if (etcd) sources.push(new EtcdSource(etcd, self, log.child({ source: 'etcd' })))
  for (const s of sources) await s.start(table)
  return {
    async stop (withdraw = true) {
      // Withdraw everywhere at once, but never hold the stop past its 2 s budget.
      await Promise.race([
        Promise.allSettled(sources.map((s) => s.stop({ withdraw }))),
        new Promise((resolve) => setTimeout(resolve, 1000).unref()),
      ])
      persist?.flush()
    },
    stats () {
      return Object.fromEntries(sources.map((s) => [s.name, s.stats?.() ?? {}]))
    },
    up () {
      return Object.fromEntries(sources.map((s) => [s.name, s.up()]))
    },
  }
}
