// What thousands of pods repeat, kept once: namespaces (and the reflector's "namespace/"
// key prefix), node names, label sets (a ReplicaSet's pods share theirs) and named-port
// lists. JSON.parse makes a new string and object for every occurrence, which at 150,000
// pods is most of a pod record's heap. The pool is bounded: past its size it starts
// afresh, which costs sharing, never correctness (shared values are frozen).
const LIMIT = 200_000

class Pool {
  private readonly byKey = new Map<string, unknown>()

  get<T> (key: string, make: () => T): T {
    let v = this.byKey.get(key) as T | undefined
    if (v === undefined) {
      if (this.byKey.size >= LIMIT) this.byKey.clear()
      v = make()
      this.byKey.set(key, v)
    }
    return v
  }
}

const strings = new Pool()
const objects = new Pool()

export function internString (s: string): string {
  return strings.get(s, () => s)
}

/** One frozen object for every plain JSON value of equal content. */
export function shareValue<T extends object> (v: T): Readonly<T> {
  return objects.get(JSON.stringify(v), () => Object.freeze(v))
}
