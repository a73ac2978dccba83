// The `flatnet` command. Usage errors and bad configs exit 2; runtime failures 1.
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig, namingFlag } from './config.js'
import { runDaemon } from './daemon.js'
import { createLogger } from './log.js'
import { localDaemonSocket, queryControl, socketPathFor } from './control-socket.js'
import { DEFAULT_CNI_BIN_DIR, installPlugins } from './cni-plugins.js'
import type { Manifests } from './policy/manifests.js'
import type { DropsView } from './policy/drops.js'
import { COMMIT, VERSION } from './version.js'
import type { Status } from './status.js'
import type { PathHealth } from './reach/prober.js'

const USAGE = `usage: flatnet --version | --help
       flatnet daemon --config FILE [--node-name NAME] [--pod-cidr CIDR | --pod-cidr-from-node]
                      [--underlay-address IP] [--join ADDR[:PORT][,ADDR[:PORT]]]
                      [--offloads on|off] [--log-level LEVEL]
       flatnet status [--node NAME | --socket PATH] [--all] [--json | -o json]
       flatnet peers [--node NAME | --socket PATH] [--json | -o json]
       flatnet stats [--node NAME | --socket PATH]
       flatnet install-cni-plugins [--from DIR] [--to DIR]
       flatnet uninstall [--config FILE] [--node-name NAME] [--bridge]
       flatnet policy explain (--manifests PATH | --node NAME | --socket PATH) --from NS/POD --to NS/POD --port PORT[/PROTO]
       flatnet policy matrix (--manifests PATH | --node NAME | --socket PATH) [--port PORT[/PROTO]]
       flatnet policy drops [--node NAME | --socket PATH] [--json]

  daemon   run the node's overlay data plane (needs CAP_NET_ADMIN and /dev/net/tun)
  status   a running daemon at a glance: ready or not, data plane, sources, peers reachable
           through the overlay and the underlay (the unreachable named), policy, last warnings.
           Without --node/--socket: $NODE_NAME's daemon, or the only one on this node.
           --all: every node's view of its peers, asked of each peer's daemon through the overlay
  peers    list a running daemon's peer table: source, age, reachability through the overlay
           and on the underlay (round trip or why not), packets and bytes each way
  stats    print a running daemon's counters and offload state as JSON
  install-cni-plugins
           copy bridge, host-local and portmap from DIR (/usr/lib/cni) into the kubelet's
           CNI directory (/opt/cni/bin) where missing, never replacing one; and flatnet-cni
           wherever it differs from DIR's (an init container)
  uninstall
           remove what flatnet put on this node (TUN, routes, nftables tables, conflist,
           flatnet-cni, sockets, state), as the daemon's --config names them; refuses while
           a daemon runs here. The pod bridge stays unless --bridge. Exit 1 if a step failed
  policy   NetworkPolicy verdicts from Namespace, Pod and NetworkPolicy manifests (YAML/JSON):
           explain one connection and the policies behind it, or print the pod-to-pod
           matrix (rows from, columns to; "." allowed, "X" denied, "-" the destination has
           no port of that name; default port 80/tcp). --manifests: a directory, a file, or
           - for stdin (kubectl get netpol,pods,ns -A -o yaml | flatnet policy ... --manifests -).
           --port: a number or a container port's name (http, http/tcp), resolved on the
           destination pod as a NetworkPolicy's named port is; the protocol defaults to TCP
  policy drops
           the connections a running daemon's policies denied lately (its last 1,000 flows):
           both sides' pods, direction, protocol and port, count, the policies isolating the pod
`

/** A config the daemon cannot run with: one line, exit 2. */
function configError (message: string): never {
  process.stderr.write(`flatnet: ${message}\n`)
  process.exit(2)
}

function usage (problem: string): never {
  process.stderr.write(`flatnet: ${problem}\n${USAGE}`)
  process.exit(2)
}

