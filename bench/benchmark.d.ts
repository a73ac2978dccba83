// The part of the `benchmark` package (2.1.4, no bundled types) bench/micro.ts uses.
declare module 'benchmark' {
  class Benchmark {
    constructor (name: string, fn: () => void, options?: { maxTime?: number, minSamples?: number })
    name: string
    hz: number // calls per second
    stats: { mean: number, rme: number } // mean seconds per call, relative margin of error (%)
    run (options?: { async?: boolean }): this
  }
  export = Benchmark
}
