/**
 * `coldpage/arrow`: page Apache Arrow tables out of resident memory and bring
 * back only the columns and record batches asked for, with one vectored read,
 * decoded by apache-arrow without copying the column bodies.
 *
 * apache-arrow is an optional peer dependency: only this entry point loads it.
 * The byte layout is in `./arrow/layout.ts`, the read path in `./arrow/assemble.ts`.
 */
import './polyfill.js'

import { inspect } from 'node:util'

import * as arrow from 'apache-arrow'

import { type Classes, assemble, classesOf, decode, plan } from './arrow/assemble.js'
import type { Column } from './arrow/batches.js'
import { isFlat, isFlatDictionary } from './arrow/fast.js'
import { type ArrowModule, NeedsModule, type TableLayout, layOut } from './arrow/layout.js'
import { type FlechetteTable, toTable } from './arrow/input.js'
import { ownSchema } from './arrow/own.js'
import { type TableReadOptions, columnsByName, select } from './arrow/select.js'
import type { TableReadAsyncOptions } from './table-types.js'
import { ColdpageError, abortError, illegalConstructor, invalidArgType } from './errors.js'
import { inspectState } from './inspect.js'
import type { Handle } from './handle.js'
import { knownOptions } from './options.js'
import { type PageoutOptions, pageout, pageoutAsync } from './pageout.js'
import './load.js'
import { type BackendName, type Data, backendOption, signalOption, splitSignal, withSignal } from './validate.js'

export type { PageoutOptions } from './pageout.js'
export type { BackendName } from './validate.js'
export type { TableReadOptions } from './arrow/select.js'
export type { TableReadAsyncOptions } from './table-types.js'
export type { FlechetteTable } from './arrow/input.js'

/**
 * A table from any Arrow engine: an apache-arrow `Table` of any copy >= 17, a
 * flechette `Table` (Arquero's), or Arrow IPC bytes in the stream or file format
 * (one chunk or several, concatenated), as DuckDB, Polars, pyarrow or parquet-wasm write them.
 */
export type TableInput = arrow.Table | FlechetteTable | Data | readonly Data[]

/** Options of `pageoutTable`. */
export interface PageoutTableOptions extends PageoutOptions {
  /**
   * The apache-arrow module (`import * as arrow from 'apache-arrow'`) the table
   * belongs to. Needed only when the table comes from another copy of
   * apache-arrow than the one coldpage/arrow loads and has a column of a
   * nested or dictionary type (those are written and read back by that
   * module's IPC writer and reader); flat columns need no module.
   */
  arrow?: ArrowModule
}

/** Options of `pageoutTableAsync`: those of `pageoutTable` and an `AbortSignal`. */
export interface PageoutTableAsyncOptions extends PageoutTableOptions {
  /** Aborts the call: it rejects with `AbortError` and stores nothing. */
  signal?: AbortSignal | undefined
}

/** Marks constructor calls made by this module (users get table handles from `pageoutTable`). */
const INTERNAL = Symbol('coldpage.arrow.internal')

/**
 * An Arrow table paged out of resident memory. Each column (and each record
 * batch of it) can be read back alone: `read({ columns: ['price'] })` pages in
 * only that column's bytes, with one vectored read.
 *
 * Note: tables returned by `read` own their memory (Buffers read back for
 * them) and stay valid after the handle is disposed. Dispose handles
 * explicitly (`dispose()` or `using`).
 *
 * @example
 * ```ts
 * import { tableFromArrays } from 'apache-arrow'
 * import { pageoutTable } from 'coldpage/arrow'
 *
 * using th = pageoutTable(tableFromArrays({ id: Int32Array.of(1, 2), price: Float64Array.of(9.5, 3) }))
 * const prices = th.read({ columns: ['price'] }) // pages in only `price`
 * ```
 */
export class TableHandle implements Disposable {
  readonly #arrow: ArrowModule | undefined
  readonly #classes: Classes
  readonly #handle: Handle
  readonly #layout: TableLayout
  /** Column indexes by name (the first column of a repeated name). */
  readonly #byName: ReadonlyMap<string, number>
  /** The classes and schema `readIPC` writes with (made at its first call). */
  #own: { classes: Classes; schema: arrow.Schema } | undefined

  /** The table's schema, with its metadata and its fields' metadata. */
  readonly schema: arrow.Schema
  /** Rows over all record batches. */
  readonly numRows: number
  /** Record batches, each readable alone. */
  readonly numBatches: number
  /** Bytes paged out (column bodies, IPC metadata and alignment padding). */
  readonly byteLength: number
  /** Where the bytes live, fixed at pageout. */
  readonly backend: BackendName

