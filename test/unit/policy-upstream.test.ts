// Upstream's NetworkPolicy e2e cases (test/policy/upstream-cases.ts) against the
// compiled model: every step, every probed port/protocol, every ordered pair of the
// 9 pods, compared with upstream's expected truth table (loopback ignored, as upstream).
import t from 'tap'
import { compare } from '../policy/reachability.js'
import { CYCLONUS_CASES, UPSTREAM_CASES, type UpstreamCase } from '../policy/upstream-cases.js'
import { expected, observe } from '../policy/world.js'

function run (cases: UpstreamCase[]): void {
  for (const c of cases) {
    t.test(`${c.context} ${c.name}`, async (t) => {
      t.comment(c.source)
      if (c.derived) t.comment(`expectation derived from the API: ${c.derived}`)
      c.steps.forEach((step, i) => {
        for (const probe of step.probes) {
          const label = `step ${i + 1}${step.by ? ` (${step.by})` : ''}, ${probe.port}/${probe.protocol}`
          const { wrong, text } = compare(expected(probe), observe(step, probe))
          t.equal(wrong, 0, label, wrong === 0 ? {} : { diagnostic: true, tables: text })
          if (wrong !== 0) t.comment(`${label}: ${wrong} wrong\n${text}`)
        }
      })
    })
  }
}

run(UPSTREAM_CASES)
run(CYCLONUS_CASES)

t.test('the cases name their source and are unique', async (t) => {
  const names = [...UPSTREAM_CASES, ...CYCLONUS_CASES].map((c) => `${c.context} ${c.name}`)
  t.equal(new Set(names).size, names.length)
  t.ok(UPSTREAM_CASES.length >= 40, `${UPSTREAM_CASES.length} upstream cases`)
})
