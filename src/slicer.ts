// Long work on the event loop, in slices: past SLICE_MS of it the loop gets a turn, so the
// health probes, the control socket and the peer sources never wait much longer than that
// behind a list page being parsed or a 5,000-row reply being built.

export const SLICE_MS = 5

/**
 * A function to await between items of a long job: it returns at once until ms of work
 * have passed since the last turn, then lets the event loop run (setImmediate: timers and
 * I/O first) before it returns.
 */
export function slicer (ms = SLICE_MS): () => Promise<void> {
  let since = performance.now()
  return async () => {
    if (performance.now() - since <= ms) return
    await new Promise((resolve) => setImmediate(resolve))
    since = performance.now()
  }
}
