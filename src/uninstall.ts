// `flatnet uninstall`: removes from a node what flatnet put there, so that another CNI
// can take over. Stopping the daemon removes the TUN, its routes and NAT outgoing, but
// the NetworkPolicy table stays on purpose (it drops every address of this node's pod
// CIDR it does not know: pods stay isolated while a daemon restarts), and so do the pod
// port guard, the conflist and the files beside it; a new CNI's pods would be blackholed.
// Each step says what it removed or that it was absent, one line each, so running it
// twice is fine. Nothing is removed while a daemon still runs for the node.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { CONFLIST_NAME } from './cni.js'
import { REFERENCE_PLUGINS } from './cni-plugins.js'
import { CNI_PLUGIN } from './guard/cni-server.js'
import { answers, socketsIn } from './uninstall/daemon.js'
import { filesIn, present, removeEmptyDir, removeFile, removeTree } from './uninstall/files.js'
import { bridgePortCount, deleteLink, flushRoutes, linkKind, routesThrough } from './uninstall/links.js'
import { GUARD_TABLE, MASQUERADE_TABLE, POLICY_TABLE, removeGuardTable, removeNatTables, removePolicyTable } from './uninstall/tables.js'
import type { Targets } from './uninstall/targets.js'

export { uninstallTargets } from './uninstall/targets.js'

export interface UninstallOptions {
  /** Remove the pod bridge too (and host-local's reservations for it): pods still on it lose their network. */
  bridge: boolean
}

export interface UninstallResult {
  /** A daemon answered at this socket: nothing was removed. */
  refusedBy?: string
  /** The steps that failed, each already reported with what to do. */
  failed: string[]
}

interface Step { name: string, run: () => string }

const HOST_LOCAL_DIR = '/var/lib/cni/networks' // host-local's default dataDir
const NETWORK = 'flatnet' // the conflist's name (cni.ts): host-local keeps its reservations under dataDir/<name>

const listed = (paths: string[], absent: string): string => paths.length ? `removed ${paths.join(', ')}` : `absent (${absent})`

/** Runs every step, writing one line each; a failed step is reported and the rest still run. */
export async function uninstall (t: Targets, options: UninstallOptions, write: (line: string) => void): Promise<UninstallResult> {
  const probed = daemonSockets(t)
  for (const path of probed) {
    if (await answers(path)) {
      write(`daemon: running (${path} answers): nothing removed; delete the flatnet DaemonSet first ` +
        '(kubectl -n kube-flatnet delete daemonset flatnet) and wait for its pod on this node to go, or stop the daemon, then run uninstall again')
      return { refusedBy: path, failed: [] }
    }
  }
  write(`daemon: not running (${probed.length ? `nothing listens at ${probed.join(', ')}` : 'no daemon socket found'})`)
  const failed: string[] = []
  for (const step of steps(t, options)) {
    try {
      write(`${step.name}: ${step.run()}`)
    } catch (err) {
      failed.push(step.name)
      write(`${step.name}: FAILED: ${(err as Error).message}`)
    }
  }
  return { failed }
}

/** The sockets a running daemon (or a successor waiting beside it) listens at. */
function daemonSockets (t: Targets): string[] {
  const control = 'socket' in t.control
    ? [t.control.socket, ...(t.node ? [join(dirname(t.control.socket), `${t.node}.successor.sock`)] : [])]
    : socketsIn(t.control.dir)
  return [...new Set([...control, ...(t.cni ? [t.cni.socket] : [])])]
}

