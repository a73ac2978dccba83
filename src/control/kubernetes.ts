// Kubernetes Nodes as the peer source (the DaemonSet mode): a reflector lists and
// watches /api/v1/nodes (relisting after 410 Gone) and keeps, per Node, only its VTEP:
// pod CIDRs from spec.podCIDRs, the underlay address from its InternalIP, and VTEP MAC,
// port and VNI from the `flatnet.io/` annotations each daemon writes on its own Node.
// A Node without them runs no flatnet: not a peer.
import type { Logger } from '../log.js'
import { KubeClient } from '../kube/client.js'
import { Reflector } from '../kube/reflector.js'
import { formatMac } from '../net/mac.js'
import type { KubernetesConfig } from './config.js'
import type { PeerSink, PeerSource } from './source.js'
import { fromWire, type VtepRecord } from './vtep.js'

export const ANNOTATION = {
  mac: 'flatnet.io/vtep-mac',
  port: 'flatnet.io/vtep-port',
  vni: 'flatnet.io/vni',
}

/** The Node's fields read here, from the API's JSON. */
interface NodeJson {
  metadata?: { name?: string, annotations?: Record<string, unknown>, resourceVersion?: string }
  spec?: { podCIDR?: unknown, podCIDRs?: unknown }
  status?: { addresses?: Array<{ type?: unknown, address?: unknown }> }
}

export class KubernetesSource implements PeerSource {
  readonly name = 'kubernetes'
  private reflector?: Reflector<VtepRecord | null>
  private client?: KubeClient
  private readonly counts = { events: 0, errors: 0, resyncs: 0, skipped: 0 }

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
    if (this.config.annotate) this.annotateSelf().catch((err) => this.log.error({ err: String(err?.message ?? err) }, 'cannot annotate this node'))
  }

  async stop (): Promise<void> {
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
      body: {
        metadata: {
          annotations: {
            [ANNOTATION.mac]: formatMac(this.self.vtepMAC),
            [ANNOTATION.port]: String(this.self.port),
            [ANNOTATION.vni]: String(this.self.vni),
          },
        },
      },
    })
    this.log.info({ node: this.self.nodeName }, 'annotated own Node with the VTEP')
  }

  up (): boolean {
    return this.reflector !== undefined && this.reflector.listed && this.reflector.error === undefined
  }

  /** The Node's VTEP, or null when it is no peer (this node, or one that runs no flatnet). */
  private record (n: NodeJson): VtepRecord | null {
    const name = n.metadata?.name
    if (typeof name !== 'string' || name === this.self.nodeName) return null
    const a = n.metadata?.annotations ?? {}
    const addr = (Array.isArray(n.status?.addresses) ? n.status.addresses : []).find((x) => x?.type === 'InternalIP')?.address
    const cidrs = Array.isArray(n.spec?.podCIDRs) && n.spec.podCIDRs.length > 0 ? n.spec.podCIDRs : typeof n.spec?.podCIDR === 'string' ? [n.spec.podCIDR] : []
    if (typeof a[ANNOTATION.mac] !== 'string' || typeof addr !== 'string' || cidrs.length === 0) { this.counts.skipped++; return null }
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
      return null
    }
    return r
  }
}
