// A binary min-heap: the prober's next-due probe among thousands, in O(log n) per probe.

export class MinHeap<T> {
  private readonly items: T[] = []

  constructor (private readonly less: (a: T, b: T) => number) {}

  get size (): number {
    return this.items.length
  }

  peek (): T | undefined {
    return this.items[0]
  }

  push (item: T): void {
    const a = this.items
    a.push(item)
    for (let i = a.length - 1; i > 0;) {
      const parent = (i - 1) >> 1
      if (this.less(a[i], a[parent]) >= 0) break
      ;[a[i], a[parent]] = [a[parent], a[i]]
      i = parent
    }
  }

  pop (): T | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length === 0 || last === undefined) return top
    a[0] = last
    for (let i = 0; ;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < a.length && this.less(a[l], a[m]) < 0) m = l
      if (r < a.length && this.less(a[r], a[m]) < 0) m = r
      if (m === i) break
      ;[a[i], a[m]] = [a[m], a[i]]
      i = m
    }
    return top
  }
}