function steps (t: Targets, options: UninstallOptions): Step[] {
  const cni = t.cni
  return [
    {
      name: `routes through ${t.tun}`,
      run: () => {
        // A device of another kind under that name is not flatnet's: the TUN step says so.
        if (linkKind(t.tun) !== 'tun') return `none (no TUN ${t.tun})`
        const routes = routesThrough(t.tun)
        flushRoutes(t.tun)
        return routes.length ? `removed ${routes.join(', ')}` : 'none'
      },
    },
    {
      name: `TUN ${t.tun}`,
      run: () => {
        const kind = linkKind(t.tun)
        if (kind === undefined) return 'absent'
        if (kind !== 'tun') throw new Error(`${t.tun} is a ${kind || 'plain'} device, not flatnet's TUN: left; if tun.name is not what the daemon used, run with the daemon's config`)
        deleteLink(t.tun)
        // Closing its last descriptor removes a TUN: a process held this one, though no daemon answered.
        return 'removed (a process still held it open: look for a flatnet daemon started with another config)'
      },
    },
    { name: 'NAT outgoing', run: () => listed(removeNatTables(), `table ip ${MASQUERADE_TABLE}, table ip6 ${MASQUERADE_TABLE}`) },
    {
      name: 'NetworkPolicy',
      run: () => {
        const removed = removePolicyTable()
        return removed.length ? `${listed(removed, '')} (it dropped this node's pod addresses it did not know)` : listed(removed, `table inet ${POLICY_TABLE}`)
      },
    },
    { name: 'pod port guard', run: () => listed(removeGuardTable(), `table bridge ${GUARD_TABLE}`) },
    ...(cni
      ? [
          {
            name: 'conflist',
            run: () => {
              const file = join(cni.confDir, CONFLIST_NAME)
              const foreign = notFlatnets(file)
              if (foreign) return `left ${file}: ${foreign}`
              const removed = removeFile(file)
              return removed.length ? `${listed(removed, '')}; other CNIs' files in ${cni.confDir} left` : `absent (${file})`
            },
          },
          { name: 'subnet file', run: () => listed(removeFile(cni.subnetFile), cni.subnetFile) },
          {
            name: 'CNI plugin',
            run: () => `${listed(removeFile(join(cni.binDir, CNI_PLUGIN)), join(cni.binDir, CNI_PLUGIN))}; ` +
              `${REFERENCE_PLUGINS.join(', ')} left: other CNIs use them`,
          },
          { name: 'CNI socket', run: () => listed(removeFile(cni.socket), cni.socket) },
        ]
      : [{ name: 'CNI files', run: () => 'none ("cni": false in the config)' }]),
    {
      name: 'control socket',
      run: () => {
        const sockets = daemonSockets(t).filter((s) => s !== cni?.socket)
        return listed(sockets.flatMap(removeFile), sockets.join(', '))
      },
    },
    {
      name: 'state',
      run: () => {
        const s = t.state
        if (s === undefined) return 'none ("stateFile": false in the config)'
        if ('file' in s) return listed(removeFile(s.file), s.file)
        return listed(filesIn(s.dir, (f) => /\.peers(\.\d+\.tmp)?$/.test(f)).flatMap(removeFile), `${s.dir}/*.peers`)
      },
    },
    { name: 'WireGuard key', run: () => listed(removeFile(t.wireguardKey), t.wireguardKey) },
    {
      name: 'directories',
      run: () => t.ownDirs.map((d) => {
        const r = removeEmptyDir(d)
        if (r === 'removed') return `removed ${d}`
        if (r === 'absent') return `${d} absent`
        if (r === 'mount') return `${d} emptied (a mount point here: left)`
        return `${d} left: it holds files flatnet did not write`
      }).join('; ') || 'none of flatnet\'s own (the config puts its files elsewhere)',
    },
    {
      name: `bridge ${t.bridge}`,
      run: () => {
        const kind = linkKind(t.bridge)
        if (kind === undefined) return 'absent'
        const ports = kind === 'bridge' ? bridgePortCount(t.bridge) : 0
        if (!options.bridge) return `left, with ${ports} pod port(s) on it (flatnet uninstall --bridge removes it; those pods then lose their network)`
        if (kind !== 'bridge') throw new Error(`${t.bridge} is a ${kind || 'plain'} device, not a bridge: left`)
        deleteLink(t.bridge)
        return `removed (${ports} pod port(s) detached)`
      },
    },
    ...(cni
      ? [{
          name: 'host-local reservations',
          run: () => {
            const dir = join(cni.ipamDataDir ?? HOST_LOCAL_DIR, NETWORK)
            if (!present(dir)) return `absent (${dir})`
            // Pods left on the bridge keep their addresses: a flatnet installed again must not hand them out twice.
            if (linkKind(t.bridge) !== undefined) return `left with the bridge (${dir}): its pods keep their addresses`
            removeTree(dir)
            return `removed ${dir}`
          },
        }]
      : []),
  ]
}

/** Why the file at flatnet's conflist path is not flatnet's, or undefined (it is, or it is absent). */
function notFlatnets (file: string): string | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const conf = JSON.parse(text) as { plugins?: Array<{ type?: unknown }> }
    if (conf.plugins?.some((p) => p.type === CNI_PLUGIN)) return undefined
  } catch { /* not JSON: not a conflist flatnet wrote */ }
  return `not flatnet's (no ${CNI_PLUGIN} plugin in it)`
}
