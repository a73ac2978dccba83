// The `flatnet` command. Usage errors and bad configs exit 2; runtime failures 1.
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from './config.js'
import { runDaemon } from './daemon.js'
import { createLogger } from './log.js'

const USAGE = `usage: flatnet daemon --config FILE [--node-name NAME] [--pod-cidr CIDR]
                      [--underlay-address IP] [--offloads on|off] [--log-level LEVEL]

  daemon   run the node's overlay data plane (needs CAP_NET_ADMIN and /dev/net/tun)
`

function usage (problem: string): never {
  process.stderr.write(`flatnet: ${problem}\n${USAGE}`)
  process.exit(2)
}

export async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  if (command === undefined || command === 'help' || command === '--help') {
    process.stdout.write(USAGE)
    return
  }
  if (command !== 'daemon') usage(`unknown command "${command}"`)
  let values
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        'node-name': { type: 'string' },
        'pod-cidr': { type: 'string' },
        'underlay-address': { type: 'string' },
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
  if (values['log-level'] !== undefined) overrides.logLevel = values['log-level']
  if (values.offloads !== undefined) {
    if (values.offloads !== 'on' && values.offloads !== 'off') usage('--offloads takes on or off')
    overrides.offloads = values.offloads === 'on'
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
    process.exitCode = 1
  }
}
