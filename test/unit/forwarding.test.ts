// IP forwarding at start: read first, written only when off, and a read-only
// /proc/sys (every non-privileged container's) is an error only when forwarding is off.
import t from 'tap'
import { enableForwarding } from '../../src/net/link.js'

const erofs = (): never => { throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }) }

t.test('on already: nothing is written, so a read-only /proc/sys does not matter', async (t) => {
  const writes: string[] = []
  enableForwarding(new Set([4, 6]), () => '1\n', (f) => { writes.push(String(f)); erofs() })
  t.same(writes, [])
})

t.test('off and writable: switched on, per family', async (t) => {
  const writes: string[] = []
  enableForwarding(new Set([6, 4]), () => '0\n', (f, v) => { writes.push(`${String(f)}=${String(v)}`) })
  t.same(writes, ['/proc/sys/net/ipv4/ip_forward=1', '/proc/sys/net/ipv6/conf/all/forwarding=1'])
})

t.test('off and read-only: the error names the sysctl the node must set', async (t) => {
  t.throws(() => enableForwarding(new Set([4]), () => '0\n', erofs),
    /net\.ipv4\.ip_forward is 0 on this node and \/proc\/sys\/net\/ipv4\/ip_forward is read-only here \(EROFS.*set net\.ipv4\.ip_forward=1 on the node/)
  t.throws(() => enableForwarding(new Set([4, 6]), (f) => f.includes('ipv6') ? '0' : '1', erofs),
    /set net\.ipv6\.conf\.all\.forwarding=1 on the node/, 'IPv6 pods need IPv6 forwarding')
})

t.test('any other failure is passed on as it is', async (t) => {
  t.throws(() => enableForwarding(new Set([4]), () => '0', () => { throw new Error('EIO') }), /^EIO$/)
})
