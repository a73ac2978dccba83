// `flatnet uninstall` on a lab node, the way an operator runs it: a node daemon with
// NetworkPolicy on and a conflist, a pod wired through it; the daemon stopped (SIGINT, its
// own cleanup) leaves the policy table, which drops every address of the node's pod CIDR
// it does not know, so pods of the CNI that replaces flatnet cannot talk. uninstall, in
// the node's namespace with the daemon's config, removes every piece, and those pods
// reach each other. It refuses while the daemon runs, and a second run finds nothing.
import t from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { CLI, type Cluster, type LabNode } from '../../src/lab/cluster.js'
import type { Namespace } from '../../src/lab/netns.js'
import { until } from '../../src/lab/until.js'
import { CniRuntime } from '../lib/cni.js'
import { pingFrom } from '../lib/echo.js'
import { labTools, withCluster } from '../lib/lab.js'

labTools('ping', 'cni-plugins', 'nft')

interface Run { code: number | null, stdout: string, stderr: string }

/** `flatnet uninstall ARGS` inside the node's namespace, as on the node itself. */
async function uninstallOn (n: LabNode, ...args: string[]): Promise<Run> {
  return await new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', n.ns.name, process.execPath, CLI, 'uninstall', '--config', n.configFile as string, ...args],
      { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr })
      })
  })
}

