// `npm run bench`'s command line: what to measure, how long, how often, where to write.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MODES, modeNamed, type Mode } from './modes.js'
import { RR_SIZES, RR_SIZES_QUICK, type RrSize } from './report.js'

const RESULTS = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../bench/results' : './results', import.meta.url))

export const USAGE = `usage: npm run bench -- [--quick] [--modes ${MODES.map((m) => m.name).join(',')}] [--seconds N] [--rounds N] [--profile] [--out DIR]
       npm run bench -- --compare BEFORE.json AFTER.json
       npm run bench -- --markdown RESULT.json [--rows tcp1Gbps,rttP50Us,...]`

export interface Options {
  quick: boolean
  seconds: number
  rounds: number // every mode this many times, interleaved; medians and spread reported (bench/rounds.ts)
  modes: Mode[]
  out: string
  profile: boolean // perf during an extra 4-stream test of each mode, in the first round (bench/profile.ts)
  rrSizes: readonly RrSize[] // TCP_RR and UDP_RR message sizes (bench/transactions.ts)
}

export function parseArgs (argv: string[]): Options {
  let quick = false
  let profile = false
  let seconds: number | undefined
  let rounds: number | undefined
  let modes = MODES
  let out = RESULTS
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`)
      return v
    }
    if (a === '--quick') quick = true
    else if (a === '--profile') profile = true
    else if (a === '--seconds') {
      seconds = Number(value())
      if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`--seconds: "${argv[i]}" is not a whole number of seconds >= 1`)
    } else if (a === '--rounds') {
      rounds = Number(value())
      if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: "${argv[i]}" is not a whole number >= 1`)
    } else if (a === '--modes') modes = value().split(',').filter(Boolean).map(modeNamed)
    else if (a === '--out') out = resolve(value())
    else throw new Error(`unknown option "${a}"\n${USAGE}`)
  }
  // Three rounds give a median and a spread; --quick is a look, not a measurement,
  // and one request/response size of three keeps it short.
  return { quick, seconds: seconds ?? (quick ? 2 : 5), rounds: rounds ?? (quick ? 1 : 3), modes, out, profile, rrSizes: quick ? RR_SIZES_QUICK : RR_SIZES }
}
