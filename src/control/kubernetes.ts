// Kubernetes Nodes as the peer source (the DaemonSet mode): a reflector lists and
// watches /api/v1/nodes (relisting after 410 Gone) and keeps, per Node, only its VTEP:
// pod CIDRs from spec.podCIDRs, the underlay address from its InternalIP, and VTEP MAC,
// port and VNI from the `flatnet.io/` annotations each daemon writes on its own Node, or a
// flannel node's from flannel's (src/control/kube-node.ts). A Node with neither is no peer.
import type { Logger } from '../log.js'
import { KubeClient } from '../kube/client.js'
import { Reflector } from '../kube/reflector.js'
import { Backoff } from './backoff.js'
import type { KubernetesConfig } from './config.js'
import { type NodeJson, nodeRecord, selfAnnotations } from './kube-node.js'
import type { PeerSink, PeerSource } from './source.js'
import type { VtepRecord } from './vtep.js'

export { ANNOTATION } from './kube-node.js'

export class KubernetesSource implements PeerSource {
  readonly name = 'kubernetes'
  private reflector?: Reflector<VtepRecord | null>
  private client?: KubeClient
  private readonly counts = { events: 0, errors: 0, resyncs: 0, skipped: 0 }
  private annotating?: NodeJS.Timeout
  private stopped = false

  constructor (private readonly config: KubernetesConfig, private readonly self: VtepRecord, private readonly log: Logger) {}

  async start (sink: PeerSink): Promise<void> {
    const client = KubeClient.load(this.config.kubeconfig)
    this.client = client
    const reflector = new Reflector<VtepRecord | null>({
      client,
      kind: 'Node',
      path: '/api/v1/nodes',
      log: this.log,
      project: (raw) => this.record(raw as NodeJson),
      sink: {
        // While listing, changes wait for the list's end: the resync then says it all.
        set: (name, r) => {
          if (!reflector.listed) return
          this.counts.events++
          if (r) sink.update('kubernetes', { set: [r] })
          else sink.update('kubernetes', { remove: [name] }) // annotations removed, or the node is this one
        },
        delete: (name) => {
          if (!reflector.listed) return
          this.counts.events++
          sink.update('kubernetes', { remove: [name] })
        },
        synced: () => {
          this.counts.resyncs++
          sink.resync('kubernetes', [...reflector.store.values()].filter((r): r is VtepRecord => r !== null))
        },
        failed: () => { this.counts.errors++ },
      },
    })
    this.reflector = reflector
    reflector.start()
    if (this.config.annotate) this.annotate(new Backoff(1000, 30_000))
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.annotating)
    await this.reflector?.stop()
    this.client?.close()
  }

  stats (): Record<string, number> {
    const r = this.reflector?.stats
    return { ...this.counts, lists: r?.lists ?? 0, relists: r?.relists ?? 0, watches: r?.watches ?? 0 }
  }

  /**
   * Writes this node's VTEP on its own Node object, where every peer reads it. Through the
   * status subresource, as flannel does: it takes metadata too, and `nodes/status` is the
   * only write the ClusterRole grants (a `nodes` patch would let any node's token relabel,
   * taint or re-address every Node).
   */
  async annotateSelf (): Promise<void> {
    await this.client?.json('PATCH', `/api/v1/nodes/${encodeURIComponent(this.self.nodeName)}/status`, {
      contentType: 'application/merge-patch+json',
      body: { metadata: { annotations: selfAnnotations(this.self) } },
    })
    this.log.info({ node: this.self.nodeName, wireguard: this.self.wgKey !== undefined }, 'annotated own Node with the VTEP')
  }

  /**
   * Annotates until it succeeds: a daemon that starts while the API server is away (a control
   * plane upgrade, a node boot) would otherwise stay unknown to every peer until its restart.
   * The cap keeps a whole cluster's retries to one a node per 30 s while the server is down.
   */
  private annotate (backoff: Backoff): void {
    this.annotateSelf().catch((err) => {
      if (this.stopped) return
      const ms = backoff.next()
      this.log.error({ err: String(err?.message ?? err), retryInMs: Math.round(ms) }, 'cannot annotate this node')
      this.annotating = setTimeout(() => this.annotate(backoff), ms)
    })
  }

  up (): boolean {
    return this.reflector !== undefined && this.reflector.listed && this.reflector.error === undefined
  }

  /** The Node's VTEP, or null when it is no peer (this node, or one that runs no flatnet). */
  private record (n: NodeJson): VtepRecord | null {
    const name = n.metadata?.name
    if (typeof name !== 'string' || name === this.self.nodeName) return null
    const r = nodeRecord(n, this.self)
    if (r === null) { this.counts.skipped++; return null }
    if (typeof r === 'string') {
      this.counts.skipped++
      this.log.warn({ node: name, why: r }, 'node refused as a peer')
      return null
    }
    return r
  }
}
