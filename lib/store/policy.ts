/**
 * Which resident unit a store evicts next. A unit is what is paged out and in
 * as a whole: a Buffer entry, or one column of a table entry. Both policies keep
 * the resident units in a doubly linked list, so every step is O(1) (eviction
 * may pass over held units).
 */

/** A node of the policy's list; the store's units extend it. */
export interface PolicyNode {
  /** @internal */ prev: PolicyNode | null
  /** @internal */ next: PolicyNode | null
  /** @internal SIEVE's visited bit. */ visited: boolean
}

/** The names `createStore({ policy })` accepts. */
export type PolicyName = 'lru' | 'sieve'

export const POLICIES: readonly PolicyName[] = ['lru', 'sieve']

/** Orders the resident units of one store. */
export interface Policy {
  /** A unit became resident. */
  insert(node: PolicyNode): void
  /** A resident unit was read. */
  touch(node: PolicyNode): void
  /** A unit stopped being resident (evicted, paged in and dropped, or deleted). */
  remove(node: PolicyNode): void
  /** The unit to evict next among those `evictable` allows, or `undefined` when none is. */
  victim(evictable: (node: PolicyNode) => boolean): PolicyNode | undefined
}

/** A list from `head` (newest) to `tail` (oldest). */
class List {
  head: PolicyNode | null = null
  tail: PolicyNode | null = null

  pushHead(node: PolicyNode): void {
    node.prev = null
    node.next = this.head
    if (this.head !== null) this.head.prev = node
    else this.tail = node
    this.head = node
  }

  unlink(node: PolicyNode): void {
    if (node.prev !== null) node.prev.next = node.next
    else if (this.head === node) this.head = node.next
    if (node.next !== null) node.next.prev = node.prev
    else if (this.tail === node) this.tail = node.prev
    node.prev = null
    node.next = null
  }
}

/** Least recently used: a read moves the unit to the head; the victim is the oldest evictable unit. */
class Lru implements Policy {
  readonly #list = new List()

  insert(node: PolicyNode): void {
    this.#list.pushHead(node)
  }

  touch(node: PolicyNode): void {
    if (this.#list.head === node) return
    this.#list.unlink(node)
    this.#list.pushHead(node)
  }

  remove(node: PolicyNode): void {
    this.#list.unlink(node)
  }

  victim(evictable: (node: PolicyNode) => boolean): PolicyNode | undefined {
    for (let n = this.#list.tail; n !== null; n = n.prev) if (evictable(n)) return n
    return undefined
  }
}

/**
 * SIEVE (Zhang et al., NSDI 2024): a FIFO with a visited bit per unit and a hand
 * that moves from the oldest unit toward the newest, clearing visited bits and
 * evicting the first unit it finds unvisited. A read only sets the bit, so a
 * scan of once-read values cannot push out the values read again and again.
 */
class Sieve implements Policy {
  readonly #list = new List()
  #hand: PolicyNode | null = null

  insert(node: PolicyNode): void {
    node.visited = false
    this.#list.pushHead(node)
  }

  touch(node: PolicyNode): void {
    node.visited = true
  }

  remove(node: PolicyNode): void {
    if (this.#hand === node) this.#hand = node.prev
    this.#list.unlink(node)
  }

  victim(evictable: (node: PolicyNode) => boolean): PolicyNode | undefined {
    // From the hand to the head, then two whole passes: the first clears every
    // visited bit, so the second finds any evictable unit there is.
    let wraps = 0
    let n = this.#hand ?? this.#list.tail
    while (n !== null && wraps < 3) {
      if (!evictable(n)) {
        // Held units keep their bit and are passed over.
      } else if (n.visited) {
        n.visited = false
      } else {
        this.#hand = n.prev
        return n
      }
      n = n.prev
      if (n === null) {
        n = this.#list.tail
        wraps++
      }
    }
    return undefined
  }
}

/** The policy called `name`. */
export function makePolicy(name: PolicyName): Policy {
  return name === 'lru' ? new Lru() : new Sieve()
}
