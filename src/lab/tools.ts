// The programs the lab drives beyond Node and iproute2, each with the Debian package
// that brings it: a test that needs one the machine lacks skips naming the package
// (fails in CI), and `npm test` says once, before the tests, what to install.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where Debian's containernetworking-plugins puts the CNI reference plugins. */
export const CNI_PLUGIN_DIR = '/usr/lib/cni'

/** flatnet's own CNI plugin, as `npm install` builds it (binding.gyp), from src/ or dist/src/. */
export const CNI_SHIM = ['../../build/Release/flatnet-cni', '../../../build/Release/flatnet-cni']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((file) => { try { accessSync(file, constants.X_OK); return true } catch { return false } }) ?? 'build/Release/flatnet-cni (run npm install)'

// command (or, for the CNI plugins, a file) -> Debian package
const PACKAGES: Record<string, string> = {
  ip: 'iproute2',
  ping: 'iputils-ping',
  iperf3: 'iperf3',
  sockperf: 'sockperf',
  openvpn: 'openvpn',
  tcpdump: 'tcpdump',
  ethtool: 'ethtool',
  nft: 'nftables',
  iptables: 'iptables', // iptables-nft, Debian 12's default backend: kube-proxy's rules in the services test
  dnsmasq: 'dnsmasq-base', // the binary alone; the dnsmasq package adds a system service
  etcd: 'etcd-server',
  openssl: 'openssl', // the etcd TLS test's CA and certificates
  perf: 'linux-perf',
  'cni-plugins': 'containernetworking-plugins',
  // The image test: podman builds and runs the image with runc (deploy/image/build.sh),
  // on bases mmdebstrap makes where none can be pulled.
  podman: 'podman',
  runc: 'runc',
  mmdebstrap: 'mmdebstrap',
  // The WireGuard interop test's other node, as Debian ships it, and its configuration tool.
  'wireguard-go': 'wireguard-go',
  wg: 'wireguard-tools',
}

function onPath (command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

function present (tool: string): boolean {
  if (tool === 'cni-plugins') {
    return ['bridge', 'host-local', 'portmap'].every((p) => {
      try { accessSync(join(CNI_PLUGIN_DIR, p), constants.X_OK); return true } catch { return false }
    })
  }
  return onPath(tool)
}

/** The tools of `tools` this machine lacks. */
export function missingTools (tools: readonly string[]): string[] {
  return [...new Set(tools)].filter((tool) => !present(tool))
}

/** The one command that installs them. */
export function installCommand (tools: readonly string[]): string {
  return `apt-get install ${[...new Set(tools.map((tool) => PACKAGES[tool] ?? tool))].join(' ')}`
}

/** Why something needing `tools` cannot run here ("needs iperf3, nft: apt-get install …"), or undefined. */
export function toolsMissing (tools: readonly string[]): string | undefined {
  const missing = missingTools(tools)
  return missing.length ? `needs ${missing.join(', ')}: ${installCommand(missing)}` : undefined
}

/** Every tool the tests drive: what `.ci/run` installs. */
export const ALL_TOOLS = Object.keys(PACKAGES)

/** The Debian package of a tool. */
export function packageOf (tool: string): string {
  return PACKAGES[tool] ?? tool
}

// `node dist/src/lab/tools.js` (npm test's pretest): one paragraph, before the tests,
// naming what the namespace tests will skip for and the line that installs it.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const missing = missingTools(ALL_TOOLS)
  const root = process.getuid?.() === 0
  if (!root) process.stdout.write('namespace tests: skipped, they need root (sudo npm test)\n')
  if (missing.length) {
    process.stdout.write(`namespace tests that need ${missing.join(', ')} will be skipped${process.env.CI ? ' (CI: they fail instead)' : ''}; ` +
      `to run them all: ${installCommand(missing)}\n`)
  }
}
