/**
 * Tables in a store, column by column: what one column of a table weighs,
 * a one-column table to page out, and the table a read builds back from
 * columns (some resident, some read from their handles), with the classes of
 * the caller's own apache-arrow copy. Loads no apache-arrow itself.
 */
import type * as Arrow from 'apache-arrow'

import type { Classes } from '../arrow/assemble.js'
import { type Column, tableOf } from '../arrow/batches.js'

/** What a table entry keeps of its table besides its columns. */
export interface TableShape {
  classes: Classes
  schema: Arrow.Schema
  batchRows: number[]
  batchMetadata: (Map<string, string> | undefined)[]
}

/** One column of a table: its Data in each record batch. */
export type { Column }

export function shapeOf(table: Arrow.Table, classes: Classes): TableShape {
  return {
    classes,
    schema: table.schema,
    batchRows: table.batches.map((b) => b.numRows),
    batchMetadata: table.batches.map((b) => (b.metadata?.size ? b.metadata : undefined)),
  }
}

/** Column `c` of `table`. */
export function columnOf(table: Arrow.Table, c: number): Column {
  return table.batches.map((b) => b.data.children[c] as Arrow.Data)
}

/**
 * A table of `fields` whose `i`th column is `columns[i]` (its Data for the
 * batches `batches` of the shape, in that order), built with the shape's classes.
 */
export function build(shape: TableShape, fields: readonly Arrow.Field[], columns: readonly Column[], batches: readonly number[]): Arrow.Table {
  const rows = batches.map((b) => shape.batchRows[b] as number)
  const metadata = batches.map((b) => shape.batchMetadata[b])
  return tableOf(shape.classes, fields, shape.schema.metadata, rows, metadata, columns)
}
