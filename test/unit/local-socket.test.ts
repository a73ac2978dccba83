// Which daemon `flatnet status` asks with no --node or --socket: $NODE_NAME's (the
// DaemonSet sets it), else the only daemon socket in the directory (the CNI's aside).
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { localDaemonSocket, socketPathFor } from '../../src/control-socket.js'

t.test('NODE_NAME first, else the only daemon socket, else a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-sock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.equal(localDaemonSocket({ NODE_NAME: 'node-a' }, dir), socketPathFor('node-a'), 'NODE_NAME names the node')
  t.throws(() => localDaemonSocket({}, dir), /no flatnet daemon socket in .*: is the daemon running on this node\? Give --node NAME or --socket PATH/, 'none there')
  writeFileSync(join(dir, 'cni.sock'), '')
  t.throws(() => localDaemonSocket({}, dir), /no flatnet daemon socket/, 'the CNI socket is not a daemon\'s')
  writeFileSync(join(dir, 'node-a.sock'), '')
  t.equal(localDaemonSocket({}, dir), join(dir, 'node-a.sock'), 'the only one')
  writeFileSync(join(dir, 'node-b.sock'), '')
  t.throws(() => localDaemonSocket({}, dir), /several daemon sockets in .* \(node-a.sock, node-b.sock\): give --node NAME or --socket PATH/, 'two: which one is asked')
  t.throws(() => localDaemonSocket({}, join(dir, 'missing')), /no flatnet daemon socket/, 'no directory at all')
})
