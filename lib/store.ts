/**
 * `createStore`: a memory budget that pages out by itself. The store keeps
 * Buffers and Arrow tables resident up to `residentBytes`, pages the coldest
 * out (a Buffer whole, a table column by column) when the budget is passed or
 * the OS is pressed for memory, and pages an entry back in when it is read.
 */
import { totalmem } from 'node:os'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { inspect } from 'node:util'

import type * as Arrow from 'apache-arrow'

import type * as ArrowEntry from './arrow.js'
import { classesOf } from './arrow/assemble.js'
import type { ArrowModule } from './arrow/layout.js'
import { TABLE_OBJECTS, isBytes, isFlechetteTable } from './arrow/input.js'
import { columnsByName, isTable, select } from './arrow/select.js'
import { type StoreMessage, evictChannel, pageinChannel } from './channels.js'
import { ColdpageError, abortError, invalidArgType, invalidArgValue, rangeOutside } from './errors.js'
import { inspectState } from './inspect.js'
import type { Handle, SharedHandle } from './handle.js'
import native, { zeroCopyAllowed } from './native.js'
import { pageout, pageoutAsync } from './pageout.js'
import type { ArrowModuleLike, ArrowTable, FlechetteTable, TableReadAsyncOptions, TableReadOptions } from './table-types.js'
import { type PolicyName, type PolicyNode, POLICIES, type Policy, makePolicy } from './store/policy.js'
import type { PressureLevel } from './pressure.js'
import { follow } from './store/watch.js'
import { type Copies, bufferNeedsCopy, copyInTurns, measure, owned, ownedBuffer, ownedBufferLater, ownedLater, residentCost } from './store/own.js'
import { type Column, type TableShape, build, columnOf, shapeOf } from './store/table.js'
import { knownOptions } from './options.js'
import { type BackendName, type Data, backendOption, byteCount, chunks, signalOption, splitSignal, withSignal } from './validate.js'

export type { PolicyName } from './store/policy.js'
export type { ArrowModuleLike, ArrowTable, TableReadAsyncOptions, TableReadOptions } from './table-types.js'

/** Options of `createStore`. */
export interface StoreOptions {
  /**
   * The budget: bytes of values kept resident (a non-negative safe integer).
   * Default: a quarter of the memory this process can use (physical memory,
   * clamped by its memory cgroup's limit, v2 or v1); `stats().budgetSource` says which.
   */
  residentBytes?: number
  /** Where evicted values go; default the global selector at each eviction. */
  backend?: BackendName
  /** Which resident value to evict first: `'sieve'` (the default) or `'lru'`. */
  policy?: PolicyName
  /** Shrink the resident set under the OS's memory pressure (half the budget at moderate, held entries only at critical). Default true. */
  pressure?: boolean
  /**
   * The apache-arrow module of the tables set, needed only for tables from
   * another copy of apache-arrow than coldpage's with nested or dictionary
   * columns (as for `pageoutTable`).
   */
  arrow?: ArrowModuleLike
}

/** Options of `store.set`. */
export interface SetOptions {
  /**
   * `'table'`: the bytes given are Arrow IPC (stream or file format) and the entry
   * is a table (read with `getTable`). Default: bytes are a Buffer entry, tables a table entry.
   */
  as?: 'table'
}

/** Options of `store.setAsync`. */
export interface SetAsyncOptions extends SetOptions {
  /** Aborts the call: it rejects with `AbortError` and the entry is not set. */
  signal?: AbortSignal | undefined
}

/** Options of `store.getAsync` and `store.getRangeAsync`. */
export interface GetAsyncOptions {
  /** Aborts the call: it rejects with `AbortError`. */
  signal?: AbortSignal | undefined
}

/** One entry, as iteration gives it. */
export interface StoreEntryInfo {
  /** A Buffer entry or an Arrow table entry. */
  kind: 'buffer' | 'table'
  /** The value's bytes (for a table, its columns' buffers). */
  byteLength: number
  /** Of those, the bytes resident now. */
  residentBytes: number
  /** Whether a `hold` pins it. */
  held: boolean
}

/** What a store has done: a plain, JSON-serialisable object. */
export interface StoreStats {
  /** Reads (`get`, `getRange`, `getTable`) of entries whose bytes were all resident. */
  hits: number
  /** Reads of entries with bytes paged out. */
  misses: number
  /** Units (a Buffer, a table column) paged back in. */
  pageIns: number
  /** Units paged out. */
  pageOuts: number
  /** Units evicted to keep the budget (or under memory pressure). */
  evictions: number
  /** Bytes resident now. */
  residentBytes: number
  /** Bytes paged out now. */
  coldBytes: number
  /** The budget set: the config's `residentBytes` while set, else the store's own (`createStore`, `resize`). */
  budgetBytes: number
  /**
   * Where `budgetBytes` comes from: `'option'` (`createStore`'s `residentBytes` or
   * `resize`), `'config'` (the config's `residentBytes`), or for the default budget
   * `'cgroup2'` / `'cgroup1'` (a memory cgroup's limit) or `'physical'` (physical memory).
   */
  budgetSource: BudgetSource
  /** The budget in force: smaller than `budgetBytes` under memory pressure. */
  effectiveBudgetBytes: number
  /** The OS's memory pressure as the store last saw it. */
  pressure: PressureLevel
}

/** Where a store's budget comes from (see `StoreStats.budgetSource`). */
export type BudgetSource = 'option' | 'config' | 'cgroup2' | 'cgroup1' | 'physical'

/** The default budget: a share of the memory this process can use (the core's `budget`). */
function defaultBudget(): { bytes: number; source: BudgetSource } {
  const b = native.defaultBudget(totalmem())
  return { bytes: b.bytes, source: b.source as BudgetSource }
}

/** What is paged out and in as a whole: a Buffer entry, or one column of a table entry. */
interface Unit extends PolicyNode {
  readonly entry: Entry
  /** The column of a table entry; -1 for a Buffer entry. */
  readonly column: number
  /** The bytes it is counted for while resident: its own bytes, or the backing memory it keeps alive. */
  readonly bytes: number
  /**
   * Set while the resident value is the caller's view of much more memory than
   * its bytes: `set` copies it (if it stays resident) so that it owns exactly them.
   */
  own: boolean
  /** The bytes while resident. */
  value: Buffer | Column | null
  /**
   * The bytes paged out: while cold, and while resident again after a page-in
   * from the file backend (evicting it again then writes nothing).
   */
  cold: Handle | ArrowEntry.TableHandle | null
  /**
   * An async page-out or page-in of this unit in flight: no eviction picks it
   * meanwhile, and a page-in reads instead of taking its cold handle.
   */
  busy: Promise<unknown> | null
}

