// Sizing per-cpu workers to the container's memory limit: the cgroup reader on made-up
// cgroup trees (v1, v2, hybrid, nested limits, none), and the native choice of the
// CPUs that get a worker under a budget.
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { memoryLimit, packetMemoryBudget } from '../../src/memory-limit.js'
import { testing } from '../lib/testing-addon.js'

const MiB = 1024 * 1024
const V1_UNLIMITED = '9223372036854771712' // LONG_MAX rounded down to a page

/** A cgroup tree in a temporary directory: files relative to its root, and /proc/self/cgroup's text. */
function tree (t: Test, files: Record<string, string>, selfCgroup: string): [string, string] {
  const root = t.testdir()
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  const self = join(root, 'self-cgroup')
  writeFileSync(self, selfCgroup)
  return [root, self]
}

t.test('cgroup v2: memory.max of the process\'s cgroup, or the tightest ancestor\'s', async (t) => {
  t.equal(memoryLimit(...tree(t, { 'memory.max': `${256 * MiB}\n` }, '0::/\n')), 256 * MiB, 'a container\'s own cgroup (cgroup namespace: "/")')
  t.equal(memoryLimit(...tree(t, {
    'kubepods/memory.max': `${512 * MiB}\n`,
    'kubepods/pod1/memory.max': 'max\n',
    'kubepods/pod1/c1/memory.max': 'max\n',
  }, '0::/kubepods/pod1/c1\n')), 512 * MiB, 'a parent\'s limit applies')
  t.equal(memoryLimit(...tree(t, {
    'a/memory.max': `${512 * MiB}\n`,
    'a/b/memory.max': `${300 * MiB}\n`,
  }, '0::/a/b\n')), 300 * MiB, 'the tightest wins')
  t.equal(memoryLimit(...tree(t, { 'memory.max': 'max\n' }, '0::/\n')), undefined, '"max": no limit')
  t.equal(memoryLimit(...tree(t, {}, '0::/\n')), undefined, 'the root cgroup has no memory.max')
})

t.test('cgroup v1 and hybrid: the memory controller\'s memory.limit_in_bytes', async (t) => {
  t.equal(memoryLimit(...tree(t, { 'memory/docker/abc/memory.limit_in_bytes': `${128 * MiB}\n`, 'memory/memory.limit_in_bytes': V1_UNLIMITED },
    '5:cpuacct,cpu:/docker/abc\n4:memory:/docker/abc\n')), 128 * MiB)
  t.equal(memoryLimit(...tree(t, { 'memory/x/memory.limit_in_bytes': V1_UNLIMITED },
    '4:memory:/x\n0::/\n')), undefined, 'hybrid: v1 memory controller, unlimited (a page-rounded LONG_MAX); v2 mounted beside it has no say')
})

t.test('no cgroup information: no limit', async (t) => {
  t.equal(memoryLimit('/nonexistent', '/nonexistent/cgroup'), undefined)
})

t.test('the packet buffers get half the limit', async (t) => {
  t.equal(packetMemoryBudget(256 * MiB), 128 * MiB)
  t.equal(packetMemoryBudget(undefined), 0, 'no limit: no bound')
})

t.test('workerCpus: as many allowed CPUs as the budget holds, in order, at least two', async (t) => {
  const { workerCpus } = testing
  const cpus = Array.from({ length: 64 }, (_, i) => i)
  const perWorker = 8 * MiB
  t.same(workerCpus(cpus, 128 * MiB, perWorker), cpus.slice(0, 16), '128 MiB at 8 MiB each: 16 workers')
  t.same(workerCpus(cpus, 0, perWorker), cpus, 'no budget: a worker per CPU')
  t.same(workerCpus(cpus, MiB, perWorker), [0, 1], 'never fewer than two')
  t.same(workerCpus([2, 3, 6, 7], 3 * perWorker, perWorker), [2, 3, 6], 'a cpuset with gaps keeps its order')
  t.same(workerCpus([0, 1], 128 * MiB, perWorker), [0, 1], 'fewer CPUs than the budget holds: all of them')
})
