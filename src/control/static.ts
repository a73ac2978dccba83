// Static peers: the config file's `peers`, re-read on SIGHUP or when the file
// changes. A file that does not pass the config checks is rejected as a whole and
// the peers that work are kept.
import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import { type Config, ConfigError, loadConfig } from '../config.js'
import type { Logger } from '../log.js'
import type { PeerSink, PeerSource } from './source.js'
import { fromPeerConfig } from './vtep.js'

export interface StaticOptions {
  configFile: string
  overrides: Record<string, unknown>
  config: Config // as the daemon started with it
  log: Logger
  watchFile?: boolean // default true
}

export class StaticSource implements PeerSource {
  readonly name = 'static'
  private sink?: PeerSink
  private watcher?: FSWatcher
  private debounce?: NodeJS.Timeout
  private counts = { reloads: 0, rejected: 0 }
  private readonly onHup = (): void => this.reload('SIGHUP')

  constructor (private readonly options: StaticOptions) {}

  async start (sink: PeerSink): Promise<void> {
    this.sink = sink
    const { config } = this.options
    sink.resync('static', config.peers.map((p) => fromPeerConfig(p, config.vni)))
    process.on('SIGHUP', this.onHup)
    if (this.options.watchFile !== false) {
      // The directory, not the file: editors and config maps replace the file by rename.
      const file = basename(this.options.configFile)
      this.watcher = watch(dirname(this.options.configFile), (_event, name) => {
        if (name !== file) return
        clearTimeout(this.debounce)
        this.debounce = setTimeout(() => this.reload('file changed'), 100) // one reload per burst of writes
      })
      this.watcher.on('error', (err) => this.options.log.warn({ err: err.message }, 'cannot watch the config file; SIGHUP still reloads'))
    }
  }

  async stop (): Promise<void> {
    process.off('SIGHUP', this.onHup)
    clearTimeout(this.debounce)
    this.watcher?.close()
  }

  up (): boolean {
    return true // the file is always there to read; a rejected reload keeps a working table
  }

  stats (): Record<string, number> {
    return { ...this.counts }
  }

  reload (why: string): void {
    const { log } = this.options
    try {
      const next = loadConfig(this.options.configFile, this.options.overrides)
      this.sink?.resync('static', next.peers.map((p) => fromPeerConfig(p, this.options.config.vni)))
      this.counts.reloads++
      log.info({ peers: next.peers.length, why }, 'peers reloaded')
    } catch (err) {
      this.counts.rejected++
      const problem = err instanceof ConfigError ? err.message : String(err)
      log.error({ err: problem, why }, 'reload rejected; keeping the current peers')
    }
  }
}
