/**
 * `coldpage/arrow`: page Apache Arrow tables out of resident memory and bring
 * back only the columns and record batches asked for, with one vectored read,
 * decoded by apache-arrow without copying the column bodies.
 *
 * apache-arrow is an optional peer dependency: only this entry point loads it.
 * The byte layout is in `./arrow/layout.ts`, the read path in `./arrow/assemble.ts`.
 */
import * as arrow from 'apache-arrow'

import { assemble, plan } from './arrow/assemble.js'
import { type ArrowModule, type TableLayout, layOut } from './arrow/layout.js'
import { ColdpageError, illegalConstructor, invalidArgType, outOfRange } from './errors.js'
import { type Handle, type PageoutOptions, pageout, pageoutAsync } from './index.js'
import { backendOption, options } from './validate.js'

export type { BackendName, PageoutOptions } from './index.js'

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
  readonly #arrow: ArrowModule
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
  constructor(token: symbol, A: ArrowModule, schema: arrow.Schema, handle: Handle, layout: TableLayout) {
    if (token !== INTERNAL) throw illegalConstructor('TableHandle instances are created by pageoutTable()')
    this.#arrow = A
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
    return assemble(this.#arrow, this.schema, this.#layout, fields, which, batches, p, buffers)
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
    return assemble(this.#arrow, this.schema, this.#layout, fields, which, batches, p, buffers)
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

/** Checks that `table` is a Table of the apache-arrow build `A`. */
function checkTable(A: ArrowModule, table: unknown): arrow.Table {
  // apache-arrow's own `instanceof` also accepts Tables of other copies (ESM vs
  // CommonJS build, another version), whose types its IPC writer cannot read.
  if (Function.prototype[Symbol.hasInstance].call(A.Table, table)) return table as arrow.Table
  throw invalidArgType(
    'table',
    table instanceof A.Table
      ? 'a Table of the apache-arrow copy that coldpage/arrow loads (import both the same way)'
      : 'an apache-arrow Table',
    table,
  )
}

/**
 * `pageoutTable` and `pageoutTableAsync` for one apache-arrow build (the
 * CommonJS and ESM builds of apache-arrow have distinct classes; each entry
 * point of coldpage/arrow binds its own).
 * @internal
 */
export function bindArrow(A: ArrowModule) {
  return {
    pageoutTable(table: arrow.Table, opts?: PageoutOptions): TableHandle {
      const t = checkTable(A, table)
      const backend = backendOption(options<PageoutOptions>(opts).backend)
      const { chunks, layout } = layOut(A, t)
      const handle = pageout(chunks, backend === undefined ? {} : { backend })
      return new TableHandle(INTERNAL, A, t.schema, handle, layout)
    },
    async pageoutTableAsync(table: arrow.Table, opts?: PageoutOptions): Promise<TableHandle> {
      const t = checkTable(A, table)
      const backend = backendOption(options<PageoutOptions>(opts).backend)
      const { chunks, layout } = layOut(A, t)
      const handle = await pageoutAsync(chunks, backend === undefined ? {} : { backend })
      return new TableHandle(INTERNAL, A, t.schema, handle, layout)
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
export function pageoutTable(table: arrow.Table, opts?: PageoutOptions): TableHandle {
  return bound.pageoutTable(table, opts)
}

/**
 * `pageoutTable` with the copy and the write on the libuv thread pool (the
 * layout, which copies nothing, runs on the JS thread).
 *
 * Note: do not transfer or detach the table's buffers until the promise settles.
 */
export function pageoutTableAsync(table: arrow.Table, opts?: PageoutOptions): Promise<TableHandle> {
  return bound.pageoutTableAsync(table, opts)
}
