// `sudo npm run demo`, the main job on a laptop, run as a user runs it: it must exit 0
// only when every pod reached every other, every stream moved data and the server saw
// the sender's own pod IP, and say what each daemon ran and did.
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { labSkipReason } from '../lib/lab.js'

const DEMO = fileURLToPath(new URL('../../dist/src/lab/demo.js', import.meta.url))
const why = labSkipReason('the demo')

t.test('npm run demo: a 4-node cluster, traffic across it, a report, everything removed', { skip: why ? `needs namespaces: ${why}` : false }, async (t) => {
  const { code, stdout, stderr } = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, [DEMO], { cwd: join(DEMO, '../../../..'), timeout: 180_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
  t.equal(code, 0, `exit 0${stderr ? `; stderr: ${stderr.trim()}` : ''}`)
  t.notMatch(stdout, /FAIL/, 'no check marked FAIL')
  t.equal(stdout.split('\n').filter((l) => /-> n\d \([a-z-]+\): +[\d.]+ Gbit\/s, intact/.test(l)).length, 4, 'four transfers reported, content intact')
  t.match(stdout, /10\.244\.1\.10 -> 10\.244\.2\.10: server saw 10\.244\.1\.10\n/, 'no NAT')
  t.match(stdout, /10\.244\.4\.10 -> 10\.244\.1\.10: server saw 10\.244\.4\.10\n/, 'no NAT from the kernel vxlan node')
  for (const n of ['n1', 'n2', 'n3']) t.match(stdout, new RegExp(`  ${n} \\((per-cpu, \\d+ workers|pipeline)\\): tx \\d+ pkts.*SIGTERM -> exit 0`), `${n}: its layout, counters and a clean exit`)
  t.match(stdout, /cleaned up: namespaces, daemons and links removed/, 'cleaned up')
})
