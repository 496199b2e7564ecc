/**
 * `coldpage/arrow`: page Apache Arrow tables out of resident memory and bring
 * back only the columns and record batches asked for, with one vectored read,
 * decoded by apache-arrow without copying the column bodies.
 *
 * apache-arrow is an optional peer dependency: only this entry point loads it.
 * The byte layout is in `./arrow/layout.ts`, the read path in `./arrow/assemble.ts`.
 */
import * as arrow from 'apache-arrow'

import { type Classes, assemble, classesOf, plan } from './arrow/assemble.js'
import { type ArrowModule, NeedsModule, type TableLayout, layOut } from './arrow/layout.js'
import { ColdpageError, illegalConstructor, invalidArgType, outOfRange } from './errors.js'
import { type Handle, type PageoutOptions, pageout, pageoutAsync } from './index.js'
import { backendOption, options } from './validate.js'

export type { BackendName, PageoutOptions } from './index.js'

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

/** Which part of a table to read. */
export interface TableReadOptions {
  /** Column names, in the order wanted (a name may repeat). Default: every column, in schema order. */
  columns?: readonly string[]
  /** Record batch indexes, in the order wanted. Default: every batch, in order. */
  batches?: readonly number[]
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
  readonly #byName = new Map<string, number>()

  /** The table's schema, with its metadata and its fields' metadata. */
  readonly schema: arrow.Schema
  /** Rows over all record batches. */
  readonly numRows: number
  /** Record batches, each readable alone. */
  readonly numBatches: number
  /** Bytes paged out (column bodies, IPC metadata and alignment padding). */
  readonly byteLength: number

