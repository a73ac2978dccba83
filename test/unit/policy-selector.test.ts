// Label selectors as metav1.LabelSelector defines them, and the peer rules built on
// them (null namespaceSelector = the policy's own namespace; both = AND).
import t from 'tap'
import type { LabelSelector, NetworkPolicy, Peer, Pod } from '../../src/policy/objects.js'
import { matches, peerSelectsPod, selects } from '../../src/policy/selector.js'

const sel = (matchLabels: Record<string, string> = {}, matchExpressions: LabelSelector['matchExpressions'] = []): LabelSelector => ({ matchLabels, matchExpressions })

t.test('matches: table', async (t) => {
  const cases: Array<{ name: string, sel: LabelSelector, labels: Record<string, string>, want: boolean }> = [
    { name: 'empty selector matches everything', sel: sel(), labels: { a: '1' }, want: true },
    { name: 'empty selector matches no labels', sel: sel(), labels: {}, want: true },
    { name: 'matchLabels equal', sel: sel({ app: 'web' }), labels: { app: 'web', tier: 'x' }, want: true },
    { name: 'matchLabels other value', sel: sel({ app: 'web' }), labels: { app: 'db' }, want: false },
    { name: 'matchLabels missing key', sel: sel({ app: 'web' }), labels: {}, want: false },
    { name: 'matchLabels all must hold', sel: sel({ app: 'web', tier: 'fe' }), labels: { app: 'web' }, want: false },
    { name: 'In: value listed', sel: sel({}, [{ key: 'pod', operator: 'In', values: ['b', 'c'] }]), labels: { pod: 'c' }, want: true },
    { name: 'In: value not listed', sel: sel({}, [{ key: 'pod', operator: 'In', values: ['b', 'c'] }]), labels: { pod: 'a' }, want: false },
    { name: 'In: key missing', sel: sel({}, [{ key: 'pod', operator: 'In', values: ['b'] }]), labels: {}, want: false },
    { name: 'NotIn: value listed', sel: sel({}, [{ key: 'ns', operator: 'NotIn', values: ['x'] }]), labels: { ns: 'x' }, want: false },
    { name: 'NotIn: other value', sel: sel({}, [{ key: 'ns', operator: 'NotIn', values: ['x'] }]), labels: { ns: 'y' }, want: true },
    { name: 'NotIn: key missing matches', sel: sel({}, [{ key: 'ns', operator: 'NotIn', values: ['x'] }]), labels: {}, want: true },
    { name: 'Exists', sel: sel({}, [{ key: 'k', operator: 'Exists', values: [] }]), labels: { k: '' }, want: true },
    { name: 'Exists: missing', sel: sel({}, [{ key: 'k', operator: 'Exists', values: [] }]), labels: {}, want: false },
    { name: 'DoesNotExist', sel: sel({}, [{ key: 'k', operator: 'DoesNotExist', values: [] }]), labels: {}, want: true },
    { name: 'DoesNotExist: present', sel: sel({}, [{ key: 'k', operator: 'DoesNotExist', values: [] }]), labels: { k: 'v' }, want: false },
    { name: 'matchLabels AND matchExpressions', sel: sel({ app: 'web' }, [{ key: 'tier', operator: 'In', values: ['fe'] }]), labels: { app: 'web', tier: 'be' }, want: false },
  ]
  for (const c of cases) t.equal(matches(c.sel, c.labels), c.want, c.name)
})

const pod = (namespace: string, name: string, labels: Record<string, string>): Pod => ({ namespace, name, labels, hostNetwork: false, finished: false, ips: [], ports: [] })
const policy: NetworkPolicy = { namespace: 'x', name: 'p', podSelector: sel({ pod: 'a' }), policyTypes: ['Ingress'], ingress: [], egress: [] }
const namespaces = new Map([
  ['x', { name: 'x', labels: { ns: 'x' } }],
  ['y', { name: 'y', labels: { ns: 'y' } }],
])

t.test('selects: only pods of the policy\'s namespace', async (t) => {
  t.ok(selects(policy, pod('x', 'a', { pod: 'a' })))
  t.notOk(selects(policy, pod('y', 'a', { pod: 'a' })), 'same labels, other namespace')
  t.notOk(selects(policy, pod('x', 'b', { pod: 'b' })))
})

t.test('peerSelectsPod: table', async (t) => {
  const cases: Array<{ name: string, peer: Peer, pod: Pod, want: boolean }> = [
    { name: 'podSelector only: own namespace', peer: { podSelector: sel({ pod: 'b' }) }, pod: pod('x', 'b', { pod: 'b' }), want: true },
    { name: 'podSelector only: not another namespace', peer: { podSelector: sel({ pod: 'b' }) }, pod: pod('y', 'b', { pod: 'b' }), want: false },
    { name: 'namespaceSelector only: every pod there', peer: { namespaceSelector: sel({ ns: 'y' }) }, pod: pod('y', 'c', { pod: 'c' }), want: true },
    { name: 'namespaceSelector only: not elsewhere', peer: { namespaceSelector: sel({ ns: 'y' }) }, pod: pod('x', 'c', { pod: 'c' }), want: false },
    { name: 'both: AND, both hold', peer: { namespaceSelector: sel({ ns: 'y' }), podSelector: sel({ pod: 'b' }) }, pod: pod('y', 'b', { pod: 'b' }), want: true },
    { name: 'both: AND, pod fails', peer: { namespaceSelector: sel({ ns: 'y' }), podSelector: sel({ pod: 'b' }) }, pod: pod('y', 'a', { pod: 'a' }), want: false },
    { name: 'both: AND, namespace fails', peer: { namespaceSelector: sel({ ns: 'y' }), podSelector: sel({ pod: 'b' }) }, pod: pod('x', 'b', { pod: 'b' }), want: false },
    { name: 'empty namespaceSelector: all namespaces', peer: { namespaceSelector: sel() }, pod: pod('y', 'a', {}), want: true },
    { name: 'ipBlock is no selector', peer: { ipBlock: { cidr: '0.0.0.0/0', except: [] } }, pod: pod('x', 'a', {}), want: false },
  ]
  for (const c of cases) t.equal(peerSelectsPod(policy, c.peer, c.pod, namespaces), c.want, c.name)
})
