/**
 * The Arrow table as the main entry (`coldpage`) types it: structurally, so that
 * its declarations need no apache-arrow installed. An apache-arrow `Table` of any
 * copy fits; `coldpage/arrow` types tables as apache-arrow's own.
 */

/** An Arrow table: an apache-arrow `Table` (any copy >= 17) fits this shape. */
export interface ArrowTable {
  /** The table's schema: its fields, by name. */
  readonly schema: { readonly fields: ReadonlyArray<{ readonly name: string }> }
  /** Its record batches. */
  readonly batches: ReadonlyArray<unknown>
  /** Rows over all record batches. */
  readonly numRows: number
}

/** The apache-arrow module (`import * as arrow from 'apache-arrow'`), as the main entry types it. */
export interface ArrowModuleLike {
  readonly Table: abstract new (...args: never[]) => unknown
  readonly RecordBatchStreamWriter: abstract new (...args: never[]) => unknown
  readonly RecordBatchReader: abstract new (...args: never[]) => unknown
  readonly makeData: (...args: never[]) => unknown
}

/** Which part of a table to read. */
export interface TableReadOptions {
  /** Column names, in the order wanted (a name may repeat). Default: every column, in schema order. */
  columns?: readonly string[]
  /** Record batch indexes, in the order wanted. Default: every batch, in order. */
  batches?: readonly number[]
}

/** Which part of a table to read, and an `AbortSignal` for the async reads. */
export interface TableReadAsyncOptions extends TableReadOptions {
  /** Aborts the read: it rejects with `AbortError`. */
  signal?: AbortSignal | undefined
}

/** A flechette `Table` (`@uwdata/flechette`, Arquero's tables), as far as coldpage needs to know it. */
export interface FlechetteTable {
  readonly schema: { readonly fields: readonly unknown[] }
  readonly children: readonly unknown[]
  getChild(name: string): unknown
}
