// Retry delays for a peer source whose store or seeds went away: doubling from a
// short first delay up to a cap, with jitter so a cluster of daemons does not
// retry in lockstep, and back to the start once the source answers again.
export class Backoff {
  private attempt = 0

  constructor (private readonly firstMs = 250, private readonly maxMs = 8000) {}

  /** The delay before the next retry. */
  next (): number {
    const ms = Math.min(this.maxMs, this.firstMs * 2 ** this.attempt)
    this.attempt = Math.min(this.attempt + 1, 16)
    return ms / 2 + Math.random() * ms / 2
  }

  reset (): void {
    this.attempt = 0
  }
}
