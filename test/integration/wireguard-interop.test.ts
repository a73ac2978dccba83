// flatnet's TypeScript WireGuard handshake (src/wireguard/) against Debian's wireguard-go, over a
// veth underlay between two namespaces. Namespace b is a node as flannel's wireguard backend
// configures one: device flannel-wg with the node's pod-subnet address, listen port 51820, one
// peer per other node (its public key, allowed-ips its pod CIDR, endpoint its underlay address).
// In namespace a, src/lab/wireguard-peer.ts plays the other node: the handshake either side
// first, an ICMP echo through the tunnel both ways, pre-shared keys, wrong keys, hostile input.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Namespace, readLog, stopProcess } from '../../src/lab/netns.js'
import { formatKey, generatePrivateKey, publicKeyOf } from '../../src/wireguard/keys.js'
import type { WireGuardPeerOptions } from '../../src/lab/wireguard-peer.js'
import { labSkipReason } from '../lib/lab.js'

const PEER_SCRIPT = fileURLToPath(new URL('../../dist/src/lab/wireguard-peer.js', import.meta.url))
const SEND_UDP = fileURLToPath(new URL('../fixtures/send-udp.mjs', import.meta.url))
const DEVICE = 'flannel-wg' // flannel's name for it
const PORT = 51820
// Node a (the TypeScript side) owns 10.244.1.0/24, node b (wireguard-go) 10.244.2.0/24.
const A_POD = '10.244.1.5'
const B_ADDRESS = '10.244.2.0' // flannel puts the subnet's first address on the device, /32

interface Underlay { family: 4 | 6, a: string, b: string, prefix: number }
const UNDERLAYS: Underlay[] = [
  { family: 4, a: '10.231.0.1', b: '10.231.0.2', prefix: 24 },
  { family: 6, a: 'fd77:77::1', b: 'fd77:77::2', prefix: 64 },
]
const hostPort = (address: string): string => address.includes(':') ? `[${address}]:${PORT}` : `${address}:${PORT}`

interface Lab {
  a: Namespace
  b: Namespace
  dir: string
  wgPrivate: Buffer // wireguard-go's
  wgPublic: Buffer
  underlay: Underlay
}

/** Two namespaces on a veth, wireguard-go running in b (not yet configured); all of it gone when the test ends. */
async function lab (t: Test, underlay: Underlay): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-wgk-'))
  const spaces: Namespace[] = []
  t.teardown(async () => {
    if (!t.passing()) t.comment(`wireguard-go's log:\n${readLog(join(dir, 'wireguard-go.log')).slice(-3000)}`)
    for (const ns of spaces) await ns.destroy()
    // A wireguard-go killed before it could clean up leaves its control socket behind.
    rmSync(`/var/run/wireguard/${DEVICE}.sock`, { force: true })
    rmSync(dir, { recursive: true, force: true })
  })
  const a = Namespace.create('flatnet-wgk-a')
  spaces.push(a)
  const b = Namespace.create('flatnet-wgk-b')
  spaces.push(b)
  a.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b.name)
  for (const [ns, address] of [[a, underlay.a], [b, underlay.b]] as const) {
    ns.ip('addr', 'add', `${address}/${underlay.prefix}`, 'dev', 'eth0', ...(underlay.family === 6 ? ['nodad'] : []))
    ns.ip('link', 'set', 'eth0', 'up')
  }
  // wireguard-go in the foreground: its PID is the namespace's child, killed at teardown.
  b.spawn('env', ['WG_PROCESS_FOREGROUND=1', 'wireguard-go', '-f', DEVICE], join(dir, 'wireguard-go.log'))
  for (let i = 0; i < 100 && !deviceUp(b); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  if (!deviceUp(b)) throw new Error(`wireguard-go did not create ${DEVICE}: ${readLog(join(dir, 'wireguard-go.log'))}`)
  const wgPrivate = generatePrivateKey()
  return { a, b, dir, wgPrivate, wgPublic: publicKeyOf(wgPrivate), underlay }
}

function deviceUp (ns: Namespace): boolean {
  try {
    ns.ip('link', 'show', DEVICE)
    return existsSync(`/var/run/wireguard/${DEVICE}.sock`)
  } catch {
    return false
  }
}

function keyFile (l: Lab, name: string, key: Buffer): string {
  const file = join(l.dir, name)
  writeFileSync(file, formatKey(key) + '\n', { mode: 0o600 })
  return file
}

/** Configures wireguard-go's node as flannel does: its key and port, the TypeScript node as its one peer, address and route. */
function configureFlannelNode (l: Lab, peerPublic: Buffer, psk?: Buffer): void {
  const args = ['set', DEVICE, 'listen-port', String(PORT), 'private-key', keyFile(l, 'wg.key', l.wgPrivate),
    'peer', formatKey(peerPublic), 'allowed-ips', '10.244.1.0/24', 'endpoint', hostPort(l.underlay.a)]
  if (psk) args.push('preshared-key', keyFile(l, 'psk', psk))
  l.b.exec('wg', ...args)
  l.b.ip('addr', 'add', `${B_ADDRESS}/32`, 'dev', DEVICE)
  l.b.ip('link', 'set', DEVICE, 'up')
  l.b.ip('route', 'add', '10.244.0.0/16', 'dev', DEVICE) // the cluster CIDR, as flannel routes it
}

