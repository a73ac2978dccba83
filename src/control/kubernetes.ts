// Kubernetes Nodes as the peer source (the DaemonSet mode). The official client's
// informer lists and watches /api/v1/nodes; it relists by itself after 410 Gone.
// Per Node: pod CIDRs from spec.podCIDRs, the underlay address from its
// InternalIP, and VTEP MAC, port and VNI from the `flatnet.io/` annotations each
// daemon writes on its own Node. A Node without them runs no flatnet: not a peer.
import { CoreV1Api, KubeConfig, makeInformer, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node'
import type { Logger } from '../log.js'
import { Backoff } from './backoff.js'
import { formatMac } from '../net/mac.js'
import type { KubernetesConfig } from './config.js'
import type { PeerSink, PeerSource } from './source.js'
import { fromWire, type VtepRecord } from './vtep.js'

export const ANNOTATION = {
  mac: 'flatnet.io/vtep-mac',
  port: 'flatnet.io/vtep-port',
  vni: 'flatnet.io/vni',
}

export class KubernetesSource implements PeerSource {
  readonly name = 'kubernetes'
  private sink?: PeerSink
  private informer?: ReturnType<typeof makeInformer<V1Node>>
  private api?: CoreV1Api
  private restart?: NodeJS.Timeout
  private stopped = false
  private connected = false
  private readonly backoff = new Backoff(1000, 30_000) // after a failed list or watch
  private readonly counts = { events: 0, errors: 0, restarts: 0, resyncs: 0, skipped: 0 }

  constructor (private readonly config: KubernetesConfig, private readonly self: VtepRecord, private readonly log: Logger) {}

  async start (sink: PeerSink): Promise<void> {
    this.sink = sink
    const kc = new KubeConfig()
    if (this.config.kubeconfig) kc.loadFromFile(this.config.kubeconfig)
    else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster()
    else kc.loadFromDefault()
    this.api = kc.makeApiClient(CoreV1Api)
    const api = this.api
    const informer = makeInformer<V1Node>(kc, '/api/v1/nodes', async () => await api.listNode())
    this.informer = informer
    informer.on('connect', () => { this.connected = true; this.backoff.reset() })
    informer.on('add', (n) => this.changed(n))
    informer.on('update', (n) => this.changed(n))
    informer.on('delete', (n) => {
      this.counts.events++
      if (n.metadata?.name) sink.update('kubernetes', { remove: [n.metadata.name] })
    })
    // A relist (after 410 Gone) reports what vanished as deletes and the rest as adds/updates.
    informer.on('error', (err) => {
      // The informer stops on any error but 410 (which it relists itself): start it again.
      this.counts.errors++
      this.connected = false
      if (this.stopped) return
      this.log.warn({ err: String((err as Error)?.message ?? err) }, 'node watch failed; keeping the last known peers, restarting')
      clearTimeout(this.restart)
      this.restart = setTimeout(() => {
        this.counts.restarts++
        informer.start().catch(() => {})
      }, this.backoff.next())
    })
    informer.start().then(() => {
      this.counts.resyncs++
      sink.resync('kubernetes', informer.list().map((n) => this.record(n)).filter((r): r is VtepRecord => r !== undefined))
    }, () => {}) // errors arrive on 'error'
    if (this.config.annotate) this.annotateSelf().catch((err) => this.log.error({ err: String(err?.message ?? err) }, 'cannot annotate this node'))
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.restart)
    await this.informer?.stop()
  }

  stats (): Record<string, number> {
    return { ...this.counts }
  }

  /** Writes this node's VTEP on its own Node object, where every peer reads it. */
  async annotateSelf (): Promise<void> {
    await this.api?.patchNode({
      name: this.self.nodeName,
      body: {
        metadata: {
          annotations: {
            [ANNOTATION.mac]: formatMac(this.self.vtepMAC),
            [ANNOTATION.port]: String(this.self.port),
            [ANNOTATION.vni]: String(this.self.vni),
          },
        },
      },
    }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
    this.log.info({ node: this.self.nodeName }, 'annotated own Node with the VTEP')
  }

  up (): boolean {
    return this.connected
  }

  private changed (n: V1Node): void {
    this.counts.events++
    const r = this.record(n)
    if (r) this.sink?.update('kubernetes', { set: [r] })
    else if (n.metadata?.name) this.sink?.update('kubernetes', { remove: [n.metadata.name] }) // annotations removed
  }

  private record (n: V1Node): VtepRecord | undefined {
    const a = n.metadata?.annotations ?? {}
    const name = n.metadata?.name
    if (!name || name === this.self.nodeName) return undefined
    const addr = n.status?.addresses?.find((x) => x.type === 'InternalIP')?.address
    const cidrs = n.spec?.podCIDRs?.length ? n.spec.podCIDRs : n.spec?.podCIDR ? [n.spec.podCIDR] : []
    if (!a[ANNOTATION.mac] || !addr || cidrs.length === 0) { this.counts.skipped++; return undefined }
    const r = fromWire({
      node: name,
      cidrs,
      addr,
      port: Number(a[ANNOTATION.port] ?? this.self.port),
      vni: Number(a[ANNOTATION.vni] ?? this.self.vni),
      mac: a[ANNOTATION.mac],
      ver: Number(n.metadata?.resourceVersion) || 0, // opaque to clients, numeric in practice; order comes from the watch
    }, 'kubernetes')
    if (typeof r === 'string') {
      this.counts.skipped++
      this.log.warn({ node: name, why: r }, 'node refused as a peer')
      return undefined
    }
    return r
  }
}