  /** @internal Table handles come from `pageoutTable`/`pageoutTableAsync`. */
  constructor(token: symbol, A: ArrowModule | undefined, C: Classes, schema: arrow.Schema, handle: Handle, layout: TableLayout) {
    if (token !== INTERNAL) throw illegalConstructor('TableHandle instances are created by pageoutTable()')
    this.#arrow = A
    this.#classes = C
    this.#handle = handle
    this.#layout = layout
    this.schema = schema
    schema.fields.forEach((f, i) => {
      if (!this.#byName.has(f.name)) this.#byName.set(f.name, i)
    })
    this.numRows = layout.batchRows.reduce((sum, n) => sum + n, 0)
    this.numBatches = layout.batchRows.length
    this.byteLength = handle.byteLength
  }

  /** Whether the handle was disposed or taken. */
  get disposed(): boolean {
    return this.#handle.disposed
  }

  #live(): Handle {
    if (this.#handle.disposed) throw new ColdpageError('ERR_COLDPAGE_DISPOSED', 'table handle is disposed')
    return this.#handle
  }

  /** Checks a selection; returns the fields, distinct column indexes, which one each field reads, and the batches. */
  #select(opts: unknown) {
    const o = options<TableReadOptions>(opts)
    const fields: arrow.Field[] = []
    const columns: number[] = []
    const which: number[] = []
    const distinct = new Map<number, number>()
    const add = (c: number) => {
      let d = distinct.get(c)
      if (d === undefined) {
        d = columns.length
        distinct.set(c, d)
        columns.push(c)
      }
      fields.push(this.schema.fields[c] as arrow.Field)
      which.push(d)
    }
    if (o.columns === undefined) {
      for (let c = 0; c < this.schema.fields.length; c++) add(c)
    } else {
      if (!Array.isArray(o.columns)) throw invalidArgType('opts.columns', 'an array of column names', o.columns)
      o.columns.forEach((name: unknown, i) => {
        if (typeof name !== 'string') throw invalidArgType(`opts.columns[${i}]`, 'a column name (string)', name)
        const c = this.#byName.get(name)
        if (c === undefined) throw outOfRange(`opts.columns[${i}]`, 'the name of a column of the table', name)
        add(c)
      })
    }
    let batches: number[]
    if (o.batches === undefined) {
      batches = this.#layout.batchRows.map((_, b) => b)
    } else {
      if (!Array.isArray(o.batches)) throw invalidArgType('opts.batches', 'an array of record batch indexes', o.batches)
      batches = o.batches.map((b: unknown, i) => {
        if (typeof b !== 'number') throw invalidArgType(`opts.batches[${i}]`, 'a record batch index (number)', b)
        if (!Number.isInteger(b) || b < 0 || b >= this.numBatches) {
          throw outOfRange(`opts.batches[${i}]`, `a record batch index from 0 to ${this.numBatches - 1}`, b)
        }
        return b
      })
    }
    return { fields, columns, which, batches }
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
    const handle = this.#live()
    const { fields, columns, which, batches } = this.#select(opts)
    const p = plan(this.#layout, columns, batches)
    const buffers = p.ranges.length === 0 ? [] : handle.readAtMany(p.ranges)
    return assemble(this.#arrow, this.#classes, this.schema, this.#layout, fields, columns, which, batches, p, buffers)
  }

  /**
   * `read` with the I/O on the libuv thread pool; the decoding (no copies) runs
   * on the JS thread.
   */
  async readAsync(opts?: TableReadOptions): Promise<arrow.Table> {
    const handle = this.#live()
    const { fields, columns, which, batches } = this.#select(opts)
    const p = plan(this.#layout, columns, batches)
    const buffers = p.ranges.length === 0 ? [] : await handle.readAtManyAsync(p.ranges)
    return assemble(this.#arrow, this.#classes, this.schema, this.#layout, fields, columns, which, batches, p, buffers)
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
}

/**
 * Checks that `table` looks like an apache-arrow Table of any copy and
 * version (duck typing: `instanceof` rejects the Tables of other copies).
 */
function checkTable(table: unknown): arrow.Table {
  const t = table as { schema?: { fields?: unknown }; batches?: unknown } | null
  const ok =
    typeof t === 'object' &&
    t !== null &&
    Array.isArray(t.schema?.fields) &&
    Array.isArray(t.batches) &&
    (t.batches as { data?: { children?: unknown } }[]).every((b) => Array.isArray(b?.data?.children))
  if (ok) return table as arrow.Table
  throw invalidArgType('table', 'an apache-arrow Table', table)
}

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

/** Lays `table` out, turning a missing module into an argument error. */
function layOutTable(A: ArrowModule | undefined, table: arrow.Table) {
  try {
    return layOut(A, table)
  } catch (err) {
    if (!(err instanceof NeedsModule)) throw err
    throw invalidArgType(
      'opts.arrow',
      `the apache-arrow module of the table (it comes from another copy of apache-arrow and its ${err.message.replace(/ needs .*/, '')} is written by that copy's IPC writer)`,
      undefined,
    )
  }
}

/** Checks the arguments of `pageoutTable(Async)` and lays the table out. */
function prepare(A: ArrowModule, table: unknown, opts: unknown) {
  const t = checkTable(table)
  const o = options<PageoutTableOptions>(opts)
  const backend = backendOption(o.backend)
  const M = moduleFor(A, t, o.arrow)
  const { chunks, layout } = layOutTable(M, t)
  return { t, M, C: classesOf(t, M), chunks, layout, pageoutOpts: backend === undefined ? {} : { backend } }
}

/**
 * `pageoutTable` and `pageoutTableAsync` for one apache-arrow build (the
 * CommonJS and ESM builds of apache-arrow have distinct classes; each entry
 * point of coldpage/arrow binds its own).
 * @internal
 */
export function bindArrow(A: ArrowModule) {
  return {
    pageoutTable(table: arrow.Table, opts?: PageoutTableOptions): TableHandle {
      const { t, M, C, chunks, layout, pageoutOpts } = prepare(A, table, opts)
      return new TableHandle(INTERNAL, M, C, t.schema, pageout(chunks, pageoutOpts), layout)
    },
    async pageoutTableAsync(table: arrow.Table, opts?: PageoutTableOptions): Promise<TableHandle> {
      const { t, M, C, chunks, layout, pageoutOpts } = prepare(A, table, opts)
      return new TableHandle(INTERNAL, M, C, t.schema, await pageoutAsync(chunks, pageoutOpts), layout)
    },
  }
}

const bound = bindArrow(arrow)

/**
 * Pages a table out: each column becomes its own 64-byte aligned IPC stream
 * with the table's record batch boundaries, all in one handle, so that any
 * columns and batches can be read back alone.
 *
 * Note: the table's buffers are copied, never modified or retained; the
 * caller can drop the table afterwards to free its memory.
 *
 * @param table - an apache-arrow `Table`
 * @param opts - `backend` overrides the global selector
 * @returns a table handle; dispose it (or `using`) when done
 * @throws `ERR_INVALID_ARG_TYPE` for a non-Table, `ERR_COLDPAGE_NO_SPACE` when the quota or disk is full
 * @example
 * ```ts
 * using th = pageoutTable(table, { backend: 'file' })
 * const one = th.read({ columns: ['price'] })
 * ```
 */
export function pageoutTable(table: arrow.Table, opts?: PageoutTableOptions): TableHandle {
  return bound.pageoutTable(table, opts)
}

/**
 * `pageoutTable` with the copy and the write on the libuv thread pool (the
 * layout, which copies nothing, runs on the JS thread).
 *
 * Note: do not transfer or detach the table's buffers until the promise settles.
 */
export function pageoutTableAsync(table: arrow.Table, opts?: PageoutTableOptions): Promise<TableHandle> {
  return bound.pageoutTableAsync(table, opts)
}