/** Wires a pod namespace with a conflist as the runtime would; its IPv4 address. */
async function attach (cluster: Cluster, n: LabNode, conflist: string, name: string): Promise<{ ns: Namespace, ip: string }> {
  const ns = cluster.ns(name)
  const r = await new CniRuntime(n.ns, conflist).add({
    containerId: `${name}-${cluster.tag}`, netns: `/var/run/netns/${ns.name}`, ifname: 'eth0', args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}`,
  })
  return { ns, ip: r.ips?.find((x) => !x.address.includes(':'))?.address.split('/')[0] ?? '' }
}

const present = (path: string): boolean => { try { lstatSync(path); return true } catch { return false } }

t.test('uninstall removes what flatnet left on a node, and another CNI\'s pods then talk', async (t) => {
  const manifests = mkdtempSync(join(tmpdir(), 'flatnet-un-policy-'))
  t.teardown(() => rmSync(manifests, { recursive: true, force: true }))
  writeFileSync(join(manifests, 'cluster.json'), JSON.stringify({ kind: 'List', items: [] }))
  const tag = `un-${Math.random().toString(36).slice(2, 6)}` // namespaces flatnet-un-*
  const cluster = await withCluster(t, {
    nodes: [{ kind: 'flatnet', extra: { networkPolicy: { manifests } } }, { kind: 'flatnet' }], cniPods: true, tag,
  })
  if (!cluster) return
  const [n1] = cluster.nodes
  interface NodeFiles { cni: { confDir: string, subnetFile: string, binDir: string, socket: string, ipamDataDir: string }, stateFile: string, controlSocket: string }
  const config = cluster.flatnetConfig(n1) as unknown as NodeFiles
  const conflist = join(config.cni.confDir, '10-flatnet.conflist')
  // Written once the first policy apply is in, which may come just after `ready`.
  t.ok(await until(() => existsSync(conflist), 10_000) >= 0, 'the daemon wrote its conflist')
  await attach(cluster, n1, conflist, 'a')
  t.ok(await until(() => existsSync(config.stateFile), 10_000) >= 0, 'the daemon saved its peer table')

  const refused = await uninstallOn(n1)
  t.equal(refused.code, 1, 'with the daemon running: exit 1')
  t.match(refused.stdout, /^daemon: running \(.*answers\): nothing removed; delete the flatnet DaemonSet first/m, 'and it says to delete the DaemonSet first')
  t.ok(n1.ns.ip('link').includes('flatnet0') && existsSync(conflist), 'nothing removed')

  // The daemon's own cleanup, as on a DaemonSet's delete.
  const daemon = n1.daemon!
  const exited = once(daemon, 'exit')
  daemon.kill('SIGINT')
  await exited
  const tables = (): string => n1.ns.exec('nft', 'list', 'tables')
  t.match(tables(), 'table inet flatnet-policy', 'stopped: the policy table stays (pods stay isolated across a restart)')
  t.match(tables(), 'table bridge flatnet-guard', 'stopped: the pod port guard stays')
  t.ok(existsSync(conflist), 'stopped: the conflist stays')

  // Another CNI on the same bridge: reference plugins only, its own range and network name.
  const other = join(config.cni.confDir, '20-other.conflist')
  writeFileSync(other, JSON.stringify({
    cniVersion: '1.0.0',
    name: 'other',
    plugins: [{
      type: 'bridge',
      bridge: 'cni0',
      isGateway: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: n1.podCIDR, rangeStart: n1.podCIDR.replace('.0/24', '.100'), gateway: n1.podCIDR.replace('.0/24', '.1') }]], dataDir: join(cluster.dir, 'other-ipam') },
    }],
  }))
  const b = await attach(cluster, n1, other, 'b')
  const c = await attach(cluster, n1, other, 'c')
  t.notOk(await pingFrom(b.ns, c.ip), `before uninstall: ${b.ip} -> ${c.ip} on the bridge is dropped by the policy table`)

  // A WireGuard key left from a time the node encrypted: flatnet's secret goes with it.
  const wgKey = join(dirname(config.stateFile), 'wireguard.key')
  writeFileSync(wgKey, 'a key\n', { mode: 0o600 })
  const run = await uninstallOn(n1)
  t.equal(run.code, 0, `exit 0${run.code === 0 ? '' : `: ${run.stdout}${run.stderr}`}`)
  t.comment(`flatnet uninstall:\n${run.stdout}`)
  const step = (name: string, want: RegExp | string, why?: string): void => {
    const line = run.stdout.split('\n').find((l) => l.startsWith(`${name}: `)) ?? `${name}: (no line)`
    t.match(line, want, why ? `${why}: ${line}` : line)
  }
  step('daemon', /^daemon: not running/)
  step('TUN flatnet0', /: absent$/, 'the TUN went with the daemon')
  step('NAT outgoing', /: absent/, 'so did NAT outgoing')
  step('NetworkPolicy', /: removed table inet flatnet-policy/)
  step('pod port guard', /: removed table bridge flatnet-guard$/)
  step('conflist', `: removed ${conflist}; other CNIs' files`)
  step('subnet file', `: removed ${config.cni.subnetFile}`)
  step('CNI plugin', `: removed ${join(config.cni.binDir, 'flatnet-cni')}; bridge, host-local, portmap left: other CNIs use them`)
  step('state', `: removed ${config.stateFile}`)
  step('WireGuard key', `: removed ${wgKey}`)
  step('bridge cni0', /: left, with 3 pod port\(s\) on it \(flatnet uninstall --bridge removes it/, 'the bridge stays by default, and it says so')
  t.match(run.stdout, /\nnode clean\n$/, 'the last line: node clean')

  t.equal(tables().trim(), '', 'no nftables table left')
  const links = n1.ns.ip('link')
  t.notOk(links.includes('flatnet0'), 'no TUN')
  t.ok(links.includes('cni0'), 'the pod bridge stays')
  for (const f of [conflist, config.cni.subnetFile, config.stateFile, wgKey, config.cni.socket, config.controlSocket, join(config.cni.binDir, 'flatnet-cni')]) {
    t.notOk(present(f), `${f} gone`)
  }
  t.ok(existsSync(other), 'the other CNI\'s conflist stays')
  for (const p of ['bridge', 'host-local', 'portmap']) t.ok(present(join(config.cni.binDir, p)), `${p} stays in the CNI bin dir`)

  t.ok(await until(async () => await pingFrom(b.ns, c.ip, 1), 10_000) >= 0, `after uninstall: ${b.ip} -> ${c.ip}`)
  const d = await attach(cluster, n1, other, 'd')
  t.ok(await until(async () => await pingFrom(d.ns, b.ip, 1), 10_000) >= 0, `a pod started after uninstall: ${d.ip} -> ${b.ip}`)

  const again = await uninstallOn(n1)
  t.equal(again.code, 0, 'a second run: exit 0')
  t.notMatch(again.stdout, /removed/, 'and it removes nothing')
  t.match(again.stdout, /^NetworkPolicy: absent/m, 'each step says what was absent')

  const bridge = await uninstallOn(n1, '--bridge')
  t.equal(bridge.code, 0, '--bridge: exit 0')
  t.match(bridge.stdout, /^bridge cni0: removed \(4 pod port\(s\) detached\)$/m, '--bridge: the bridge removed, its pods detached')
  t.match(bridge.stdout, `host-local reservations: removed ${join(config.cni.ipamDataDir, 'flatnet')}`, '--bridge: and flatnet\'s address reservations')
  t.notOk(n1.ns.ip('link').includes('cni0'), '--bridge: no cni0')
})

t.test('after a crash: stale sockets, NAT outgoing, and a TUN and routes someone still holds, all removed', async (t) => {
  const tag = `un-${Math.random().toString(36).slice(2, 6)}`
  const cluster = await withCluster(t, { nodes: [{ kind: 'flatnet' }], cniPods: true, tag })
  if (!cluster) return
  const [n1] = cluster.nodes
  const config = cluster.flatnetConfig(n1) as { controlSocket: string, cni: { socket: string } }
  // SIGKILL: no cleanup at all. Closing its descriptors removes the TUN; the rest stays.
  const daemon = n1.daemon!
  const exited = once(daemon, 'exit')
  daemon.kill('SIGKILL')
  await exited
  t.match(n1.ns.exec('nft', 'list', 'tables'), 'table ip flatnet', 'killed: NAT outgoing stays')
  t.ok(present(config.controlSocket) && present(config.cni.socket), 'killed: its sockets stay, answering nobody')
  // A TUN of that name held by some other process (here: persistent), with a cluster route through it.
  n1.ns.ip('tuntap', 'add', 'dev', 'flatnet0', 'mode', 'tun')
  n1.ns.ip('link', 'set', 'flatnet0', 'up')
  n1.ns.ip('route', 'add', '10.244.0.0/16', 'dev', 'flatnet0')

  const run = await uninstallOn(n1)
  t.comment(`flatnet uninstall:\n${run.stdout}`)
  t.equal(run.code, 0, 'exit 0')
  t.match(run.stdout, /^daemon: not running/m, 'a dead daemon\'s socket is not a running daemon')
  t.match(run.stdout, /^routes through flatnet0: removed 10\.244\.0\.0\/16$/m, 'the route')
  t.match(run.stdout, /^TUN flatnet0: removed \(a process still held it open/m, 'the TUN, saying someone held it')
  t.match(run.stdout, /^NAT outgoing: removed table ip flatnet$/m, 'NAT outgoing')
  t.match(run.stdout, `CNI socket: removed ${config.cni.socket}`, 'the stale CNI socket')
  t.match(run.stdout, `control socket: removed ${config.controlSocket}`, 'the stale control socket')
  t.equal(n1.ns.exec('nft', 'list', 'tables').trim(), '', 'no nftables table left')
  t.notOk(n1.ns.ip('link').includes('flatnet0'), 'no TUN')
})
