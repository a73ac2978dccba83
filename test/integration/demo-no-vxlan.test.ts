// `sudo npm run demo` on a host without the kernel's vxlan module, the kind of host
// flatnet is for: emulated with the lab's test hook FLATNET_LAB_NO_VXLAN=1, which makes
// the probe fail as if the module were refused. The kernel node is left out with a line;
// the flatnet nodes still carry every check, and the demo exits 0.
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { labSkipReason } from '../lib/lab.js'

const DEMO = fileURLToPath(new URL('../../dist/src/lab/demo.js', import.meta.url))
const why = labSkipReason('the demo')

t.test('npm run demo without the vxlan module: the kernel node skipped, not an exit', { skip: why ? `needs namespaces: ${why}` : false }, async (t) => {
  const { code, stdout, stderr } = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, [DEMO], { cwd: join(DEMO, '../../../..'), timeout: 180_000, env: { ...process.env, FLATNET_LAB_NO_VXLAN: '1' } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
  t.equal(code, 0, `exit 0${stderr ? `; stderr: ${stderr.trim()}` : ''}`)
  t.match(stdout, /^kernel-vxlan node skipped: the kernel refused a vxlan device \(emulated by FLATNET_LAB_NO_VXLAN=1\); flatnet needs no vxlan module\n/)
  t.match(stdout, /building: 3 flatnet nodes on one underlay/)
  t.notMatch(stdout, /kernel-vxlan +underlay|\(kernel-vxlan\)/, 'no kernel node built or used')
  t.notMatch(stdout, /FAIL/, 'no check marked FAIL')
  t.equal(stdout.split('\n').filter((l) => /-> n\d \(flatnet\): +[\d.]+ Gbit\/s, intact/.test(l)).length, 2, 'two transfers between flatnet nodes, intact')
  t.match(stdout, /10\.244\.1\.10 -> 10\.244\.2\.10: server saw 10\.244\.1\.10\n/, 'no NAT')
  t.match(stdout, /cleaned up: namespaces, daemons and links removed/, 'cleaned up')
})
