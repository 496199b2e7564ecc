/**
 * Tables built from columns of Data, with the classes of the caller's own
 * apache-arrow copy, at a cost per record batch that does not dominate a read
 * of many small batches.
 *
 * apache-arrow's `new RecordBatch(schema, data)` re-checks every batch: it
 * makes a new Schema (`schema.assign`, merging metadata maps) and a new struct
 * Data through its type visitor, ~15-30 µs a batch here. A table of 6,000
 * batches of 1,024 rows (as parquet-wasm reads real files) then costs ~100-200 ms
 * to build, more than reading its bytes. The first batch of a table goes through
 * the constructor; the others are made like it (same prototype, the same own
 * fields, the first batch's Schema and struct type, their own struct Data), when
 * the first batch has exactly the fields apache-arrow 17-21's constructor gives
 * it (`schema`, `data`, and from 18 `_metadata`) and their children are as long
 * as the batch. Anything else takes the constructor for every batch.
 */
import type * as Arrow from 'apache-arrow'

import type { Classes } from './assemble.js'

/** One column: its Data in each record batch of the table built. */
export type Column = Arrow.Data[]

/** The own fields apache-arrow's `RecordBatch` constructor gives a batch, in order: 17's, then 18-21's. */
const BATCH_FIELDS = ['schema,data', 'schema,data,_metadata']

/**
 * The table of `fields` (with `metadata` as the schema's) whose record batch
 * `k` has `rows[k]` rows, the metadata `batchMetadata[k]` and column `i` as
 * `columns[i][k]`.
 */
export function tableOf(
  C: Classes,
  fields: readonly Arrow.Field[],
  metadata: Map<string, string>,
  rows: readonly number[],
  batchMetadata: readonly (Map<string, string> | undefined)[],
  columns: readonly Column[],
): Arrow.Table {
  const schema = new C.Schema([...fields], new Map(metadata))
  const struct = new C.Struct([...fields])
  const childrenOf = (k: number) => columns.map((column) => column[k] as Arrow.Data)
  const slow = (k: number) => {
    const data = new C.Data(struct, 0, rows[k] as number, 0, {}, childrenOf(k))
    const meta = batchMetadata[k]
    return meta === undefined ? new C.RecordBatch(schema, data) : new C.RecordBatch(schema, data, new Map(meta))
  }
  if (rows.length === 0) return new C.Table(schema, [])
  const first = slow(0)
  const keys = Object.keys(first).join()
  if (!BATCH_FIELDS.includes(keys)) {
    return new C.Table(schema, [first, ...rows.slice(1).map((_, k) => slow(k + 1))])
  }
  const hasMetadata = keys.endsWith('_metadata')
  const proto = Object.getPrototypeOf(first) as object
  const template = first.data
  const batches = [first]
  for (let k = 1; k < rows.length; k++) {
    const n = rows[k] as number
    const children = childrenOf(k)
    if (children.some((child) => child.length !== n)) {
      // The constructor pads short columns with nulls; leave that to it.
      batches.push(slow(k))
      continue
    }
    const batch = Object.create(proto) as { schema: Arrow.Schema; data: Arrow.Data; _metadata?: Map<string, string> }
    batch.schema = first.schema
    batch.data = template.clone(template.type, 0, n, 0, undefined, children) // buffers: the template's (none)
    if (hasMetadata) {
      const meta = batchMetadata[k]
      batch._metadata = meta === undefined ? new Map() : new Map(meta)
    }
    batches.push(batch as unknown as Arrow.RecordBatch)
  }
  return new C.Table(first.schema, batches)
}
