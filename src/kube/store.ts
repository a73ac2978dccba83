// A reflector's objects by namespace, then name: the same lookups as one Map by
// "namespace/name", without a key string per object. At 150,000 Pods such keys are as
// much heap as the pods' names themselves; here the name is the string the projected
// object already holds, and each namespace's name once.

/** "namespace/name" (or "name" for cluster-scoped kinds) split into its two parts. */
export function splitKey (key: string): [namespace: string, name: string] {
  const slash = key.indexOf('/')
  return slash < 0 ? ['', key] : [key.slice(0, slash), key.slice(slash + 1)]
}

export function joinKey (namespace: string, name: string): string {
  return namespace === '' ? name : `${namespace}/${name}`
}

export class KeyedStore<T> {
  private readonly byNamespace = new Map<string, Map<string, T>>()
  private count = 0

  get size (): number { return this.count }

  get (key: string): T | undefined { return this.getIn(...splitKey(key)) }
  has (key: string): boolean { return this.hasIn(...splitKey(key)) }

  getIn (namespace: string, name: string): T | undefined { return this.byNamespace.get(namespace)?.get(name) }
  hasIn (namespace: string, name: string): boolean { return this.byNamespace.get(namespace)?.has(name) === true }

  setIn (namespace: string, name: string, value: T): void {
    let m = this.byNamespace.get(namespace)
    if (m === undefined) this.byNamespace.set(namespace, m = new Map())
    const before = m.size
    m.set(name, value)
    this.count += m.size - before
  }

  deleteIn (namespace: string, name: string): boolean {
    const m = this.byNamespace.get(namespace)
    if (m?.delete(name) !== true) return false
    this.count--
    if (m.size === 0) this.byNamespace.delete(namespace)
    return true
  }

  * values (): Generator<T> {
    for (const m of this.byNamespace.values()) yield * m.values()
  }

  /** The keys, "namespace/name", each made as it is read. */
  * keys (): Generator<string> {
    for (const [namespace, m] of this.byNamespace) for (const name of m.keys()) yield joinKey(namespace, name)
  }

  /** The names held, by namespace: the live maps, not to be changed while iterated. */
  namespaces (): IterableIterator<[string, Map<string, T>]> {
    return this.byNamespace.entries()
  }
}