interface Entry {
  /** The entry's key (for `coldpage:store:*` messages); set when the entry is stored. */
  key: string
  readonly units: Unit[]
  /** Set for a table entry. */
  readonly table: { shape: TableShape; byName: ReadonlyMap<string, number>; arrow: ArrowModule | undefined } | null
  readonly byteLength: number
  holds: number
  deleted: boolean
}

const INTERNAL = Symbol('coldpage.store.internal')

/** The keys of `StoreOptions`. */
const STORE_OPTIONS = ['residentBytes', 'backend', 'policy', 'pressure', 'arrow'] as const
/** The keys of `SetOptions`. */
const SET_OPTIONS = ['as'] as const
/** The keys of `SetAsyncOptions`. */
const SET_ASYNC_OPTIONS = ['as', 'signal'] as const
/** The keys of `GetAsyncOptions`. */
const GET_ASYNC_OPTIONS = ['signal'] as const

/**
 * Whether a pageout with `backend` (or the selector's, when undefined) now gives
 * a file handle whose views are zero-copy: the file backend, plain blocks (views of
 * encrypted or compressed handles are decoded copies), a runtime with external
 * Buffers. What `auto` picks is asked each time (it follows `swapon`/`swapoff`; no trial write).
 */
function zeroCopyFile(backend: BackendName | undefined): boolean {
  if (!zeroCopyAllowed()) return false
  const c = native.getConfig()
  if (c.encrypt || c.compress !== 'none') return false
  if (backend !== undefined) return backend === 'file'
  if (c.backend === 'swap' || c.backend === 'file') return c.backend === 'file'
  return native.nextBackend() === 'file'
}

let arrowEntry: typeof ArrowEntry | undefined
/** coldpage/arrow, loaded with apache-arrow the first time a table is set. */
function arrowModule(): typeof ArrowEntry {
  arrowEntry ??= require('./arrow.js') as typeof ArrowEntry
  return arrowEntry
}

/** The error of a `setAsync` whose bytes were detached or transferred before they were stored. */
function detachedValue(key: string): Error {
  const err = new TypeError(`setAsync(${JSON.stringify(key)}): the value was detached or transferred before it was stored; nothing was set`)
  Object.defineProperty(err, 'code', { value: 'ERR_INVALID_STATE', enumerable: true, writable: true, configurable: true })
  return err
}

/** A resident column of a table entry as a one-column table, the way it is paged out. */
function columnTable(unit: Unit): Arrow.Table {
  const { shape } = unit.entry.table as NonNullable<Entry['table']>
  const field = shape.schema.fields[unit.column] as Arrow.Field
  return build(shape, [field], [unit.value as Column], shape.batchRows.map((_, b) => b))
}

/** Bytes of `entry` resident now. */
function residentOf(entry: Entry): number {
  let resident = 0
  for (const unit of entry.units) if (unit.value !== null) resident += unit.bytes
  return resident
}

function keyOf(key: unknown): string {
  if (typeof key !== 'string') throw invalidArgType('key', 'a string', key)
  return key
}

/** A Buffer over the bytes of `value` (one chunk: no copy; several: concatenated). */
function bufferOf(value: unknown): Buffer {
  const parts = chunks(value)
  if (parts.length === 1) {
    const p = parts[0] as Uint8Array
    return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength)
  }
  return Buffer.concat(parts)
}

/**
 * Buffers and Arrow tables under a budget of resident bytes. Reading an entry
 * pages it in when it is cold; the coldest resident values are paged out
 * (Buffers whole, tables column by column) whenever the budget is passed.
 *
 * With the file backend where Buffers can be zero-copy (and `encrypt` and
 * `compress` are off), a Buffer entry is written to scratch at `set` and its
 * resident bytes are a zero-copy view of that copy: page cache the OS can
 * reclaim, not anonymous memory, and evicting writes nothing. Elsewhere (swap,
 * tables, Electron, encoded scratch) the resident bytes are the value set or
 * paged in.
 *
 * Note: treat values as immutable once set (the store may keep the Buffer it was
 * given, and hands back the bytes it stored). Values returned stay valid after
 * later evictions, deletes and `dispose()`: they are the caller's (a view keeps
 * its scratch bytes until it is collected). Dispose the store (`dispose()` or
 * `using`) to free what it paged out.
 *
 * @example
 * ```ts
 * using store = createStore({ residentBytes: 512 * 2 ** 20 })
 * store.set('frame:1', buffer)
 * const bytes = store.get('frame:1') // paged back in if it was evicted
 * ```
 */
export class Store implements Disposable, Iterable<[string, StoreEntryInfo]> {
  readonly #entries = new Map<string, Entry>()
  readonly #policy: Policy
  readonly #backend: BackendName | undefined
  readonly #arrow: ArrowModule | undefined
  readonly #unwatch: (() => void) | undefined
  /** The store's own budget (`createStore`, `resize`). */
  #budget: number
  /** Where the store's own budget comes from. */
  #budgetSource: BudgetSource
  /** The config's `residentBytes`, which replaces the store's own while set. */
  #configBudget: number | null = null
  #pressure: PressureLevel = 'none'
  #resident = 0
  /** Bytes of every entry's value. */
  #total = 0
  #held = 0
  #disposed = false
  readonly #counts = { hits: 0, misses: 0, pageIns: 0, pageOuts: 0, evictions: 0 }