  /** Table handles come from `pageoutTable`/`pageoutTableAsync`. */
  private constructor(token: symbol, A: ArrowModule | undefined, C: Classes, schema: arrow.Schema, handle: Handle, layout: TableLayout) {
    if (token !== INTERNAL) throw illegalConstructor('TableHandle instances are created by pageoutTable()')
    this.#arrow = A
    this.#classes = C
    this.#handle = handle
    this.#layout = layout
    this.schema = schema
    this.#byName = columnsByName(schema)
    this.numRows = layout.batchRows.reduce((sum, n) => sum + n, 0)
    this.numBatches = layout.batchRows.length
    this.byteLength = handle.byteLength
    this.backend = handle.backend
  }

  /** @internal */
  static wrap(A: ArrowModule | undefined, C: Classes, schema: arrow.Schema, handle: Handle, layout: TableLayout): TableHandle {
    return new TableHandle(INTERNAL, A, C, schema, handle, layout)
  }

  /** Whether the handle was disposed or taken. */
  get disposed(): boolean {
    return this.#handle.disposed
  }

  #live(): Handle {
    if (this.#handle.disposed) throw new ColdpageError('ERR_COLDPAGE_DISPOSED', 'table handle is disposed')
    return this.#handle
  }

  /**
   * Reads columns and record batches back as a table, paging in only their bytes.
   *
   * @param opts - `columns` (names, in the order wanted) and `batches` (indexes); default everything
   * @returns a table with the selected columns in the requested order, the schema's metadata
   *   and the selected batches' rows
   * @throws `ERR_OUT_OF_RANGE` naming an unknown column or batch, `ERR_COLDPAGE_DISPOSED`,
   *   `ERR_COLDPAGE_CORRUPT` / `ERR_COLDPAGE_IO` from the read
   * @example
   * ```ts
   * const t = th.read({ columns: ['price', 'id'], batches: [0] })
   * ```
   */
  read(opts?: TableReadOptions): arrow.Table {
    const { s, p, buffers } = this.#fetch(opts)
    return assemble(this.#arrow, this.#classes, this.schema, this.#layout, s.fields, s.columns, s.which, s.batches, p, buffers)
  }

  /**
   * `read` with the I/O on the libuv thread pool; the decoding (no copies) runs
   * on the JS thread.
   *
   * @param opts - as for `read`, and `signal` (an `AbortSignal`): an abort rejects with `AbortError`
   */
  async readAsync(opts?: TableReadAsyncOptions): Promise<arrow.Table> {
    const { s, p, buffers } = await this.#fetchAsync(opts)
    return assemble(this.#arrow, this.#classes, this.schema, this.#layout, s.fields, s.columns, s.which, s.batches, p, buffers)
  }

  /**
   * `read` without the table: the Data of each requested column, one per
   * selected batch (the store builds one table of columns read from several
   * handles, so building one per handle would be work thrown away).
   *
   * @internal
   */
  readColumns(opts?: TableReadOptions): Column[] {
    const { s, p, buffers } = this.#fetch(opts)
    return decode(this.#arrow, this.#classes, this.schema, this.#layout, s.columns, s.which, s.batches, p, buffers)
  }

  /**
   * `readColumns` with the I/O on the libuv thread pool.
   *
   * @internal
   */
  async readColumnsAsync(opts?: TableReadAsyncOptions): Promise<Column[]> {
    const { s, p, buffers } = await this.#fetchAsync(opts)
    return decode(this.#arrow, this.#classes, this.schema, this.#layout, s.columns, s.which, s.batches, p, buffers)
  }

  /**
   * Reads columns and record batches back as one Arrow IPC stream (the schema of
   * the selection, its dictionaries and record batches), which any Arrow reader
   * takes: flechette's or apache-arrow's `tableFromIPC`, DuckDB, Polars, pyarrow.
   *
   * @param opts - as for `read`
   * @returns the stream's bytes, the caller's
   * @throws as `read`
   * @example
   * ```ts
   * import { tableFromIPC } from '@uwdata/flechette'
   * const prices = tableFromIPC(th.readIPC({ columns: ['price'] }))
   * ```
   */
  readIPC(opts?: TableReadOptions): Uint8Array {
    const { s, p, buffers } = this.#fetch(opts)
    return this.#ipc(s, p, buffers)
  }

  /** `readIPC` with the I/O on the libuv thread pool; `opts.signal` aborts it. */
  async readIPCAsync(opts?: TableReadAsyncOptions): Promise<Uint8Array> {
    const { s, p, buffers } = await this.#fetchAsync(opts)
    return this.#ipc(s, p, buffers)
  }

  /** The selection of `opts`, its read plan, and the bytes the plan needs, read now. */
  #fetch(opts: TableReadOptions | undefined) {
    const handle = this.#live()
    const s = select(this.schema, this.#byName, this.numBatches, opts)
    const p = plan(this.#layout, s.columns, s.batches)
    return { s, p, buffers: p.ranges.length === 0 ? [] : handle.readAtMany(p.ranges) }
  }

  /** `#fetch` with the read on the libuv thread pool; `opts.signal` aborts it. */
  async #fetchAsync(opts: TableReadAsyncOptions | undefined) {
    const handle = this.#live()
    const { signal, rest } = splitSignal(opts)
    const s = select(this.schema, this.#byName, this.numBatches, rest)
    const p = plan(this.#layout, s.columns, s.batches)
    if (signal?.aborted) throw abortError(signal.reason)
    return { s, p, buffers: p.ranges.length === 0 ? [] : await handle.readAtManyAsync(p.ranges, withSignal(signal)) }
  }

  /**
   * Writes a read as an IPC stream with the table's own apache-arrow module, or,
   * for a table of another copy given without its module (flat columns only),
   * with coldpage/arrow's, over the same schema in that module's types.
   */
  #ipc(s: ReturnType<typeof select>, p: ReturnType<typeof plan>, buffers: Buffer[]): Uint8Array {
    const M = this.#arrow ?? arrow
    this.#own ??= this.#arrow === undefined ? ownSchema(arrow, this.schema) : { classes: this.#classes, schema: this.schema }
    const { classes, schema } = this.#own
    const fields = s.which.map((d) => schema.fields[s.columns[d] as number] as arrow.Field)
    const table = assemble(M, classes, schema, this.#layout, fields, s.columns, s.which, s.batches, p, buffers)
    return M.tableToIPC(table, 'stream')
  }

  /** Reads the whole table back and disposes the handle. */
  take(): arrow.Table {
    const table = this.read()
    this.dispose()
    return table
  }

  /** Frees the memory or scratch space now. Idempotent. */
  dispose(): void {
    this.#handle.dispose()
  }

  /** Same as `dispose()`, so that `using th = pageoutTable(...)` works. */
  [Symbol.dispose](): void {
    this.dispose()
  }

  /** @internal */
  get [Symbol.toStringTag](): string {
    return 'TableHandle'
  }

  /** What `util.inspect` (and `console.log`) shows: rows, batches, columns, byteLength, backend, disposed. */
  [inspect.custom](depth: unknown, opts: unknown): string {
    const state = {
      numRows: this.numRows,
      numBatches: this.numBatches,
      columns: this.schema.fields.map((f) => f.name),
      byteLength: this.byteLength,
      backend: this.backend,
      disposed: this.disposed,
    }
    return inspectState('TableHandle', state, depth, opts)
  }
}

/** The keys of `PageoutTableOptions`. */
const PAGEOUT_TABLE_OPTIONS = ['backend', 'arrow'] as const
/** The keys of `PageoutTableAsyncOptions`. */
const PAGEOUT_TABLE_ASYNC_OPTIONS = ['backend', 'arrow', 'signal'] as const

/** The apache-arrow module to write and read `table`'s IPC columns with: `opts.arrow`, else `A` when the table is of `A`. */
function moduleFor(A: ArrowModule, table: arrow.Table, given: unknown): ArrowModule | undefined {
  if (given !== undefined) {
    const m = given as Partial<ArrowModule> | null
    if (typeof m !== 'object' || m === null || typeof m.RecordBatchStreamWriter !== 'function' || typeof m.RecordBatchReader !== 'function' || typeof m.makeData !== 'function') {
      throw invalidArgType('opts.arrow', 'the apache-arrow module (import * as arrow from "apache-arrow")', given)
    }
    return m as ArrowModule
  }
  return Function.prototype[Symbol.hasInstance].call(A.Table, table) ? A : undefined
}

/** The argument error for a column that needs the table's own apache-arrow module. */
function needsModule(err: NeedsModule): TypeError {
  return invalidArgType(
    'opts.arrow',
    `the apache-arrow module of the table (it comes from another copy of apache-arrow and its ${err.message.replace(/ needs .*/, '')} is written by that copy's IPC writer)`,
    undefined,
  )
}

/** Lays `table` out, turning a missing module into an argument error. */
function layOutTable(A: ArrowModule | undefined, table: arrow.Table) {
  try {
    return layOut(A, table)
  } catch (err) {
    if (err instanceof NeedsModule) throw needsModule(err)
    throw err
  }
}

/** Checks the arguments of `pageoutTable(Async)` and lays the table out. */
function prepare(A: ArrowModule, table: unknown, opts: unknown, keys: readonly (keyof PageoutTableAsyncOptions & string)[] = PAGEOUT_TABLE_OPTIONS) {
  const t = toTable(A, table, 'table')
  const o = knownOptions<PageoutTableAsyncOptions>(opts, keys)
  const backend = backendOption(o.backend)
  const signal = signalOption(o.signal)
  const M = moduleFor(A, t, o.arrow)
  if (signal?.aborted) throw abortError(signal.reason)
  const { chunks, layout } = layOutTable(M, t)
  return { t, M, C: classesOf(t, M), chunks, layout, pageoutOpts: { ...(backend === undefined ? {} : { backend }), ...(signal === undefined ? {} : { signal }) } }
}

/**
 * `pageoutTable` and `pageoutTableAsync` for one apache-arrow build (the
 * CommonJS and ESM builds of apache-arrow have distinct classes; each entry
 * point of coldpage/arrow binds its own).
 * @internal
 */
export function bindArrow(A: ArrowModule) {
  return {
    pageoutTable(table: TableInput, opts?: PageoutTableOptions): TableHandle {
      const { t, M, C, chunks, layout, pageoutOpts } = prepare(A, table, opts)
      return TableHandle.wrap(M, C, t.schema, pageout(chunks, pageoutOpts), layout)
    },
    async pageoutTableAsync(table: TableInput, opts?: PageoutTableAsyncOptions): Promise<TableHandle> {
      const { t, M, C, chunks, layout, pageoutOpts } = prepare(A, table, opts, PAGEOUT_TABLE_ASYNC_OPTIONS)
      return TableHandle.wrap(M, C, t.schema, await pageoutAsync(chunks, pageoutOpts), layout)
    },
  }
}

const bound = bindArrow(arrow)

let esmBuild: ArrowModule | null | undefined

/**
 * The ESM build of the apache-arrow this entry point loads (its classes are not
 * the CommonJS build's), where the runtime can `require` ESM (Node >= 20.19).
 */
function esm(): ArrowModule | undefined {
  if (esmBuild === undefined) {
    try {
      esmBuild = require(require.resolve('apache-arrow').replace(/\.js$/, '.mjs')) as ArrowModule
    } catch {
      esmBuild = null
    }
  }
  return esmBuild ?? undefined
}

/**
 * The module that writes `table`'s nested and dictionary columns: apache-arrow
 * (its CommonJS or its ESM build) when the table is of it, else `undefined`.
 * @internal
 */
export function moduleOf(table: arrow.Table): ArrowModule | undefined {
  const cjs = moduleFor(arrow, table, undefined)
  if (cjs !== undefined) return cjs
  const E = esm()
  return E !== undefined && Function.prototype[Symbol.hasInstance].call(E.Table, table) ? E : undefined
}

/**
 * `value` (any table input, see `TableInput`) as an apache-arrow table: the
 * store's way in for IPC bytes and flechette tables.
 * @internal
 */
export function tableOf(value: unknown, name: string): arrow.Table {
  return toTable(arrow, value, name)
}

/**
 * Throws what `pageoutTable(table, { arrow: M })` would throw for want of a
 * module, without writing anything (the store checks at `set`, not at eviction).
 * @internal
 */
export function checkWritable(M: ArrowModule | undefined, table: arrow.Table): void {
  if (M !== undefined) return
  table.schema.fields.forEach((field, c) => {
    const parts = table.batches.map((b) => b.data.children[c] as arrow.Data)
    // As layOut decides: flat columns and flat dictionaries take the fast path, no IPC writer.
    if (!isFlat(parts) && !isFlatDictionary(parts)) throw needsModule(new NeedsModule(field))
  })
}

/**
 * Pages a table out: each column becomes its own 64-byte aligned IPC stream
 * with the table's record batch boundaries, all in one handle, so that any
 * columns and batches can be read back alone.
 *
 * Note: the table's buffers are copied, never modified or retained; the
 * caller can drop the table afterwards to free its memory.
 *
 * @param table - an apache-arrow `Table` of any copy >= 17, a flechette `Table`,
 *   or Arrow IPC bytes (stream or file format); bytes and flechette tables are
 *   decoded by coldpage/arrow's apache-arrow and read back as its tables
 * @param opts - `backend` overrides the global selector
 * @returns a table handle; dispose it (or `using`) when done
 * @throws `ERR_INVALID_ARG_TYPE` for anything else (naming what is accepted),
 *   `ERR_INVALID_ARG_VALUE` for bytes that are not Arrow IPC, `ERR_COLDPAGE_NO_SPACE`
 *   when the quota or disk is full
 * @example
 * ```ts
 * using th = pageoutTable(table, { backend: 'file' })
 * const one = th.read({ columns: ['price'] })
 * ```
 */
export function pageoutTable(table: TableInput, opts?: PageoutTableOptions): TableHandle {
  return bound.pageoutTable(table, opts)
}

/**
 * `pageoutTable` with the copy and the write on the libuv thread pool (the
 * layout, which copies nothing, runs on the JS thread).
 *
 * Note: do not transfer or detach the table's buffers until the promise settles.
 */
export function pageoutTableAsync(table: TableInput, opts?: PageoutTableAsyncOptions): Promise<TableHandle> {
  return bound.pageoutTableAsync(table, opts)
}
