import t from 'tap'
import { contains, formatAddress, formatCidr, nth, parseAddress, parseCidr, type Cidr } from '../../src/net/cidr.js'

t.test('addresses round-trip', async (t) => {
  for (const text of ['192.0.2.1', '0.0.0.0', '2001:db8::1', '::', '::1', '2001:db8:0:1:0:0:0:1', 'fe80::1:2']) {
    const a = parseAddress(text)
    t.ok(a, text)
    t.equal(formatAddress(parseAddress(formatAddress(a!))!), formatAddress(a!), `${text} canonical`)
  }
  t.equal(formatAddress(parseAddress('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1', 'RFC 5952 longest zero run')
  t.equal(formatAddress(parseAddress('::ffff:192.0.2.1')!), '::ffff:c000:201')
  for (const bad of ['192.0.2', '1.2.3.4.5', '2001:db8::1::2', 'fe80::1%eth0', '']) t.notOk(parseAddress(bad), bad)
})

t.test('cidrs', async (t) => {
  const c = parseCidr('10.244.0.0/16') as Cidr
  t.equal(formatCidr(c), '10.244.0.0/16')
  t.ok(contains(c, parseCidr('10.244.3.0/24') as Cidr))
  t.notOk(contains(c, parseCidr('10.245.0.0/24') as Cidr))
  t.notOk(contains(parseCidr('10.244.3.0/24') as Cidr, c), 'a bigger prefix is not inside')
  t.ok(contains(c, parseAddress('10.244.200.1')!))
  t.equal(formatAddress(nth(parseCidr('10.244.1.0/24') as Cidr, 1)), '10.244.1.1')
  t.equal(formatAddress(nth(parseCidr('2001:db8::/64') as Cidr, 257)), '2001:db8::101')
  t.match(parseCidr('10.244.1.1/24'), /host bits set \(did you mean 10\.244\.1\.0\/24\?\)/)
  t.match(parseCidr('2001:db8::/129'), /prefix length must be 0-128/)
})