/** wireguard-go's view of its peer (`wg show dump`): the latest handshake (s since the epoch, 0 = none) and bytes. */
function wgPeer (l: Lab): { latestHandshake: number, rx: number, tx: number, psk: string } {
  const line = l.b.exec('wg', 'show', DEVICE, 'dump').trim().split('\n')[1] ?? ''
  const f = line.split('\t')
  return { psk: f[1], latestHandshake: Number(f[4] ?? 0), rx: Number(f[5] ?? 0), tx: Number(f[6] ?? 0) }
}

interface PeerRun { events: Array<Record<string, unknown>>, last: Record<string, unknown> }

/** Starts the TypeScript node in namespace a; resolves once it has bound its port, with what waits for its end. */
async function startTsNode (l: Lab, options: Omit<WireGuardPeerOptions, 'bind' | 'port' | 'endpoint' | 'podAddress'>): Promise<() => Promise<PeerRun>> {
  if (!existsSync(PEER_SCRIPT)) throw new Error(`${PEER_SCRIPT} is missing: compile first (tsc -p tsconfig.json)`)
  const full: WireGuardPeerOptions = { ...options, bind: l.underlay.a, port: PORT, endpoint: { address: l.underlay.b, port: PORT }, podAddress: A_POD }
  const log = join(l.dir, `ts-node-${Date.now()}.log`)
  const child = l.a.spawn(process.execPath, [PEER_SCRIPT, JSON.stringify(full)], log)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const events = (): Array<Record<string, unknown>> => readLog(log).split('\n').filter((x) => x.startsWith('{')).map((x) => JSON.parse(x) as Record<string, unknown>)
  for (let i = 0; i < 100 && !events().some((e) => e.event === 'ready'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  if (!events().some((e) => e.event === 'ready')) {
    await stopProcess(child)
    throw new Error(`the TypeScript node did not start: ${readLog(log)}`)
  }
  return async () => {
    await exited
    const all = events()
    return { events: all, last: all[all.length - 1] ?? { event: 'none', output: readFileSync(log, 'utf8') } }
  }
}

async function pingFromB (l: Lab, waitSeconds = 4): Promise<boolean> {
  try {
    await l.b.execAsync('ping', ['-c1', `-W${waitSeconds}`, A_POD], (waitSeconds + 6) * 1000)
    return true
  } catch {
    return false
  }
}

const why = labSkipReason('the WireGuard interop test', ['wireguard-go', 'wg', 'ping'])
if (why) {
  t.pass(`WireGuard interop skipped: ${why}`, { skip: true })
} else {
  for (const underlay of UNDERLAYS) {
    const over = `IPv${underlay.family} underlay`
    for (const psk of [undefined, Buffer.alloc(32, 0x42)]) {
      const withPsk = psk ? ', pre-shared key' : ''

      t.test(`${over}${withPsk}: the TypeScript node initiates, wireguard-go answers; an ICMP echo both ways through the tunnel`, async (t) => {
        const l = await lab(t, underlay)
        const tsKey = generatePrivateKey()
        configureFlannelNode(l, publicKeyOf(tsKey), psk)
        const done = await startTsNode(l, {
          mode: 'initiate',
          privateKey: formatKey(tsKey),
          peerPublicKey: formatKey(l.wgPublic),
          presharedKey: psk && formatKey(psk),
          target: B_ADDRESS,
          timeoutMs: 8000,
          hostileFirst: true, // an initiation with a broken mac1 first: wireguard-go must ignore it
        })
        const run = await done()
        t.equal(run.last.event, 'done', `the echo reply came back (${JSON.stringify(run.last)})`)
        const reply = run.last.reply as { type: number, src: string, dst: string, id: number, payload: string, checksumsOk: boolean } | undefined
        t.match(reply, { type: 0, src: B_ADDRESS, dst: A_POD, id: run.last.id, payload: run.last.sent, checksumsOk: true }, 'an echo reply from wireguard-go\'s node to our pod, payload intact, checksums right')
        // A slow first answer (neighbour discovery on a fresh underlay) meets our retry: the response to
        // the replaced initiation is dropped by its index, rightly. Nothing else may be.
        const { index: _stale, ...drops } = run.last.drops as Record<string, number>
        t.same(drops, {}, `nothing dropped on the TypeScript side but stale responses (${_stale ?? 0})`)
        const seen = wgPeer(l)
        t.ok(seen.latestHandshake > 0, `wg show dump: latest handshake ${seen.latestHandshake}`)
        t.ok(seen.rx > 0 && seen.tx > 0, `wireguard-go received ${seen.rx} B and sent ${seen.tx} B`)
        t.equal(seen.psk, psk ? formatKey(psk) : '(none)', 'wireguard-go\'s pre-shared key as configured')
      })

      t.test(`${over}${withPsk}: wireguard-go initiates (a ping from its node), the TypeScript node answers and echoes`, async (t) => {
        const l = await lab(t, underlay)
        const tsKey = generatePrivateKey()
        configureFlannelNode(l, publicKeyOf(tsKey), psk)
        const done = await startTsNode(l, {
          mode: 'respond', privateKey: formatKey(tsKey), peerPublicKey: formatKey(l.wgPublic), presharedKey: psk && formatKey(psk), timeoutMs: 8000,
        })
        // A hostile initiation first: right size and type, zero mac1.
        const hostile = Buffer.alloc(148)
        hostile[0] = 1
        await l.b.execAsync(process.execPath, [SEND_UDP, underlay.b, underlay.a, String(PORT), hostile.toString('hex')])
        const answered = await pingFromB(l)
        const run = await done()
        t.ok(answered, 'ping from wireguard-go\'s node to our pod answered through the tunnel')
        t.equal(run.last.event, 'done', `the echo request arrived (${JSON.stringify(run.last)})`)
        t.match(run.last.request, { type: 8, src: B_ADDRESS, dst: A_POD, checksumsOk: true }, 'an echo request from wireguard-go\'s node')
        t.ok(run.events.some((e) => e.event === 'session' && e.role === 'responder'), 'the TypeScript node answered the handshake')
        t.same(run.last.drops, { mac1: 1 }, 'the hostile initiation dropped by mac1, nothing else dropped')
        t.ok(wgPeer(l).latestHandshake > 0, 'wg show dump: a handshake')
      })
    }
  }

  const v4 = UNDERLAYS[0]
  t.test('the TypeScript node under load: wireguard-go opens its cookie reply and retries with a valid mac2', async (t) => {
    const l = await lab(t, v4)
    const tsKey = generatePrivateKey()
    configureFlannelNode(l, publicKeyOf(tsKey))
    const done = await startTsNode(l, {
      mode: 'respond', privateKey: formatKey(tsKey), peerPublicKey: formatKey(l.wgPublic), underLoad: true, timeoutMs: 15_000,
    })
    // wireguard-go retries after Rekey-Timeout (5 s), its initiation then carrying mac2; the ping waits staged.
    const answered = await pingFromB(l, 12)
    const run = await done()
    const kinds = run.events.map((e) => e.event)
    t.ok(kinds.includes('cookie'), 'the first initiation (no mac2) got a cookie reply')
    t.ok(kinds.indexOf('session') > kinds.indexOf('cookie'), 'a later initiation, its mac2 made with that cookie, was answered')
    t.equal(run.last.event, 'done', 'the echo request arrived')
    t.ok(answered, 'and the ping was answered')
    t.same(run.last.drops, {}, 'nothing dropped: wireguard-go opened the XChaCha20-Poly1305 cookie and its mac2 verified')
  })

  t.test('a different pre-shared key: no session either way', async (t) => {
    const l = await lab(t, v4)
    const tsKey = generatePrivateKey()
    configureFlannelNode(l, publicKeyOf(tsKey), Buffer.alloc(32, 1))
    const initiating = await startTsNode(l, {
      mode: 'initiate', privateKey: formatKey(tsKey), peerPublicKey: formatKey(l.wgPublic), presharedKey: formatKey(Buffer.alloc(32, 2)), target: B_ADDRESS, timeoutMs: 2500,
    })
    const run = await initiating()
    t.equal(run.last.event, 'timeout', 'no echo reply')
    t.ok(((run.last.drops as Record<string, number>).decrypt ?? 0) >= 1, `wireguard-go's responses do not open (drops ${JSON.stringify(run.last.drops)})`)
    t.notOk(run.events.some((e) => e.event === 'session'), 'no session')
    const responding = await startTsNode(l, {
      mode: 'respond', privateKey: formatKey(tsKey), peerPublicKey: formatKey(l.wgPublic), presharedKey: formatKey(Buffer.alloc(32, 2)), timeoutMs: 3000,
    })
    t.notOk(await pingFromB(l), 'a ping from wireguard-go\'s node is not answered')
    const run2 = await responding()
    t.equal(run2.last.event, 'timeout', 'no echo request arrived: wireguard-go could not open our response')
    t.equal(wgPeer(l).latestHandshake, 0, 'wg show dump: no handshake completed')
  })

  t.test('a key wireguard-go does not know: no response at all', async (t) => {
    const l = await lab(t, v4)
    configureFlannelNode(l, publicKeyOf(generatePrivateKey()))
    const done = await startTsNode(l, {
      mode: 'initiate', privateKey: formatKey(generatePrivateKey()), peerPublicKey: formatKey(l.wgPublic), target: B_ADDRESS, timeoutMs: 2500,
    })
    const run = await done()
    t.equal(run.last.event, 'timeout', 'no echo reply')
    t.notOk(run.events.some((e) => e.event === 'session' || e.event === 'drop'), 'nothing came back to drop')
    t.equal(wgPeer(l).latestHandshake, 0, 'wg show dump: no handshake')
  })
}
