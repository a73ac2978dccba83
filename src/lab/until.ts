// Waiting for something a test expects to happen soon, measuring how soon.

/** Polls what() every stepMs; resolves to the ms it took, or -1 after ms without it. */
export async function until (what: () => boolean | Promise<boolean>, ms: number, stepMs = 10): Promise<number> {
  const start = Date.now()
  while (!(await what())) {
    if (Date.now() - start > ms) return -1
    await new Promise((resolve) => setTimeout(resolve, stepMs))
  }
  return Date.now() - start
}
