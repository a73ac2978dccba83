// `flatnet status`'s encryption line: there with encryption on (the key, and the peers by how
// traffic to them goes), absent with encryption none.
import t from 'tap'
import { renderStatus, type Status } from '../../src/status.js'

const status = (extra: Partial<Status> = {}): Status => ({
  node: 'n1',
  version: '0.1.0',
  commit: 'abc1234',
  uptimeSeconds: 5,
  ready: null,
  dataplane: { tun: 'flatnet0', mtu: 1450, workers: 'pipeline', queues: 1, socketSteering: 'none', offloads: {}, vtep: '192.0.2.1:8472', vni: 1 },
  metricsPort: 9473,
  sources: { static: true },
  peers: { total: 4, refused: 0, probes: null },
  policy: null,
  warnings: [],
  ...extra,
})

const KEY = Buffer.alloc(32, 5).toString('base64')

t.test('encryption on: the key and the peers by state; off: no line', async (t) => {
  t.notMatch(renderStatus(status()), /encryption/)
  const on = renderStatus(status({ encryption: { mode: 'wireguard', publicKey: KEY, port: 51820, strict: false, peers: { wireguard: 3, plain: 1, blocked: 0 } } }))
  t.match(on, `encryption  wireguard on port 51820, key ${KEY}; 3/4 peers with a key, 1 PLAIN (no key)\n`)
  const strict = renderStatus(status({ encryption: { mode: 'wireguard', publicKey: KEY, port: 51820, strict: true, peers: { wireguard: 4, plain: 0, blocked: 0 } } }))
  t.match(strict, `encryption  wireguard on port 51820 (strict), key ${KEY}; 4/4 peers with a key\n`)
  const blocked = renderStatus(status({ encryption: { mode: 'wireguard', publicKey: KEY, port: 51820, strict: true, peers: { wireguard: 2, plain: 0, blocked: 2 } } }))
  t.match(blocked, '2/4 peers with a key, 2 BLOCKED (no key, strict)')
})
