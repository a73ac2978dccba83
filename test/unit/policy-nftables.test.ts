// One node's table (src/policy/node-table.ts, nftables.ts): whole, and change by change; and the refusal
// to enforce where bridged traffic would bypass it (src/policy/enforce.ts).
import t from 'tap'
import { bridgedTrafficUnfiltered, tableOf } from '../../src/policy/enforce.js'
import { ruleComment } from '../../src/policy/nftables.js'
import { parseNamespace, parseNetworkPolicy, parsePod } from '../../src/policy/objects.js'

const pod = (ns: string, name: string, ip: string, node: string): unknown => ({
  metadata: { namespace: ns, name, labels: { pod: name } },
  spec: { nodeName: node, containers: [{ name: 'c', ports: [{ name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' }] }] },
  status: { podIPs: [{ ip }] },
})
const objects = {
  namespaces: ['x', 'y'].map((n) => parseNamespace({ metadata: { name: n } })),
  pods: [pod('x', 'a', '10.244.1.10', 'n1'), pod('x', 'b', '10.244.1.11', 'n1'), pod('y', 'a', '10.244.2.10', 'n2')].map(parsePod),
  policies: [parseNetworkPolicy({
    metadata: { namespace: 'x', name: 'a-from-b' },
    spec: {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.2.0/24'] } }], ports: [{ port: 'serve-80-tcp' }, { port: 81, endPort: 90, protocol: 'UDP' }] }],
    },
  })],
}
const n1 = { nodeName: 'n1', podCIDRs: ['10.244.1.0/24'] }

t.test('one chain per isolated pod of this node, reached through a verdict map by address', async (t) => {
  const table = tableOf(n1, objects)
  const script = table.script()
  t.same(table.counts(), { policies: 1, localPods: 2, rules: 4 }, 'two pods here; for x/a, two peers (a set, a block) on two ports')
  t.match(script, /map in4 \{\n {4}type ipv4_addr : verdict\n {4}elements = \{ 10\.244\.1\.10 : jump in4-\d+ \}/, 'x/a isolated for ingress')
  t.notMatch(script, /10\.244\.1\.11 : jump/, 'x/b not isolated')
  t.match(script, /ct state established,related accept/, 'only a connection\'s first packet is judged')
  t.match(script, /set s\d+-4 \{\n {4}type ipv4_addr\n {2}\}/, 'the rule\'s peers, a named set')
  t.match(script, /add element inet flatnet-policy s\d+-4 \{ 10\.244\.1\.11 \}/, 'filled after the declarations')
  t.match(script, /ip saddr @s\d+-4 tcp dport 80 return/, 'the named port resolved on the destination pod')
  t.match(script, /ip saddr 10\.244\.0\.0\/16 ip saddr != \{ 10\.244\.2\.0\/24 \} udp dport 81-90 return/, 'ipBlock with except, endPort range')
  t.match(script, /return comment "x\/a-from-b rule 0"\n {4}goto deny-in\n {2}\}/, 'anything else goes to the ingress deny chain')
  t.match(script, /chain deny-in \{\n {4}counter name ingress_denied drop\n {2}\}/, 'which counts and drops it')
  t.match(script, /set local4 \{\n {4}type ipv4_addr\n {4}elements = \{ 10\.244\.1\.10, 10\.244\.1\.11 \}/, 'the addresses of this node\'s pods')
  t.match(script, /ip daddr \{ 10\.244\.1\.0\/24 \} ip daddr != @local4 goto deny-in-unknown/, 'a pod of this node the table does not know yet is unreachable')
  t.match(script, /chain deny-in-unknown \{\n {4}counter name ingress_denied drop\n {2}\}/, 'and counted as denied')
  t.notMatch(script, /log |limit /, 'without a drop log, nothing is logged')
  t.notMatch(tableOf({ nodeName: 'n2', podCIDRs: ['10.244.2.0/24'] }, objects).script(), /jump/, 'n2: none of its pods is isolated')
})

t.test('with a drop log: every deny chain logs to the group behind one shared limit, then drops', async (t) => {
  const script = tableOf({ ...n1, dropLog: { group: 7 } }, objects).script()
  t.match(script, /limit drop_log \{ rate 100\/second burst 200 packets \}/, 'one limit for the whole table')
  for (const [chain, prefix] of [['deny-in', 'ingress isolated'], ['deny-out', 'egress isolated'], ['deny-in-unknown', 'ingress unknown'], ['deny-out-unknown', 'egress unknown']]) {
    t.match(script, new RegExp(`chain ${chain} \\{\\n {4}counter name \\w+_denied limit name drop_log log prefix "flatnet-policy ${prefix}" group 7 snaplen 128\\n {4}drop\\n {2}\\}`), `${chain}: counted, logged within the limit, dropped`)
  }
  t.same(tableOf({ ...n1, dropLog: { group: 7 } }, objects).counts(), tableOf(n1, objects).counts(), 'the pods\' chains are the same either way')
})

t.test('rules with the same peers share their sets', async (t) => {
  const [policy] = objects.policies
  const twin = { ...policy, name: 'a-from-b-again', ingress: [{ ...policy.ingress[0], ports: [] }] }
  const other = { ...policy, name: 'a-from-c', ingress: [{ peers: [{ podSelector: { matchLabels: { pod: 'c' }, matchExpressions: [] } }], ports: [] }] }
  const script = tableOf(n1, { ...objects, policies: [policy, twin, other] }).script()
  t.equal(script.match(/^ {2}set s\d+-4 \{/gm)?.length, 2, 'three rules, two shapes of peers: two sets')
})

t.test('a change is the commands it needs, and none where it touches nothing here', async (t) => {
  const table = tableOf(n1, objects)
  const [xa, xb, ya] = objects.pods
  const peers = (/set (s\d+-4) \{/.exec(table.script()) ?? [])[1]
  table.record() // as after the first apply
  table.pod({ ...ya, labels: { pod: 'b' } }, ya)
  t.equal(table.takeDelta(), undefined, 'a pod elsewhere that no rule here selects: nothing')
  table.pod({ ...xb, labels: { pod: 'c' } }, xb)
  t.equal(table.takeDelta(), `delete element inet flatnet-policy ${peers} { 10.244.1.11 }\n`, 'x/b no longer a peer: one element out')
  table.pod({ ...xb, labels: { pod: 'b' }, ips: ['10.244.1.12'] }, { ...xb, labels: { pod: 'c' } })
  t.equal(table.takeDelta(), `add element inet flatnet-policy ${peers} { 10.244.1.12 }\ndelete element inet flatnet-policy local4 { 10.244.1.11 }\nadd element inet flatnet-policy local4 { 10.244.1.12 }\n`, 'back, on a new address: into the peer set and the local addresses')
  table.pod(undefined, xa)
  const gone = table.takeDelta() ?? ''
  t.match(gone, /delete element inet flatnet-policy in4 \{ 10\.244\.1\.10 \}\ndelete chain inet flatnet-policy in4-\d+/, 'x/a deleted: its map entry, then its chain')
  t.ok(gone.includes(`delete set inet flatnet-policy ${peers}\n`), 'and the sets of the policy that selected only it')
})

t.test('refused where bridged traffic bypasses nftables', async (t) => {
  t.equal(bridgedTrafficUnfiltered(new Set([4]), () => '1\n'), undefined)
  t.match(bridgedTrafficUnfiltered(new Set([4]), () => '0\n'), /net\.bridge\.bridge-nf-call-iptables is 0: set it to 1/)
  t.match(bridgedTrafficUnfiltered(new Set([4, 6]), (f) => f.endsWith('ip6tables') ? '0' : '1'), /bridge-nf-call-ip6tables is 0/)
  t.match(bridgedTrafficUnfiltered(new Set([4]), () => { throw new Error('ENOENT') }), /br_netfilter module is not loaded: load it \(modprobe br_netfilter\)/)
})

// nft refuses comments over 128 bytes; a namespace (63) and a policy name (253) fit the API.
t.test('a rule comment fits nft\'s 128 bytes whatever the names\' length', async (t) => {
  t.equal(ruleComment('x/a-from-b', 0), 'x/a-from-b rule 0')
  const long = ruleComment(`${'n'.repeat(63)}/${'p'.repeat(253)}`, 12)
  t.equal(long.length, 128)
  t.match(long, /^n{63}\/p+\.\.\. rule 12$/, 'clipped, the rule index kept')
})
