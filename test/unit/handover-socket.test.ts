// The successor's end of the descriptor transfer (native/handover.cc) against what a
// broken or hostile local client could send it: each ends in a clear error, no crash and
// no descriptor left open (run under ASan in CI). The transfer itself, descriptors and
// all, is test/integration/handover.test.ts.
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addon } from '../../src/native.js'

const dir = mkdtempSync(join(tmpdir(), 'flatnet-handover-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const openFds = (): number => readdirSync('/proc/self/fd').length

/** Connects to path, writes bytes and closes (or leaves it open); resolves once they are in the kernel,
 *  since the receive then blocks this thread. */
async function send (path: string, bytes: Buffer, end = true): Promise<Socket> {
  return await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(path, () => {
      if (end) s.end(bytes, () => resolve(s))
      else s.write(bytes, () => resolve(s))
    })
    s.on('error', reject)
  })
}

/** Closes the client's end and lets its close run, so that only the receiver's descriptors are counted. */
async function closed (s: Socket): Promise<void> {
  s.destroy()
  await new Promise((resolve) => setImmediate(resolve))
}

function header (magic: number, total: number, here: number): Buffer {
  const b = Buffer.alloc(12)
  b.writeUInt32LE(magic, 0)
  b.writeUInt32LE(total, 4)
  b.writeUInt32LE(here, 8)
  return b
}

const MAGIC = 0x464c4e48

t.test('the listening socket is the owner\'s alone', async (t) => {
  const path = join(dir, 'mode.sock')
  const fd = addon.listenHandover(path)
  t.equal(statSync(path).mode & 0o777, 0o600, 'mode 0600')
  addon.closeDescriptor(fd)
})

const cases: Array<[string, Buffer, boolean, RegExp]> = [
  ['nothing, then closed', Buffer.alloc(0), true, /predecessor closed the handover connection/],
  ['a wrong magic number', header(0xdeadbeef, 0, 0), true, /malformed handover message/],
  ['a short header, then closed', Buffer.from([1, 2, 3]), true, /malformed handover message|closed/],
  ['descriptors promised, none sent, then closed', header(MAGIC, 4, 0), true, /predecessor closed|malformed/],
]
for (const [what, bytes, end, error] of cases) {
  t.test(`refuses ${what}`, async (t) => {
    const path = join(dir, `${what.replace(/\W+/g, '-')}.sock`)
    const fd = addon.listenHandover(path)
    const before = openFds()
    const client = await send(path, bytes, end)
    t.throws(() => addon.receiveDescriptors(fd, 2000), error)
    await closed(client)
    t.equal(openFds(), before, 'no descriptor left open')
    addon.closeDescriptor(fd)
  })
}

t.test('an empty transfer is a transfer of nothing', async (t) => {
  const path = join(dir, 'empty.sock')
  const fd = addon.listenHandover(path)
  await send(path, header(MAGIC, 0, 0))
  t.same(addon.receiveDescriptors(fd, 2000), [])
  addon.closeDescriptor(fd)
})

t.test('nobody connecting, or a client that never finishes: a timeout', async (t) => {
  const path = join(dir, 'slow.sock')
  const fd = addon.listenHandover(path)
  t.throws(() => addon.receiveDescriptors(fd, 50), /wait for the predecessor: Connection timed out/, 'nobody connects')
  await send(path, header(MAGIC, 0, 0).subarray(0, 6), false)
  t.throws(() => addon.receiveDescriptors(fd, 100), /Connection timed out|malformed/, 'half a header, the connection left open')
  addon.closeDescriptor(fd)
})
