/**
 * What a caller asks of a table: checks that a value is an apache-arrow Table
 * of any copy, and turns `{ columns, batches }` into column and batch indexes.
 * Shared by `TableHandle.read` and the store's `getTable`; loads no apache-arrow.
 */
import type * as Arrow from 'apache-arrow'

import { invalidArgType, outOfRange } from '../errors.js'
import { knownOptions } from '../options.js'
import type { TableReadOptions } from '../table-types.js'

export type { TableReadOptions } from '../table-types.js'

/** The keys of `TableReadOptions`. */
const READ_OPTIONS = ['columns', 'batches'] as const

/** A checked selection: the fields asked for, the distinct columns they read, which one each reads, and the batches. */
export interface Selection {
  fields: Arrow.Field[]
  columns: number[]
  which: number[]
  batches: number[]
}

/**
 * Whether `value` looks like an apache-arrow Table of any copy and version
 * (duck typing: `instanceof` rejects the Tables of other copies).
 */
export function isTable(value: unknown): value is Arrow.Table {
  const t = value as { schema?: { fields?: unknown }; batches?: unknown } | null
  return (
    typeof t === 'object' &&
    t !== null &&
    Array.isArray(t.schema?.fields) &&
    Array.isArray(t.batches) &&
    (t.batches as { data?: { children?: unknown } }[]).every((b) => Array.isArray(b?.data?.children))
  )
}

/** Column indexes by name: the first column of a repeated name. */
export function columnsByName(schema: Arrow.Schema): Map<string, number> {
  const byName = new Map<string, number>()
  schema.fields.forEach((f, i) => {
    if (!byName.has(f.name)) byName.set(f.name, i)
  })
  return byName
}

/** Checks `opts` against a table of `schema` (columns by name in `byName`) and `numBatches` batches. */
export function select(schema: Arrow.Schema, byName: ReadonlyMap<string, number>, numBatches: number, opts: unknown): Selection {
  const o = knownOptions<TableReadOptions>(opts, READ_OPTIONS)
  const fields: Arrow.Field[] = []
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
    fields.push(schema.fields[c] as Arrow.Field)
    which.push(d)
  }
  if (o.columns === undefined) {
    for (let c = 0; c < schema.fields.length; c++) add(c)
  } else {
    if (!Array.isArray(o.columns)) throw invalidArgType('opts.columns', 'an array of column names', o.columns)
    // Index loops, not forEach/map: those skip the holes of a sparse array.
    for (let i = 0; i < o.columns.length; i++) {
      const name: unknown = o.columns[i]
      if (typeof name !== 'string') throw invalidArgType(`opts.columns[${i}]`, 'a column name (string)', name)
      const c = byName.get(name)
      if (c === undefined) throw outOfRange(`opts.columns[${i}]`, 'the name of a column of the table', name)
      add(c)
    }
  }
  let batches: number[]
  if (o.batches === undefined) {
    batches = Array.from({ length: numBatches }, (_, b) => b)
  } else {
    if (!Array.isArray(o.batches)) throw invalidArgType('opts.batches', 'an array of record batch indexes', o.batches)
    batches = []
    for (let i = 0; i < o.batches.length; i++) {
      const b: unknown = o.batches[i]
      if (typeof b !== 'number') throw invalidArgType(`opts.batches[${i}]`, 'a record batch index (number)', b)
      if (!Number.isInteger(b) || b < 0 || b >= numBatches) {
        throw outOfRange(`opts.batches[${i}]`, `a record batch index from 0 to ${numBatches - 1}`, b)
      }
      batches.push(b)
    }
  }
  return { fields, columns, which, batches }
}
