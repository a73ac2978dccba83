// Label selectors as metav1.LabelSelector defines them (apimachinery
// pkg/apis/meta/v1/helpers.go LabelSelectorAsSelector): every matchLabels pair AND
// every matchExpressions requirement must hold; an empty selector matches everything.
import type { LabelSelector, Labels, Namespace, NetworkPolicy, Peer, Pod } from './objects.js'

export const EVERYTHING: LabelSelector = { matchLabels: {}, matchExpressions: [] }

export function matches (sel: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels)) if (labels[k] !== v) return false
  for (const r of sel.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key)
    switch (r.operator) {
      case 'In': if (!has || !r.values.includes(labels[r.key])) return false; break
      // NotIn holds for a pod without the key (labels.Requirement.Matches).
      case 'NotIn': if (has && r.values.includes(labels[r.key])) return false; break
      case 'Exists': if (!has) return false; break
      case 'DoesNotExist': if (has) return false; break
    }
  }
  return true
}

/** Whether the policy's spec.podSelector selects pod (only pods of the policy's own namespace). */
export function selects (policy: NetworkPolicy, pod: Pod): boolean {
  return pod.namespace === policy.namespace && matches(policy.podSelector, pod.labels)
}

/**
 * Whether a selector peer (not an ipBlock) of policy matches pod. A null
 * namespaceSelector means the policy's own namespace; a null podSelector with a
 * namespaceSelector means every pod of the selected namespaces (NetworkPolicyPeer docs).
 */
export function peerSelectsPod (policy: NetworkPolicy, peer: Peer, pod: Pod, namespaces: ReadonlyMap<string, Namespace>): boolean {
  if (peer.ipBlock) return false
  if (peer.namespaceSelector) {
    const ns = namespaces.get(pod.namespace)
    // A pod whose namespace is unknown has no labels to match; only {} would select it.
    if (!matches(peer.namespaceSelector, ns?.labels ?? { 'kubernetes.io/metadata.name': pod.namespace })) return false
  } else if (pod.namespace !== policy.namespace) {
    return false
  }
  return matches(peer.podSelector ?? EVERYTHING, pod.labels)
}