export async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  // Help asked for anywhere, on any command, is an answer (exit 0), not a usage error.
  if (command === undefined || command === 'help' || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE)
    return
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`flatnet ${VERSION} (${COMMIT})\n`)
    return
  }
  if (command === 'peers' || command === 'stats' || command === 'status') return await query(command, rest)
  if (command === 'install-cni-plugins') return installCniPlugins(rest)
  if (command === 'uninstall') return await uninstallNode(rest)
  if (command === 'policy' && rest[0] === 'drops') return await policyDrops(rest.slice(1))
  if (command === 'policy') return await policy(rest)
  if (command !== 'daemon') usage(`unknown command "${command}"`)
  let values
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        'node-name': { type: 'string' },
        'pod-cidr': { type: 'string' },
        'pod-cidr-from-node': { type: 'boolean' },
        'underlay-address': { type: 'string' },
        join: { type: 'string' },
        offloads: { type: 'string' },
        'log-level': { type: 'string' },
      },
    }))
  } catch (err) {
    usage((err as Error).message)
  }
  if (!values.config) usage('daemon needs --config FILE')
  // Flags override the file's fields (config.ts FLAG_FIELDS); they go through the same
  // checks, and an error names the flag.
  const overrides: Record<string, unknown> = {}
  for (const flag of ['node-name', 'pod-cidr', 'underlay-address', 'join', 'log-level'] as const) {
    if (values[flag] !== undefined) overrides[flag] = values[flag]
  }
  if (values.offloads !== undefined) {
    if (values.offloads !== 'on' && values.offloads !== 'off') usage('--offloads takes on or off')
    overrides.offloads = values.offloads === 'on'
  }
  if (values['pod-cidr-from-node']) {
    if (values['pod-cidr'] !== undefined) usage('give --pod-cidr or --pod-cidr-from-node, not both')
    const { nodeIdentity, podCIDRsFromNode } = await import('./node-cidr.js')
    const { KubeConfigError } = await import('./kube/config.js')
    const { nodeName, kubeconfig } = nodeIdentity(values.config, values['node-name'])
    if (!nodeName) usage('--pod-cidr-from-node needs the node name (--node-name or nodeName in the config)')
    const log = createLogger(values['log-level'] ?? 'info')
    try {
      const cidrs = await podCIDRsFromNode(nodeName, kubeconfig, { timeoutMs: 600_000, onWait: (why) => log.warn({ why }, 'waiting for this node\'s pod CIDRs') })
      overrides['pod-cidr-from-node'] = cidrs.length === 1 ? cidrs[0] : cidrs
      log.info({ node: nodeName, podCIDRs: cidrs }, 'pod CIDRs from the Node object')
    } catch (err) {
      // No API server configured, or one that can never answer (its certificate): a usage error, not a runtime one.
      if (err instanceof KubeConfigError) configError(`--pod-cidr-from-node: ${err.message}`)
      log.fatal({ err: (err as Error).message }, 'no pod CIDRs')
      process.exit(1)
    }
  }
  let config
  try {
    config = loadConfig(values.config, overrides)
  } catch (err) {
    if (err instanceof ConfigError) configError(err.message)
    throw err
  }
  const log = createLogger(config.logLevel)
  try {
    await runDaemon(config, { configFile: values.config, overrides }, log)
  } catch (err) {
    // A config the node cannot run, e.g. an underlay address on none of its interfaces (net/link.ts).
    if (err instanceof ConfigError) configError(namingFlag(err, overrides).message)
    log.fatal({ err }, 'daemon failed')
    process.exit(1) // pino writes synchronously: the line is out
  }
}

