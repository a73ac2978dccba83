// The `flatnet` command. Usage errors and bad configs exit 2; runtime failures 1.
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from './config.js'
import { runDaemon } from './daemon.js'
import { createLogger } from './log.js'
import { queryControl, socketPathFor } from './control-socket.js'
import { DEFAULT_CNI_BIN_DIR, installPlugins } from './cni-plugins.js'
import type { Manifests } from './policy/manifests.js'
import { VERSION } from './version.js'

const USAGE = `usage: flatnet --version | --help
       flatnet daemon --config FILE [--node-name NAME] [--pod-cidr CIDR | --pod-cidr-from-node]
                      [--underlay-address IP] [--join ADDR[:PORT][,ADDR[:PORT]]]
                      [--offloads on|off] [--log-level LEVEL]
       flatnet peers [--node NAME | --socket PATH] [--json]
       flatnet stats [--node NAME | --socket PATH]
       flatnet install-cni-plugins [--from DIR] [--to DIR]
       flatnet policy explain (--manifests DIR | --node NAME | --socket PATH) --from NS/POD --to NS/POD --port PORT/PROTO
       flatnet policy matrix (--manifests DIR | --node NAME | --socket PATH) [--port PORT/PROTO]

  daemon   run the node's overlay data plane (needs CAP_NET_ADMIN and /dev/net/tun)
  peers    list a running daemon's peer table: source, age, packets and bytes each way
  stats    print a running daemon's counters and offload state as JSON
  install-cni-plugins
           copy bridge, host-local and portmap from DIR (/usr/lib/cni) into the kubelet's
           CNI directory (/opt/cni/bin) where missing, never replacing one; and flatnet-cni
           wherever it differs from DIR's (an init container)
  policy   NetworkPolicy verdicts from Namespace, Pod and NetworkPolicy manifests (YAML/JSON):
           explain one connection and the policies behind it, or print the pod-to-pod
           matrix (rows from, columns to; "." allowed, "X" denied; default port 80/tcp)
`

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
    process.stdout.write(`flatnet ${VERSION}\n`)
    return
  }
  if (command === 'peers' || command === 'stats') return await query(command, rest)
  if (command === 'install-cni-plugins') return installCniPlugins(rest)
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
  // Flags override the file's fields; they go through the same checks.
  const overrides: Record<string, unknown> = {}
  if (values['node-name'] !== undefined) overrides.nodeName = values['node-name']
  if (values['pod-cidr'] !== undefined) overrides.podCIDR = values['pod-cidr']
  if (values['underlay-address'] !== undefined) overrides.underlayAddress = values['underlay-address']
  if (values.join !== undefined) overrides.join = values.join // control channel seeds
  if (values['log-level'] !== undefined) overrides.logLevel = values['log-level']
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
      overrides.podCIDR = cidrs.length === 1 ? cidrs[0] : cidrs
      log.info({ node: nodeName, podCIDRs: cidrs }, 'pod CIDRs from the Node object')
    } catch (err) {
      log.fatal({ err: (err as Error).message }, 'no pod CIDRs')
      process.exit(err instanceof KubeConfigError ? 2 : 1) // no API server configured: a usage error, not a runtime one
    }
  }
  let config
  try {
    config = loadConfig(values.config, overrides)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`flatnet: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)
  try {
    await runDaemon(config, { configFile: values.config, overrides }, log)
  } catch (err) {
    log.fatal({ err }, 'daemon failed')
    process.exit(1) // pino writes synchronously: the line is out
  }
}

async function query (command: 'peers' | 'stats', args: string[]): Promise<void> {
  let values
  try {
    ({ values } = parseArgs({ args, options: { node: { type: 'string' }, socket: { type: 'string' }, json: { type: 'boolean' } } }))
  } catch (err) {
    usage((err as Error).message)
  }
  const path = values.socket ?? (values.node ? socketPathFor(values.node) : undefined)
  if (!path) usage(`${command} needs --node NAME or --socket PATH`)
  let res
  try {
    res = await queryControl(path, command)
  } catch (err) {
    process.stderr.write(`flatnet: ${(err as Error).message}\n`)
    process.exit(1)
  }
  if (command === 'stats' || values.json) {
    process.stdout.write(`${JSON.stringify(command === 'stats' ? res : res.peers, null, 2)}\n`)
    return
  }
  const rows = (res.peers as Array<Record<string, unknown>>).map((p) => [
    String(p.nodeName), (p.podCIDRs as string[]).join(','), String(p.vtep), String(p.source), `${String(p.ageSeconds)}s`,
    `${String(p.txPackets ?? 0)}/${String(p.txBytes ?? 0)}`, `${String(p.rxPackets ?? 0)}/${String(p.rxBytes ?? 0)}`,
  ])
  const head = ['NODE', 'POD CIDRS', 'VTEP', 'SOURCE', 'AGE', 'TX PKTS/BYTES', 'RX PKTS/BYTES']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`)
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
  if (!values.manifests && !socket) usage(`policy ${sub} needs --manifests DIR, or --node NAME / --socket PATH of a running daemon`)
  const { explain, load, matrix, parsePortArg } = await import('./policy/cli.js')
  const port = parsePortArg(values.port ?? (sub === 'matrix' ? '80/tcp' : ''))
  if (typeof port === 'string') usage(values.port === undefined ? 'policy explain needs --port PORT/PROTO, e.g. 80/tcp' : port)
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
