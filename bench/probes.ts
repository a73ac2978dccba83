// The cost of node-to-node health probes at 5,000 peers, the daemon's defaults (overlay
// every 4 s +-25%, underlay every 15 s): CPU of the prober's process (JavaScript and the
// kernel's socket work it causes) and the event loop's delay, with every peer answering
// (a RST from a closed port, as a peer's kernel answers) and with every peer silent
// (SYNs dropped: each probe waits out its timeout, then is retried at once — the worst
// case, a node cut off from all others). Peers are loopback addresses in a throwaway
// namespace: the probes' own cost, without the data plane's per-packet work (a probe is
// one small packet each way, ~1,600 packets/s at 5,000 peers).
// Run: sudo npm run bench:probes [-- --peers N --seconds S]
import { parseArgs } from 'node:util'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { labUnavailable, Namespace, reapOnSignals } from '../src/lab/netns.js'
import { Prober, PROBE_DEFAULTS, type ProbeTarget } from '../src/reach/prober.js'
import { addon } from '../src/native.js'

const { values } = parseArgs({ options: { peers: { type: 'string', default: '5000' }, seconds: { type: 'string', default: '30' }, inner: { type: 'string' } } })
const peers = Number(values.peers)
const seconds = Number(values.seconds)

async function measure (label: string): Promise<void> {
  let answered = 0
  let lost = 0
  const counting = new Prober({ ...PROBE_DEFAULTS, engine: new addon.Prober(PROBE_DEFAULTS.timeoutMs), onChange: () => {}, onProbe: (_path, ok) => { if (ok) answered++; else lost++ } })
  const targets = new Map<string, ProbeTarget>()
  for (let i = 0; i < peers; i++) {
    const a = `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
    targets.set(`n${i}`, { overlay: { address: a, local: '127.0.0.1' }, underlay: { address: a, local: '127.0.0.1' } })
  }
  counting.start()
  counting.sync(targets)
  // One whole underlay interval first: every peer's first probes are spread over it.
  await new Promise((resolve) => setTimeout(resolve, PROBE_DEFAULTS.underlayIntervalMs))
  answered = lost = 0
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  const cpu = process.cpuUsage(cpu0)
  const wall = (performance.now() - t0) / 1000
  loop.disable()
  counting.stop()
  const probes = (answered + lost) / wall
  const core = (cpu.user + cpu.system) / 1e6 / wall
  console.log(`${label}: ${peers} peers, ${probes.toFixed(0)} probes/s (${answered} answered, ${lost} lost), ` +
    `CPU ${(core * 100).toFixed(1)}% of a core (user ${(cpu.user / 1e6 / wall * 100).toFixed(1)}%, system ${(cpu.system / 1e6 / wall * 100).toFixed(1)}%), ` +
    `${(core / probes * 1e6).toFixed(1)} us per probe; event loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms; ` +
    `deferred ${counting.deferred}`)
}

if (values.inner) {
  await measure(values.inner)
} else {
  const why = labUnavailable()
  if (why) {
    console.log(`bench:probes skipped: ${why}`)
  } else {
    reapOnSignals()
    const ns = Namespace.create(`flatnet-probes${process.pid}`)
    try {
      ns.ip('link', 'set', 'lo', 'up')
      const run = async (label: string): Promise<void> => {
        process.stdout.write(await ns.execAsync(process.execPath, [process.argv[1], '--peers', String(peers), '--seconds', String(seconds), '--inner', label], 600_000))
      }
      await run('every peer answers (RST)')
      // Silent peers: their SYNs vanish, as into a partitioned network.
      ns.exec('nft', 'add table inet probes; add chain inet probes out { type filter hook output priority 0; }; add rule inet probes out tcp flags syn drop')
      await run('no peer answers (timeouts)')
    } finally {
      await ns.destroy()
    }
  }
}
