// The compiled model as nftables for one node (src/policy/nftables.ts), and the refusal
// to enforce where bridged traffic would bypass it (src/policy/enforce.ts).
import t from 'tap'
import { compile } from '../../src/policy/compile.js'
import { bridgedTrafficUnfiltered } from '../../src/policy/enforce.js'
import { policyRuleset } from '../../src/policy/nftables.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../../src/policy/objects.js'

const pod = (ns: string, name: string, ip: string, node: string): unknown => ({
  metadata: { namespace: ns, name, labels: { pod: name } },
  spec: { nodeName: node, containers: [{ name: 'c', ports: [{ name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' }] }] },
  status: { podIPs: [{ ip }] },
})
const model = compile(
  ['x', 'y'].map((n) => parseNamespace({ metadata: { name: n } })),
  [pod('x', 'a', '10.244.1.10', 'n1'), pod('x', 'b', '10.244.1.11', 'n1'), pod('y', 'a', '10.244.2.10', 'n2')].map(parsePod),
  [parseNetworkPolicy({
    metadata: { namespace: 'x', name: 'a-from-b' },
    spec: {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.2.0/24'] } }], ports: [{ port: 'serve-80-tcp' }, { port: 81, endPort: 90, protocol: 'UDP' }] }],
    },
  })])

t.test('one chain per isolated pod of this node, reached through a verdict map by address', async (t) => {
  const r = policyRuleset(model, { nodeName: 'n1', podCIDRs: ['10.244.1.0/24'] })
  t.same([r.pods, r.rules], [2, 1], 'two pods here, one allow entry')
  t.match(r.script, /map in4 \{\n {4}type ipv4_addr : verdict\n {4}elements = \{ 10\.244\.1\.10 : jump in4-0 \}/, 'x/a isolated for ingress')
  t.notMatch(r.script, /10\.244\.1\.11 : jump/, 'x/b not isolated')
  t.match(r.script, /ct state established,related accept/, 'only a connection\'s first packet is judged')
  t.match(r.script, /set peers4-0 \{\n {4}type ipv4_addr\n {4}elements = \{ 10\.244\.1\.11 \}/, 'the peers, a named set')
  t.match(r.script, /ip saddr @peers4-0 tcp dport 80 return/, 'the named port resolved on the destination pod')
  t.match(r.script, /ip saddr 10\.244\.0\.0\/16 ip saddr != \{ 10\.244\.2\.0\/24 \} udp dport 81-90 return/, 'ipBlock with except, endPort range')
  t.match(r.script, /return comment "x\/a-from-b rule 0"\n {4}counter name ingress_denied drop\n {2}\}/, 'anything else is dropped and counted')
  t.match(r.script, /ip daddr \{ 10\.244\.1\.0\/24 \} ip daddr != \{ 10\.244\.1\.10, 10\.244\.1\.11 \} counter name ingress_denied drop/, 'a pod of this node the model does not know yet is unreachable')
  const other = policyRuleset(model, { nodeName: 'n2', podCIDRs: ['10.244.2.0/24'] })
  t.notMatch(other.script, /jump/, 'n2: none of its pods is isolated')
})

t.test('refused where bridged traffic bypasses nftables', async (t) => {
  t.equal(bridgedTrafficUnfiltered(new Set([4]), () => '1\n'), undefined)
  t.match(bridgedTrafficUnfiltered(new Set([4]), () => '0\n'), /net\.bridge\.bridge-nf-call-iptables is 0: set it to 1/)
  t.match(bridgedTrafficUnfiltered(new Set([4, 6]), (f) => f.endsWith('ip6tables') ? '0' : '1'), /bridge-nf-call-ip6tables is 0/)
  t.match(bridgedTrafficUnfiltered(new Set([4]), () => { throw new Error('ENOENT') }), /br_netfilter module is not loaded: load it \(modprobe br_netfilter\)/)
})
