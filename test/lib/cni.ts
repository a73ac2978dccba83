// Runs a CNI network config list the way libcni (the kubelet's container runtime)
// does, against the real reference plugins: each plugin in order for ADD (each
// one's result is the next one's prevResult), CHECK with the cached ADD result,
// DEL in reverse order. Plugins run inside the node's namespace, as they would
// on the node. See the CNI spec, "Execution of Network Configurations".
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import type { Namespace } from '../../src/lab/netns.js'

import { dirname, join } from 'node:path'
import { CNI_PLUGIN_DIR, CNI_SHIM } from '../../src/lab/tools.js'

/** Debian's reference plugins, and flatnet-cni where npm install built it. */
export const CNI_PATH = `${CNI_PLUGIN_DIR}:${dirname(CNI_SHIM)}`

export type CniCommand = 'ADD' | 'CHECK' | 'DEL'

export interface CniResult {
  cniVersion: string
  interfaces?: Array<{ name: string, mac?: string, sandbox?: string }>
  ips?: Array<{ address: string, gateway?: string, interface?: number }>
  routes?: Array<{ dst: string, gw?: string }>
}

interface PluginConf { type: string, [k: string]: unknown }
interface Conflist { cniVersion: string, name: string, plugins: PluginConf[] }

export class CniError extends Error {
  constructor (readonly plugin: string, readonly command: CniCommand, readonly output: string) {
    super(`${plugin} ${command}: ${output}`)
  }
}

export interface Attachment {
  containerId: string
  netns: string // /var/run/netns/<pod namespace>
  ifname: string
  args?: string // CNI_ARGS: the kubelet's runtimes name the pod there (K8S_POD_NAMESPACE=...;K8S_POD_NAME=...)
}

/** The plugin's binary: the first of CNI_PATH's directories that has it, as libcni looks it up. */
function findPlugin (type: string): string {
  const dirs = CNI_PATH.split(':')
  return dirs.map((d) => join(d, type)).find((f) => existsSync(f)) ?? join(dirs[0], type)
}

/** libcni's runtime for one node: a conflist file and the namespace its plugins run in. */
export class CniRuntime {
  readonly conf: Conflist
  private readonly cache = new Map<string, CniResult>() // libcni's result cache, by container

  constructor (readonly node: Namespace, conflistFile: string) {
    this.conf = JSON.parse(readFileSync(conflistFile, 'utf8')) as Conflist
  }

  async add (a: Attachment): Promise<CniResult> {
    let prev: CniResult | undefined
    for (const plugin of this.conf.plugins) prev = await this.exec(plugin, 'ADD', a, prev)
    if (!prev) throw new Error('conflist has no plugins')
    this.cache.set(a.containerId, prev)
    return prev
  }

  async check (a: Attachment): Promise<void> {
    const prev = this.cache.get(a.containerId)
    if (!prev) throw new Error(`CHECK ${a.containerId}: no cached ADD result`)
    for (const plugin of this.conf.plugins) await this.exec(plugin, 'CHECK', a, prev)
  }

  /** DEL runs the plugins in reverse, with the cached result; it must succeed even if things are gone. */
  async del (a: Attachment): Promise<void> {
    const prev = this.cache.get(a.containerId)
    for (const plugin of [...this.conf.plugins].reverse()) await this.exec(plugin, 'DEL', a, prev)
    this.cache.delete(a.containerId)
  }

  private async exec (plugin: PluginConf, command: CniCommand, a: Attachment, prev?: CniResult): Promise<CniResult> {
    // libcni injects the list's name and version into each plugin's config, and the previous result.
    const stdin = JSON.stringify({
      ...plugin,
      name: this.conf.name,
      cniVersion: this.conf.cniVersion,
      ...(prev ? { prevResult: prev } : {}),
      // The kubelet passes port mappings through runtimeConfig for plugins with the capability.
      ...(plugin.capabilities ? { runtimeConfig: { portMappings: [] } } : {}),
    })
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: a.containerId,
      CNI_NETNS: a.netns,
      CNI_IFNAME: a.ifname,
      ...(a.args !== undefined ? { CNI_ARGS: a.args } : {}),
      CNI_PATH,
    }
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile('ip', ['netns', 'exec', this.node.name, findPlugin(plugin.type)],
        { env, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
          if (err) reject(new CniError(plugin.type, command, `${stdout}${stderr}`.trim() || err.message))
          else resolve(stdout)
        })
      child.stdin?.end(stdin)
    })
    if (command !== 'ADD') return prev as CniResult
    return JSON.parse(out) as CniResult
  }
}