async function query (command: 'peers' | 'stats' | 'status', args: string[]): Promise<void> {
  let values
  try {
    ({ values } = parseArgs({ args, options: { node: { type: 'string' }, socket: { type: 'string' }, json: { type: 'boolean' }, output: { type: 'string', short: 'o' }, all: { type: 'boolean' } } }))
  } catch (err) {
    usage((err as Error).message)
  }
  if (values.output !== undefined && values.output !== 'json') usage(`-o takes json, not ${JSON.stringify(values.output)}`)
  const json = values.json === true || values.output === 'json'
  if (values.all === true && command !== 'status') usage('--all is for status')
  let res
  let path: string | undefined
  try {
    path = values.socket ?? (values.node ? socketPathFor(values.node) : localDaemonSocket())
    // peers and stats carry a row per peer: ~1.7 MB at 5,000 peers, past the default 1 MiB frame.
    res = await queryControl(path, command, 30_000, 1 << 26)
  } catch (err) {
    process.stderr.write(`flatnet: ${(err as Error).message}\n`)
    process.exit(1)
  }
  if (command === 'status' && values.all === true) return await statusAll(res as unknown as Status, path as string, json)
  if (command === 'status') {
    const { renderStatus } = await import('./status.js')
    process.stdout.write(json ? `${JSON.stringify(res, null, 2)}\n` : renderStatus(res as unknown as Status))
    return
  }
  if (command === 'stats' || json) {
    process.stdout.write(`${JSON.stringify(command === 'stats' ? res : res.peers, null, 2)}\n`)
    return
  }
  const reach = (h: PathHealth | undefined): string => h === undefined
    ? '-'
    : h.reachable === true ? `ok ${(h.rttMs ?? 0).toFixed(2)}ms` : h.reachable === false ? `DOWN ${h.lastError ?? ''}`.trimEnd() : 'probing'
  const peers = res.peers as Array<Record<string, unknown>>
  // The daemon adds encryption to each row only with encryption on.
  const encrypting = peers.some((p) => p.encryption !== undefined)
  const rows = peers.map((p) => {
    const health = p.health as Partial<Record<'overlay' | 'underlay', PathHealth>> | undefined
    return [
      String(p.nodeName), (p.podCIDRs as string[]).join(','), String(p.vtep), String(p.source), `${String(p.ageSeconds)}s`,
      reach(health?.overlay), reach(health?.underlay),
      `${String(p.txPackets ?? 0)}/${String(p.txBytes ?? 0)}`, `${String(p.rxPackets ?? 0)}/${String(p.rxBytes ?? 0)}`,
      ...(encrypting ? [String(p.encryption)] : []),
    ]
  })
  const head = ['NODE', 'POD CIDRS', 'VTEP', 'SOURCE', 'AGE', 'OVERLAY', 'UNDERLAY', 'TX PKTS/BYTES', 'RX PKTS/BYTES', ...(encrypting ? ['ENCRYPTION'] : [])]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`)
}

/** Every node's view of its peers: this daemon's, and each peer daemon's asked through the overlay (src/reach/matrix.ts). */
async function statusAll (local: Status, path: string, json: boolean): Promise<void> {
  if (!local.metricsPort) {
    process.stderr.write('flatnet: --all reads each peer\'s /reachability on the metrics port, which is off here (metricsPort 0)\n')
    process.exit(1)
  }
  const { askPeers, renderMatrix } = await import('./reach/matrix.js')
  const peers = (await queryControl(path, 'peers', 30_000, 1 << 26)).peers as Array<{ nodeName: string, podCIDRs: string[] }>
  const probes = local.peers.probes
  const own = {
    node: local.node,
    address: 'this node',
    view: {
      node: local.node,
      version: local.version,
      peers: local.peers.total,
      overlay: probes ? { ...probes.overlay, down: probes.overlay.down.map((d) => d.peer) } : null,
      underlay: probes ? { ...probes.underlay, down: probes.underlay.down.map((d) => d.peer) } : null,
    },
  }
  const rows = [own, ...await askPeers(peers.filter((p) => p.podCIDRs.length > 0).map((p) => ({ node: p.nodeName, podCIDR: p.podCIDRs[0] })), local.metricsPort)]
  process.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : renderMatrix(rows))
}

function installCniPlugins (args: string[]): void {
  let values
  try {
    ({ values } = parseArgs({ args, options: { from: { type: 'string', default: '/usr/lib/cni' }, to: { type: 'string', default: DEFAULT_CNI_BIN_DIR } } }))
  } catch (err) {
    usage((err as Error).message)
  }
  try {
    const { installed, kept } = installPlugins(values.from, values.to)
    process.stdout.write(`CNI plugins in ${values.to}: installed ${installed.join(', ') || 'none'}; already there ${kept.join(', ') || 'none'}\n`)
  } catch (err) {
    process.stderr.write(`flatnet: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

async function policy (args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub !== 'explain' && sub !== 'matrix') usage(`policy needs explain or matrix, not ${JSON.stringify(sub ?? '')}`)
  let values
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { manifests: { type: 'string' }, node: { type: 'string' }, socket: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, port: { type: 'string' } },
    }))
  } catch (err) {
    usage((err as Error).message)
  }
  const socket = values.socket ?? (values.node ? socketPathFor(values.node) : undefined)
  if (!values.manifests && !socket) usage(`policy ${sub} needs --manifests PATH (a directory, a file, or - for stdin), or --node NAME / --socket PATH of a running daemon`)
  const { explain, load, matrix, parsePortArg } = await import('./policy/cli.js')
  const port = parsePortArg(values.port ?? (sub === 'matrix' ? '80/tcp' : ''))
  if (typeof port === 'string') usage(values.port === undefined ? 'policy explain needs --port PORT/PROTO or a port name, e.g. 80/tcp or http' : port)
  try {
    // A running daemon's objects are the ones its table was built from: the same model explains it.
    const objects = values.manifests
      ? load(values.manifests)
      : ((await queryControl(socket as string, 'policy-objects', 30_000, 1 << 28)).objects as Manifests | null)
    if (!objects) throw new Error('that daemon enforces no NetworkPolicy (no "networkPolicy" in its config), or has applied none yet')
    if (sub === 'matrix') {
      process.stdout.write(matrix(objects, port.port, port.protocol))
      return
    }
    if (!values.from || !values.to) usage('policy explain needs --from NS/POD and --to NS/POD')
    const { text, verdict } = explain(objects, values.from, values.to, port.port, port.protocol)
    process.stdout.write(text)
    if (!verdict.allowed) process.exitCode = 3
  } catch (err) {
    process.stderr.write(`flatnet: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

async function uninstallNode (args: string[]): Promise<void> {
  let values
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string' }, 'node-name': { type: 'string' }, bridge: { type: 'boolean', default: false } } }))
  } catch (err) {
    usage((err as Error).message)
  }
  const { uninstall, uninstallTargets } = await import('./uninstall.js')
  let targets
  try {
    targets = uninstallTargets(values.config, values['node-name'])
  } catch (err) {
    if (err instanceof ConfigError) configError(err.message)
    throw err
  }
  try {
    const { refusedBy, failed } = await uninstall(targets, { bridge: values.bridge }, (line) => process.stdout.write(`${line}\n`))
    if (refusedBy) {
      process.stderr.write('flatnet: a daemon runs on this node: nothing removed\n')
      process.exitCode = 1
    } else if (failed.length) {
      process.stderr.write(`flatnet: ${failed.length} step(s) failed (${failed.join(', ')}): fix what each says above and run uninstall again\n`)
      process.exitCode = 1
    } else {
      process.stdout.write('node clean\n')
    }
  } catch (err) {
    process.stderr.write(`flatnet: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

/** `flatnet policy drops`: the connections a running daemon's NetworkPolicy denied lately, named (src/policy/drops.ts). */
async function policyDrops (args: string[]): Promise<void> {
  let values
  try {
    ({ values } = parseArgs({ args, options: { node: { type: 'string' }, socket: { type: 'string' }, json: { type: 'boolean' } } }))
  } catch (err) {
    usage((err as Error).message)
  }
  const { formatDrops } = await import('./policy/drops.js')
  try {
    const path = values.socket ?? (values.node ? socketPathFor(values.node) : localDaemonSocket())
    // 1,000 flows of names up to 316 bytes and their policies: past the default 1 MiB frame.
    const { drops } = await queryControl(path, 'policy-drops', 10_000, 1 << 26) as { drops: DropsView | null }
    if (!drops) throw new Error('that daemon enforces no NetworkPolicy (no "networkPolicy" in its config)')
    process.stdout.write(values.json ? `${JSON.stringify(drops, null, 2)}\n` : formatDrops(drops, Date.now()))
  } catch (err) {
    process.stderr.write(`flatnet: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