  /** Stores come from `createStore`. */
  private constructor(token: symbol, opts: unknown) {
    if (token !== INTERNAL) throw new TypeError('Store instances are created by createStore()')
    const o = knownOptions<StoreOptions>(opts, STORE_OPTIONS)
    if (o.residentBytes === undefined) {
      const d = defaultBudget()
      this.#budget = d.bytes
      this.#budgetSource = d.source
    } else {
      this.#budget = byteCount('opts.residentBytes', o.residentBytes)
      this.#budgetSource = 'option'
    }
    this.#backend = backendOption(o.backend)
    const policy = o.policy ?? 'sieve'
    if (!POLICIES.includes(policy)) throw invalidArgValue('opts.policy', POLICIES.map((p) => `'${p}'`).join(' or '), policy)
    this.#policy = makePolicy(policy)
    if (o.pressure !== undefined && typeof o.pressure !== 'boolean') throw invalidArgType('opts.pressure', 'a boolean', o.pressure)
    if (o.arrow !== undefined && (typeof o.arrow !== 'object' || o.arrow === null)) {
      throw invalidArgType('opts.arrow', 'the apache-arrow module', o.arrow)
    }
    this.#arrow = o.arrow as ArrowModule | undefined
    this.#unwatch = follow({
      pressure: o.pressure !== false,
      onPressure: (level) => this.#onChange(() => (this.#pressure = level)),
      onBudget: (budget) => this.#onChange(() => (this.#configBudget = budget)),
    })
  }

  /** @internal */
  static create(opts: unknown): Store {
    return new Store(INTERNAL, opts)
  }

  /** Bytes of values resident now. */
  get residentBytes(): number {
    return this.#resident
  }

  /** Bytes of values paged out now. */
  get coldBytes(): number {
    return this.#total - this.#resident
  }

  /** The number of entries. */
  get size(): number {
    return this.#entries.size
  }

  /** Whether the store was disposed. */
  get disposed(): boolean {
    return this.#disposed
  }

  #live(): void {
    if (this.#disposed) throw new ColdpageError('ERR_COLDPAGE_DISPOSED', 'store is disposed')
  }

  /** The budget set: the config's `residentBytes` while set, else the store's own. */
  #budgetSet(): number {
    return this.#configBudget ?? this.#budget
  }

  /** The budget in force: the budget set, halved under moderate memory pressure, none under critical. */
  #effectiveBudget(): number {
    if (this.#pressure === 'critical') return 0
    const budget = this.#budgetSet()
    return this.#pressure === 'moderate' ? Math.floor(budget / 2) : budget
  }

  /**
   * Stores `value` under `key` (replacing what was there), resident until evicted.
   * The budget counts what a resident value keeps alive: a value that is a view of
   * much more memory (the columns of a table read from one file buffer) is copied,
   * if it stays resident, into memory of its own, so the caller's buffer can go.
   *
   * @param value - bytes (an ArrayBufferView, an ArrayBuffer, or an array of them,
   *   concatenated), an apache-arrow `Table` of any copy >= 17, a flechette `Table`,
   *   or with `{ as: 'table' }` Arrow IPC bytes (stream or file format)
   * @throws `ERR_INVALID_ARG_TYPE` for a key that is not a string or a value that is
   *   neither bytes nor a table; `ERR_INVALID_ARG_VALUE` for `as: 'table'` bytes that are
   *   not Arrow IPC; `ERR_COLDPAGE_NO_SPACE` when evicting to keep the budget
   *   found the scratch space full (the value is stored, resident, and nothing is lost)
   * @example
   * ```ts
   * store.set('trips', readFileSync('trips.arrow'), { as: 'table' })
   * const fares = store.getTable('trips', { columns: ['fare'] })
   * ```
   */
  set(key: string, value: Data | readonly Data[] | ArrowTable | FlechetteTable, opts?: SetOptions): void {
    this.#live()
    const k = keyOf(key)
    const entry = this.#entryOf(value, knownOptions<SetOptions>(opts, SET_OPTIONS))
    entry.key = k
    this.delete(k)
    this.#entries.set(k, entry)
    this.#total += entry.byteLength
    for (const unit of entry.units) this.#admit(unit)
    if (entry.table === null && zeroCopyFile(this.#backend)) this.#writeThrough(entry.units[0] as Unit)
    this.#fit(entry)
    for (const unit of entry.units) this.#own(unit)
  }

  /** The entry `set` or `setAsync` stores for `value`, not counted yet. */
  #entryOf(value: unknown, o: Partial<SetOptions>): Entry {
    if (o.as !== undefined && o.as !== 'table') throw invalidArgValue('opts.as', "'table'", o.as)
    if (o.as === 'table' || isTable(value) || isFlechetteTable(value)) return this.#tableEntry(value)
    if (isBytes(value)) return this.#bufferEntry(value)
    throw invalidArgType('value', `bytes (an ArrayBufferView, an ArrayBuffer or an array of them), ${TABLE_OBJECTS} or, with { as: 'table' }, Arrow IPC bytes`, value)
  }

  /**
   * `set` with the page-outs (the entry's own copy on the file backend, and the
   * evictions that make room) on the thread pool. Room is made before the entry
   * counts, so the resident bytes never pass the budget by more than this entry;
   * copies that make resident columns own their bytes run one unit per turn.
   *
   * @param opts - as for `set`, and `signal`: an abort before the entry is stored
   *   rejects with `AbortError`, sets nothing and leaves no scratch bytes of it
   *   (entries evicted to make room meanwhile stay stored, paged out). Do not
   *   change the value until the promise settles; bytes detached or transferred
   *   before they were stored reject with `ERR_INVALID_STATE` and set nothing.
   * @returns a promise that settles once the entry is stored and the budget holds
   * @throws as `set`
   * @example
   * ```ts
   * await store.setAsync('trips', readFileSync('trips.arrow'), { as: 'table' })
   * ```
   */
  async setAsync(key: string, value: Data | readonly Data[] | ArrowTable | FlechetteTable, opts?: SetAsyncOptions): Promise<void> {
    this.#live()
    const k = keyOf(key)
    const o = knownOptions<SetAsyncOptions>(opts, SET_ASYNC_OPTIONS)
    const signal = signalOption(o.signal)
    const entry = this.#entryOf(value, o)
    entry.key = k
    try {
      if (signal?.aborted) throw abortError(signal.reason)
      if (entry.table === null && zeroCopyFile(this.#backend)) await this.#writeThroughAsync(entry.units[0] as Unit, signal)
      const old = this.#entries.get(k)
      const oldResident = old === undefined ? 0 : residentOf(old)
      // Room for the entry, evicting others (never the old value under the key: it goes at once below).
      await this.#fitAsync(old, signal, entry.byteLength - oldResident)
      // What still does not fit is the entry's own: its columns go cold, from the last.
      let over = this.#resident - oldResident + entry.byteLength - this.#effectiveBudget()
      for (let u = entry.units.length - 1; u >= 0 && over > 0; u--) {
        const unit = entry.units[u] as Unit
        if (unit.bytes === 0 || unit.value === null) continue
        if (unit.cold === null) {
          unit.cold = await this.#pageoutUnit(unit, signal)
          this.#counts.pageOuts++
        }
        unit.value = null
        this.#counts.evictions++
        over -= unit.bytes
      }
      if (signal?.aborted) throw abortError(signal.reason)
      this.#live()
      const unit = entry.units[0] as Unit
      if (entry.table === null && unit.value !== null && (unit.value as Buffer).byteLength !== entry.byteLength) throw detachedValue(k)
    } catch (error) {
      for (const unit of entry.units) unit.cold?.dispose()
      throw error
    }
    // Stored: from here on nothing is undone.
    this.delete(k)
    this.#entries.set(k, entry)
    this.#total += entry.byteLength
    for (const unit of entry.units) if (unit.value !== null) this.#admit(unit)
    await this.#fitAsync(entry)
    for (const unit of entry.units) {
      if (!unit.own || unit.value === null) continue
      await nextTurn()
      if (entry.deleted || this.#disposed) return
      await this.#ownAsync(unit)
    }
  }

  /**
   * Copies a resident unit that is a view of much more memory than its bytes
   * (a column of a table read from one file buffer) into memory of its own, so
   * that the caller's backing buffer is not kept alive by the store. Runs after
   * the evictions that make room, so the copies never add to them.
   */
  #own(unit: Unit): void {
    if (!unit.own) return
    unit.own = false
    if (unit.value === null) return
    const M = unit.entry.table?.arrow
    unit.value = unit.column < 0 ? ownedBuffer(unit.value as Buffer) : owned(unit.value as Column, unit.bytes, M && ((data) => M.makeVector(data)))
  }

  /**
   * `#own` for `setAsync`: the copy is made a few MiB per turn and becomes the
   * unit's resident value once whole. A unit evicted, deleted or replaced meanwhile
   * keeps what it has. A source detached or transferred meanwhile (setAsync's
   * contract says not to) loses the entry: it is deleted and setAsync rejects with
   * `ERR_INVALID_STATE`.
   */
  async #ownAsync(unit: Unit): Promise<void> {
    if (!unit.own) return
    unit.own = false
    const source = unit.value
    if (source === null) return
    const M = unit.entry.table?.arrow
    const current = (): boolean => unit.value === source && !unit.entry.deleted && !this.#disposed
    let copy: Buffer | Column | undefined
    let whole = false
    try {
      let copies: Copies
      ;[copy, copies] =
        unit.column < 0
          ? ownedBufferLater(source as Buffer)
          : ownedLater(source as Column, unit.bytes, M && ((data) => M.makeVector(data)))
      whole = await copyInTurns(copies, current, nextTurn)
    } catch (err) {
      // Views of a buffer detached already cannot even be made (a TypeError).
      if (!(err instanceof TypeError)) throw err
    }
    if (!current()) return
    if (whole && copy !== undefined) {
      unit.value = copy
      return
    }
    this.delete(unit.entry.key)
    throw detachedValue(unit.entry.key)
  }

  /**
   * Writes a Buffer entry to the file backend at once and keeps a zero-copy view
   * of that copy as its resident bytes: the caller's Buffer is let go, the
   * resident bytes are page cache the OS can reclaim (not anonymous memory), and
   * evicting the entry later writes nothing. Where the write fails (no space),
   * the entry keeps the caller's bytes and a later eviction tries again.
   */
  #writeThrough(unit: Unit): void {
    let handle: Handle
    try {
      handle = pageout(unit.value as Buffer, { backend: 'file' })
    } catch {
      return
    }
    this.#keepWritten(unit, handle)
  }

  /** Makes `handle`, the unit's copy on the file backend, its cold copy and (where it can) its resident bytes. */
  #keepWritten(unit: Unit, handle: Handle): void {
    this.#counts.pageOuts++
    unit.cold = handle
    try {
      unit.value = handle.view()
      unit.own = false
    } catch {
      // The copy on disk stays for the eviction; the caller's bytes stay resident.
    }
  }

  /** `#writeThrough` with the write on the thread pool; an abort leaves the caller's bytes resident and no copy. */
  async #writeThroughAsync(unit: Unit, signal: AbortSignal | undefined): Promise<void> {
    let handle: Handle
    try {
      handle = await pageoutAsync(unit.value as Buffer, { backend: 'file', ...withSignal(signal) })
    } catch (error) {
      // An input detached or transferred meanwhile is the caller's error; anything else (no space) is retried at eviction.
      if (signal?.aborted || (error as { code?: unknown }).code === 'ERR_INVALID_STATE') throw error
      return
    }
    this.#keepWritten(unit, handle)
  }

  #bufferEntry(value: unknown): Entry {
    const bytes = bufferOf(value)
    const entry: Entry = { key: '', units: [], table: null, byteLength: bytes.byteLength, holds: 0, deleted: false }
    const unit = this.#unit(entry, -1, bytes.byteLength, bytes)
    unit.own = bufferNeedsCopy(bytes)
    entry.units.push(unit)
    return entry
  }

  #tableEntry(value: unknown): Entry {
    const A = arrowModule()
    const table = A.tableOf(value, 'value')
    const M = this.#arrow ?? A.moduleOf(table)
    A.checkWritable(M, table)
    const shape = shapeOf(table, classesOf(table, M))
    const columns = table.schema.fields.map((_, c) => columnOf(table, c))
    const measures = columns.map(measure)
    const sizes = measures.map(residentCost)
    const units: Unit[] = []
    const entry: Entry = {
      key: '',
      units,
      table: { shape, byName: columnsByName(table.schema), arrow: M },
      byteLength: sizes.reduce((sum, n) => sum + n, 0),
      holds: 0,
      deleted: false,
    }
    columns.forEach((column, c) => {
      const unit = this.#unit(entry, c, sizes[c] as number, column)
      unit.own = (measures[c] as { copy: boolean }).copy
      units.push(unit)
    })
    return entry
  }

  #unit(entry: Entry, column: number, bytes: number, value: Buffer | Column): Unit {
    return { entry, column, bytes, value, own: false, cold: null, busy: null, prev: null, next: null, visited: false }
  }

  /** Counts a unit that became resident. */
  #admit(unit: Unit): void {
    this.#resident += unit.bytes
    if (unit.entry.holds > 0) this.#held += unit.bytes
    this.#policy.insert(unit)
  }

  /**
   * Evicts until the budget holds, never `keep`'s units while others can go,
   * nor held entries' units; `keep`'s units go last (as many as do not fit).
   */
  #fit(keep?: Entry): void {
    const budget = this.#effectiveBudget()
    while (this.#resident > budget) {
      const victim = this.#policy.victim((n) => {
        const u = n as Unit
        return u.entry !== keep && u.entry.holds === 0 && u.bytes > 0 && u.busy === null
      }) as Unit | undefined
      if (victim === undefined) break
      this.#evict(victim)
    }
    if (keep !== undefined && keep.holds === 0) {
      // Column by column, from the last, until the rest fits.
      for (let u = keep.units.length - 1; u >= 0 && this.#resident > budget; u--) {
        const unit = keep.units[u] as Unit
        if (unit.value !== null && unit.bytes > 0 && unit.busy === null) this.#evict(unit)
      }
    }
  }

  /**
   * Makes `unit` cold: pages it out, or only drops the resident bytes when a
   * page-in kept their copy on disk. On failure (no space) it stays resident and
   * the error is thrown.
   */
  #evict(unit: Unit): void {
    if (unit.cold === null) {
      const opts = this.#backend === undefined ? {} : { backend: this.#backend }
      const table = unit.entry.table
      try {
        if (table === null) {
          unit.cold = pageout(unit.value as Buffer, opts)
        } else {
          unit.cold = arrowModule().pageoutTable(columnTable(unit), table.arrow === undefined ? opts : { ...opts, arrow: table.arrow })
        }
      } catch (error) {
        // Published, then thrown (or, for a change of budget or pressure, reported only here).
        if (evictChannel.hasSubscribers) evictChannel.publish({ ...this.#message(unit), error })
        throw error
      }
      this.#counts.pageOuts++
    }
    this.#dropResident(unit)
  }

  /** Makes a unit with a copy on disk cold: its resident bytes are let go. */
  #dropResident(unit: Unit): void {
    unit.value = null
    this.#policy.remove(unit)
    this.#resident -= unit.bytes
    this.#counts.evictions++
    if (evictChannel.hasSubscribers) evictChannel.publish(this.#message(unit))
  }

  /** The page-out of one unit (a Buffer, or one column as a one-column table) on the thread pool. */
  #pageoutUnit(unit: Unit, signal?: AbortSignal): Promise<Handle | ArrowEntry.TableHandle> {
    const opts = { ...(this.#backend === undefined ? {} : { backend: this.#backend }), ...(signal === undefined ? {} : { signal }) }
    const table = unit.entry.table
    if (table === null) return pageoutAsync(unit.value as Buffer, opts)
    return arrowModule().pageoutTableAsync(columnTable(unit), table.arrow === undefined ? opts : { ...opts, arrow: table.arrow })
  }

  /**
   * `#evict` with the page-out on the thread pool. The unit stays resident (and
   * readable) until its copy is stored; it is then let go only while the budget
   * still needs it, with `extra` bytes to come (a delete or a resize meanwhile
   * may have made room).
   */
  async #evictAsync(unit: Unit, extra = 0): Promise<void> {
    if (unit.cold === null) {
      const pending = this.#pageoutUnit(unit)
      unit.busy = pending
      let cold: Handle | ArrowEntry.TableHandle
      try {
        cold = await pending
      } catch (error) {
        if (evictChannel.hasSubscribers) evictChannel.publish({ ...this.#message(unit), error })
        throw error
      } finally {
        unit.busy = null
      }
      if (unit.entry.deleted || this.#disposed || unit.value === null) {
        cold.dispose()
        return
      }
      this.#counts.pageOuts++
      unit.cold = cold
    }
    if (unit.value !== null && unit.entry.holds === 0 && this.#resident + extra > this.#effectiveBudget()) this.#dropResident(unit)
  }

  /**
   * `#fit` with the page-outs on the thread pool, one at a time: evicts until
   * the resident bytes plus `extra` fit the budget, never `keep`'s units while
   * others can go (then `keep`'s, from the last column), nor held or busy ones.
   */
  async #fitAsync(keep?: Entry, signal?: AbortSignal, extra = 0): Promise<void> {
    const victim = (): Unit | undefined =>
      this.#policy.victim((n) => {
        const u = n as Unit
        return u.entry !== keep && u.entry.holds === 0 && u.bytes > 0 && u.busy === null
      }) as Unit | undefined
    for (;;) {
      if (signal?.aborted) throw abortError(signal.reason)
      if (this.#disposed || this.#resident + extra <= this.#effectiveBudget()) return
      const unit = victim()
      if (unit === undefined) break
      await this.#evictAsync(unit, extra)
    }
    if (keep === undefined || keep.deleted || keep.holds > 0 || extra !== 0) return
    for (let u = keep.units.length - 1; u >= 0 && this.#resident > this.#effectiveBudget(); u--) {
      const unit = keep.units[u] as Unit
      if (unit.value !== null && unit.bytes > 0 && unit.busy === null) await this.#evictAsync(unit)
      if (this.#disposed) return
    }
  }

  /** The `coldpage:store:*` message about `unit`. */
  #message(unit: Unit): StoreMessage {
    const { entry } = unit
    const message: StoreMessage = { store: this, key: entry.key, bytes: unit.bytes }
    if (entry.table !== null) message.column = (entry.table.shape.schema.fields[unit.column] as Arrow.Field).name
    return message
  }

  /**
   * The bytes of a cold unit: paged in (resident again) when `keep` or when
   * the unit fits in the budget beside the held entries, else read and left
   * cold. A file-backed copy stays on disk for the next eviction (values are
   * not changed once set) and a Buffer comes back as a view of it; a
   * swap-backed one is taken (no copy).
   */
  #pageIn(unit: Unit, keep: boolean): Buffer | Column {
    const cold = unit.cold as Handle | ArrowEntry.TableHandle
    const fits = keep || unit.bytes <= this.#effectiveBudget() - this.#held
    const take = fits && cold.backend !== 'file' && unit.busy === null
    let bytes: Buffer | Column
    if (unit.entry.table === null) {
      const h = cold as Handle
      // A file handle's view: zero-copy where the runtime allows, else a copy.
      bytes = take ? h.take() : h.backend === 'file' ? h.view() : h.readAt(0, unit.bytes)
    } else {
      const th = cold as ArrowEntry.TableHandle
      bytes = th.readColumns()[0] as Column
      if (take) th.dispose()
    }
    if (!fits) return bytes
    if (take) unit.cold = null
    unit.value = bytes
    this.#counts.pageIns++
    this.#admit(unit)
    if (pageinChannel.hasSubscribers) pageinChannel.publish(this.#message(unit))
    return bytes
  }

  /** The bytes of `unit`, resident or paged in, counted as read. */
  #read(unit: Unit, keep: boolean): Buffer | Column {
    if (unit.value !== null) {
      this.#policy.touch(unit)
      return unit.value
    }
    return this.#pageIn(unit, keep)
  }

  /** Counts a read of `units`: a hit when all are resident. */
  #count(units: readonly Unit[]): void {
    if (units.every((u) => u.value !== null)) this.#counts.hits++
    else this.#counts.misses++
  }

  /**
   * The value of `key`: a Buffer, or a table with every column; cold bytes are
   * paged in (and others evicted to make room).
   *
   * Note: in TypeScript, `getBuffer` (Buffer entries) and `getTable` (table
   * entries) return the one type without narrowing.
   *
   * @returns the value, or `undefined` when there is no entry
   * @throws `ERR_COLDPAGE_CORRUPT` / `ERR_COLDPAGE_IO` from paging in (the entry stays, paged out)
   */
  get(key: string): Buffer | ArrowTable | undefined {
    this.#live()
    const entry = this.#entries.get(keyOf(key))
    if (entry === undefined) return undefined
    if (entry.table === null) return this.#getBuffer(entry)
    return this.#getTable(entry, undefined)
  }

  /**
   * The value of a Buffer entry, as `get` gives it, typed as a Buffer.
   *
   * @returns the Buffer, or `undefined` when there is no entry
   * @throws `ERR_INVALID_ARG_VALUE` for a table entry (use `getTable`)
   * @example
   * ```ts
   * const frame = store.getBuffer('frame:1') // Buffer | undefined
   * ```
   */
  getBuffer(key: string): Buffer | undefined {
    this.#live()
    const k = keyOf(key)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table !== null) throw invalidArgValue('key', 'the key of a Buffer entry (use getTable for tables)', k)
    return this.#getBuffer(entry)
  }

  #getBuffer(entry: Entry): Buffer {
    const unit = entry.units[0] as Unit
    this.#count(entry.units)
    const bytes = this.#read(unit, false) as Buffer
    this.#fit(entry)
    return bytes
  }

  /**
   * `length` bytes at `offset` of a Buffer entry, as a fresh copy; a cold entry
   * is read without paging the rest of it in.
   *
   * @returns the bytes, or `undefined` when there is no entry
   * @throws `ERR_OUT_OF_RANGE` for a range outside the value, `ERR_INVALID_ARG_VALUE` for a table entry
   */
  getRange(key: string, offset: number, length: number): Buffer | undefined {
    this.#live()
    const k = keyOf(key)
    const o = byteCount('offset', offset)
    const l = byteCount('length', length)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table !== null) throw invalidArgValue('key', 'the key of a Buffer entry (use getTable for tables)', k)
    if (o + l > entry.byteLength) throw rangeOutside(o, l, entry.byteLength)
    const unit = entry.units[0] as Unit
    this.#count(entry.units)
    if (unit.value === null) return (unit.cold as Handle).readAt(o, l)
    this.#policy.touch(unit)
    return Buffer.from((unit.value as Buffer).subarray(o, o + l))
  }

  /**
   * Columns and record batches of a table entry. The columns asked for are
   * paged in when cold; with `batches`, cold columns are read for those
   * batches only and stay paged out.
   *
   * Note: the main entry types tables structurally (it needs no apache-arrow);
   * name apache-arrow's type to get it: `store.getTable<arrow.Table>(key)`.
   *
   * @returns a table of the caller's apache-arrow copy, or `undefined` when there is no entry
   * @throws `ERR_OUT_OF_RANGE` naming an unknown column or batch, `ERR_INVALID_ARG_VALUE` for a Buffer
   *   entry or an unknown option
   */
  getTable<T extends ArrowTable = ArrowTable>(key: string, opts?: TableReadOptions): T | undefined {
    this.#live()
    const k = keyOf(key)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table === null) throw invalidArgValue('key', 'the key of a table entry (use getBuffer for Buffers)', k)
    return this.#getTable(entry, opts) as unknown as T
  }

  #getTable(entry: Entry, opts: unknown): Arrow.Table {
    const table = entry.table as NonNullable<Entry['table']>
    const { shape } = table
    const { fields, columns, which, batches } = select(shape.schema, table.byName, shape.batchRows.length, opts)
    const some = (opts as { batches?: unknown } | undefined)?.batches !== undefined
    const units = columns.map((c) => entry.units[c] as Unit)
    this.#count(units)
    const decoded = units.map((unit) => {
      if (!some) return this.#read(unit, false) as Column
      if (unit.value !== null) {
        this.#policy.touch(unit)
        return batches.map((b) => (unit.value as Column)[b] as Arrow.Data)
      }
      return (unit.cold as ArrowEntry.TableHandle).readColumns({ batches })[0] as Column
    })
    this.#fit(entry)
    const picked = which.map((d) => decoded[d] as Column)
    return build(shape, fields, picked, batches)
  }

  /**
   * `get` with every page-in and eviction on the thread pool: cold bytes are
   * read into memory of the caller's (one copy, made off the JS thread), never
   * mapped views whose page faults would run on it.
   *
   * @param opts - `signal`: an abort rejects with `AbortError` (what was paged in stays resident)
   * @returns the value, or `undefined` when there is no entry
   * @throws as `get`
   * @example
   * ```ts
   * const frame = await store.getAsync('frame:1', { signal: AbortSignal.timeout(1000) })
   * ```
   */
  async getAsync(key: string, opts?: GetAsyncOptions): Promise<Buffer | ArrowTable | undefined> {
    this.#live()
    const k = keyOf(key)
    const signal = signalOption(knownOptions<GetAsyncOptions>(opts, GET_ASYNC_OPTIONS).signal)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table !== null) return this.#getTableAsync(entry, undefined, signal)
    if (signal?.aborted) throw abortError(signal.reason)
    this.#count(entry.units)
    const bytes = (await this.#readAsync(entry.units[0] as Unit, signal)) as Buffer
    await this.#fitAsync(entry)
    return bytes
  }

  /**
   * `getRange` with a cold entry's read on the thread pool.
   *
   * @param opts - `signal`: an abort rejects with `AbortError`
   * @returns the bytes, or `undefined` when there is no entry
   * @throws as `getRange`
   */
  async getRangeAsync(key: string, offset: number, length: number, opts?: GetAsyncOptions): Promise<Buffer | undefined> {
    this.#live()
    const k = keyOf(key)
    const o = byteCount('offset', offset)
    const l = byteCount('length', length)
    const signal = signalOption(knownOptions<GetAsyncOptions>(opts, GET_ASYNC_OPTIONS).signal)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table !== null) throw invalidArgValue('key', 'the key of a Buffer entry (use getTable for tables)', k)
    if (o + l > entry.byteLength) throw rangeOutside(o, l, entry.byteLength)
    if (signal?.aborted) throw abortError(signal.reason)
    const unit = entry.units[0] as Unit
    this.#count(entry.units)
    if (unit.value === null) return (unit.cold as Handle).readAtAsync(o, l, withSignal(signal))
    this.#policy.touch(unit)
    return Buffer.from((unit.value as Buffer).subarray(o, o + l))
  }

  /**
   * `getTable` with every page-in and eviction on the thread pool; the columns
   * are read at once, each with one vectored read.
   *
   * @param opts - as for `getTable`, and `signal`: an abort rejects with `AbortError`
   * @returns a table of the caller's apache-arrow copy, or `undefined` when there is no entry
   * @throws as `getTable`
   * @example
   * ```ts
   * const fares = await store.getTableAsync('trips', { columns: ['fare'] })
   * ```
   */
  async getTableAsync<T extends ArrowTable = ArrowTable>(key: string, opts?: TableReadAsyncOptions): Promise<T | undefined> {
    this.#live()
    const k = keyOf(key)
    const { signal, rest } = splitSignal(opts)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table === null) throw invalidArgValue('key', 'the key of a table entry (use getBuffer for Buffers)', k)
    return (await this.#getTableAsync(entry, rest, signal)) as unknown as T
  }

  async #getTableAsync(entry: Entry, opts: unknown, signal: AbortSignal | undefined): Promise<Arrow.Table> {
    const table = entry.table as NonNullable<Entry['table']>
    const { shape } = table
    const { fields, columns, which, batches } = select(shape.schema, table.byName, shape.batchRows.length, opts)
    const some = (opts as { batches?: unknown } | undefined)?.batches !== undefined
    if (signal?.aborted) throw abortError(signal.reason)
    const units = columns.map((c) => entry.units[c] as Unit)
    this.#count(units)
    const decoded = await Promise.all(
      units.map(async (unit) => {
        if (!some) return (await this.#readAsync(unit, signal)) as Column
        if (unit.value !== null) {
          this.#policy.touch(unit)
          return batches.map((b) => (unit.value as Column)[b] as Arrow.Data)
        }
        return ((await (unit.cold as ArrowEntry.TableHandle).readColumnsAsync({ batches, signal }))[0]) as Column
      }),
    )
    await this.#fitAsync(entry)
    const picked = which.map((d) => decoded[d] as Column)
    return build(shape, fields, picked, batches)
  }

  /** `#read` for the async calls: a cold unit is paged in on the thread pool. */
  async #readAsync(unit: Unit, signal: AbortSignal | undefined): Promise<Buffer | Column> {
    while (unit.value === null && unit.busy !== null) await unit.busy.catch(() => undefined)
    if (unit.value !== null) {
      this.#policy.touch(unit)
      return unit.value
    }
    const pending = this.#pageInAsync(unit, signal)
    unit.busy = pending
    try {
      return await pending
    } finally {
      if (unit.busy === pending) unit.busy = null
    }
  }

  /**
   * `#pageIn` with the read on the thread pool. The cold handle is read, never
   * taken while the read runs (a sync page-in meanwhile may read it too); a
   * swap-backed copy is freed once the bytes are resident again.
   */
  async #pageInAsync(unit: Unit, signal: AbortSignal | undefined): Promise<Buffer | Column> {
    const cold = unit.cold as Handle | ArrowEntry.TableHandle
    const bytes =
      unit.entry.table === null
        ? await (cold as Handle).readAtAsync(0, unit.bytes, withSignal(signal))
        : ((await (cold as ArrowEntry.TableHandle).readColumnsAsync({ signal }))[0] as Column)
    // A sync page-in, a delete or a dispose meanwhile: the bytes are the caller's, nothing to count.
    if (unit.value !== null || unit.entry.deleted || this.#disposed) return bytes
    if (unit.bytes > this.#effectiveBudget() - this.#held) return bytes
    if (cold.backend !== 'file') {
      cold.dispose()
      unit.cold = null
    }
    unit.value = bytes
    this.#counts.pageIns++
    this.#admit(unit)
    if (pageinChannel.hasSubscribers) pageinChannel.publish(this.#message(unit))
    return bytes
  }

  /**
   * A token for the bytes of a Buffer entry, for `open()` in any worker_thread
   * of this process (as `handle.share()`): the worker gets a `Handle` of its
   * own, which keeps the bytes readable after the entry is evicted, replaced or
   * deleted. An entry with no copy in scratch yet is written there (it stays
   * resident). Tokens are weak: open it before the entry goes.
   *
   * @returns the token, or `undefined` when there is no entry
   * @throws `ERR_INVALID_ARG_VALUE` for a table entry
   * @example
   * ```ts
   * worker.postMessage(store.share('frame:1')) // there: using h = open(token)
   * ```
   */
  share(key: string): SharedHandle | undefined {
    this.#live()
    const k = keyOf(key)
    const entry = this.#entries.get(k)
    if (entry === undefined) return undefined
    if (entry.table !== null) throw invalidArgValue('key', 'the key of a Buffer entry (tables are not shared)', k)
    const unit = entry.units[0] as Unit
    if (unit.cold === null) {
      unit.cold = pageout(unit.value as Buffer, this.#backend === undefined ? {} : { backend: this.#backend })
      this.#counts.pageOuts++
    }
    return (unit.cold as Handle).share()
  }

  /** Whether there is an entry for `key`. */
  has(key: string): boolean {
    this.#live()
    return this.#entries.has(keyOf(key))
  }

  /**
   * Removes the entry for `key`, freeing what it paged out.
   *
   * @returns whether there was one
   */
  delete(key: string): boolean {
    this.#live()
    const k = keyOf(key)
    const entry = this.#entries.get(k)
    if (entry === undefined) return false
    this.#entries.delete(k)
    this.#drop(entry)
    return true
  }

  #drop(entry: Entry): void {
    entry.deleted = true
    this.#total -= entry.byteLength
    for (const unit of entry.units) {
      if (unit.value !== null) {
        this.#policy.remove(unit)
        this.#resident -= unit.bytes
        if (entry.holds > 0) this.#held -= unit.bytes
        unit.value = null
      }
      // Views handed out as values stay valid: they keep their bytes until collected.
      if (unit.cold !== null && entry.table === null) (unit.cold as Handle).release()
      else unit.cold?.dispose()
      unit.cold = null
    }
  }

  /**
   * Pins the entry for `key` resident (paging it in) until the returned hold is
   * disposed; held entries are never evicted and may pass the budget.
   *
   * @throws `ERR_INVALID_ARG_VALUE` when there is no entry for `key`
   * @example
   * ```ts
   * using _ = store.hold('model')
   * run(store.get('model'))
   * ```
   */
  hold(key: string): Disposable & { dispose(): void } {
    this.#live()
    const k = keyOf(key)
    const entry = this.#entries.get(k)
    if (entry === undefined) throw invalidArgValue('key', 'the key of an entry', k)
    for (const unit of entry.units) if (unit.value === null) this.#pageIn(unit, true)
    entry.holds++
    if (entry.holds === 1) for (const unit of entry.units) this.#held += unit.bytes
    this.#fit(entry)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      if (entry.deleted || this.#disposed) return
      entry.holds--
      if (entry.holds === 0) {
        for (const unit of entry.units) this.#held -= unit.bytes
        this.#fit()
      }
    }
    return { dispose: release, [Symbol.dispose]: release }
  }

  /** Entries in the order they were set, with their kind, size, resident bytes and whether they are held. */
  *[Symbol.iterator](): IterableIterator<[string, StoreEntryInfo]> {
    for (const [key, entry] of this.#entries) {
      let resident = 0
      for (const unit of entry.units) if (unit.value !== null) resident += unit.bytes
      yield [key, { kind: entry.table === null ? 'buffer' : 'table', byteLength: entry.byteLength, residentBytes: resident, held: entry.holds > 0 }]
    }
  }

  /** The keys, in the order they were set. */
  keys(): IterableIterator<string> {
    return this.#entries.keys()
  }

  /** What the store has done and holds now. */
  stats(): StoreStats {
    return {
      ...this.#counts,
      residentBytes: this.#resident,
      coldBytes: this.#total - this.#resident,
      budgetBytes: this.#budgetSet(),
      budgetSource: this.#configBudget === null ? this.#budgetSource : 'config',
      effectiveBudgetBytes: this.#effectiveBudget(),
      pressure: this.#pressure,
    }
  }

  /**
   * Changes the store's own budget; a smaller one evicts at once. While the
   * config's `residentBytes` is set, that is the budget in force instead.
   *
   * @param residentBytes - a non-negative safe integer
   */
  resize(residentBytes: number): void {
    this.#live()
    this.#budget = byteCount('residentBytes', residentBytes)
    this.#budgetSource = 'option'
    this.#fit()
  }

  /** Applies a change of pressure or of the config's budget; a smaller budget evicts at once. */
  #onChange(change: () => void): void {
    if (this.#disposed) return
    change()
    try {
      this.#fit()
    } catch {
      // No scratch space: the values stay resident (nothing is lost); the failure was
      // published on coldpage:store:evict, and the next set or get reports it.
    }
  }

  /** Frees everything the store holds and paged out. Idempotent. */
  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    this.#unwatch?.()
    for (const entry of this.#entries.values()) this.#drop(entry)
    this.#entries.clear()
  }

  /** Same as `dispose()`, so that `using store = createStore(...)` works. */
  [Symbol.dispose](): void {
    this.dispose()
  }

  /** @internal */
  get [Symbol.toStringTag](): string {
    return 'Store'
  }

  /** What `util.inspect` (and `console.log`) shows: size, resident and cold bytes, budget, disposed. */
  [inspect.custom](depth: unknown, opts: unknown): string {
    const state = {
      size: this.size,
      residentBytes: this.residentBytes,
      coldBytes: this.coldBytes,
      budgetBytes: this.#budgetSet(),
      disposed: this.#disposed,
    }
    return inspectState('Store', state, depth, opts)
  }
}

/**
 * A store of Buffers and Arrow tables that keeps at most `residentBytes` of
 * them resident, paging the coldest out by itself.
 *
 * Note: resident bytes never exceed the budget by more than the entry being
 * set and the entries held; under the OS's memory pressure the budget halves
 * (moderate) or drops to the held entries (critical) until it passes.
 *
 * @example
 * ```ts
 * import { createStore } from 'coldpage'
 * using store = createStore({ residentBytes: 512 * 2 ** 20, backend: 'file' })
 * store.set('prices', table)
 * const t = store.getTable('prices', { columns: ['close'] })
 * ```
 */
export function createStore(opts?: StoreOptions): Store {
  return Store.create(opts)
}
