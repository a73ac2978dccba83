// Which pod changes can change one node's compiled model, so that a change elsewhere in
// the cluster costs a few selector checks instead of a recompile (Calico's calculation
// graph asks the same question of its label index). A pod matters to a node when it
// runs there, or when a peer of a rule of a policy selecting one of the node's pods
// selects it; egress named ports are resolved on every destination pod in the rule's
// peers, so a rule with named ports and an ipBlock or no peers makes every pod matter.
// Namespace and policy changes always recompile.
import type { Namespace, NetworkPolicy, Peer, Pod } from './objects.js'
import { peerSelectsPod, selects } from './selector.js'

export type PodRelevance = (pod: Pod) => boolean

/** For the model of `node` built from these objects: whether a change of pod (its old or new version) can alter it. */
export function podRelevance (namespaces: readonly Namespace[], pods: readonly Pod[], policies: readonly NetworkPolicy[], node: string): PodRelevance {
  // The pods compile() builds chains for: this node's, with addresses of their own.
  const local = pods.filter((p) => p.nodeName === node && !p.hostNetwork && !p.finished && p.ips.length > 0)
  const nsByName = new Map(namespaces.map((n) => [n.name, n]))
  const peers: Array<{ policy: NetworkPolicy, peer: Peer }> = []
  let every = false
  for (const policy of policies) {
    if (!local.some((p) => selects(policy, p))) continue
    for (const type of policy.policyTypes) {
      for (const rule of type === 'Ingress' ? policy.ingress : policy.egress) {
        const named = type === 'Egress' && rule.ports.some((p) => typeof p.port === 'string')
        if (named && (rule.peers.length === 0 || rule.peers.some((p) => p.ipBlock))) every = true
        for (const peer of rule.peers) if (!peer.ipBlock) peers.push({ policy, peer })
      }
    }
  }
  if (every) return () => true
  return (pod) => pod.nodeName === node || peers.some(({ policy, peer }) => peerSelectsPod(policy, peer, pod, nsByName))
}
