// flatnet-cni's requests as the daemon reads them, and the pod port table's bindings as nft
// lists them: what a malformed or hostile request is refused with, before anything is bound.
import t from 'tap'
import { bindingOf, parseRequest } from '../../src/guard/cni-server.js'
import { bindingsOf, guardScript } from '../../src/guard/port-guard.js'
import { parseCidr, type Cidr } from '../../src/net/cidr.js'

const podCIDRs = ['10.244.1.0/24', 'fd00:10:244:1::/64'].map((c) => parseCidr(c) as Cidr)

// The bridge plugin's result, as libcni passes it on as prevResult (CNI spec 1.0.0).
const bridgeResult = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:f4:01:01' },
    { name: 'veth5a1b2c3d', mac: '6e:1d:aa:bb:cc:dd' },
    { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/var/run/netns/cni-1234' },
  ],
  ips: [
    { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 },
    { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 2 },
  ],
}

t.test('the shim\'s request: CNI_* variables, then the config', async (t) => {
  const bytes = Buffer.concat([Buffer.from('CNI_COMMAND=ADD\0CNI_CONTAINERID=abc\0CNI_ARGS=K8S_POD_NAME=x;IgnoreUnknown=1\0\0'), Buffer.from('{"a":1}')])
  t.same(parseRequest(bytes), { env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_ARGS: 'K8S_POD_NAME=x;IgnoreUnknown=1' }, config: '{"a":1}' })
  t.throws(() => parseRequest(Buffer.from('CNI_COMMAND=ADD')), /truncated request/)
})

t.test('the binding: the host veth and the sandbox\'s addresses', async (t) => {
  t.same(bindingOf({ prevResult: bridgeResult }, 'cni0', podCIDRs), { port: 'veth5a1b2c3d', v4: ['10.244.1.5'], v6: ['fd00:10:244:1::5'] })
  // An address on a host-side interface (by index) is not the pod's.
  const hostAddress = { ...bridgeResult, ips: [...bridgeResult.ips, { address: '10.244.1.1/24', interface: 0 }] }
  t.same(bindingOf({ prevResult: hostAddress }, 'cni0', podCIDRs).v4, ['10.244.1.5'], 'the gateway\'s address on cni0 is not bound')
})

t.test('refused, naming why: nothing is bound from a result that does not add up', async (t) => {
  const refuse = (prevResult: unknown, why: RegExp, what: string): void => {
    t.throws(() => bindingOf({ prevResult } as never, 'cni0', podCIDRs), why, what)
  }
  refuse(undefined, /runs after the bridge plugin/, 'no prevResult (flatnet-cni first in a list, or alone)')
  refuse({ ...bridgeResult, interfaces: bridgeResult.interfaces.slice(0, 1).concat(bridgeResult.interfaces.slice(2)) }, /0 host-side interfaces/, 'no host veth')
  refuse({ ...bridgeResult, interfaces: [...bridgeResult.interfaces, { name: 'veth2' }] }, /2 host-side interfaces/, 'two host veths')
  refuse({ ...bridgeResult, interfaces: [{ name: 'cni0' }, { name: '../../etc' }, bridgeResult.interfaces[2]] }, /is not an interface name/, 'a path for a name')
  refuse({ ...bridgeResult, ips: [{ address: '10.244.2.5/24', interface: 2 }] }, /10\.244\.2\.5 is outside this node's pod CIDRs/, 'another node\'s address')
  refuse({ ...bridgeResult, ips: [{ address: 'x', interface: 2 }] }, /bad address/, 'not an address')
  refuse({ ...bridgeResult, ips: [] }, /no address/, 'no address at all')
})

t.test('the table: bindings read back from nft\'s JSON', async (t) => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { set: { family: 'bridge', name: 'ports', table: 'flatnet-guard', type: 'ifname', elem: ['veth1', 'veth2'] } },
      { set: { family: 'bridge', name: 'addrs4', table: 'flatnet-guard', type: ['ifname', 'ipv4_addr'], elem: [{ concat: ['veth1', '10.244.1.5'] }] } },
      { set: { family: 'bridge', name: 'addrs6', table: 'flatnet-guard', type: ['ifname', 'ipv6_addr'], elem: [{ concat: ['veth1', 'fd00:10:244:1::5'] }, { concat: ['veth2', 'fd00:10:244:1::6'] }] } },
    ],
  })
  t.same([...bindingsOf(json).values()], [
    { port: 'veth1', v4: ['10.244.1.5'], v6: ['fd00:10:244:1::5'] },
    { port: 'veth2', v4: [], v6: ['fd00:10:244:1::6'] },
  ])
  const script = guardScript()
  t.match(script, /flush chain bridge flatnet-guard prerouting\n/, 'the rules are replaced, the sets (the bindings) kept')
  t.notMatch(script, /flush set|delete set|flush table/, 'no binding is ever dropped by a restart')
})
