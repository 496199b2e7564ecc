/**
 * The read side of a paged-out Arrow table: which byte ranges a selection of
 * columns and record batches needs (one vectored read), and how the Buffers
 * read back become an `arrow.Table` without copying the column bodies.
 */
import type * as Arrow from 'apache-arrow'

import { invalidArgType } from '../errors.js'
import { type Column, tableOf } from './batches.js'
import { type DictionaryColumn, type FastColumn, decodeFast } from './fast.js'
import { ALIGN, type ArrowModule, type ColumnLayout, type Span, type TableLayout } from './layout.js'

/** A message inside the Buffers of a read: which range holds it, and where. */
interface Piece {
  range: number
  at: number
  length: number
}

/** The ranges of one read and, per column read, the messages of its stream. */
export interface ReadPlan {
  ranges: [offset: number, length: number][]
  /** Per distinct column (same order as the `columns` given to `plan`): its stream's messages. */
  streams: Piece[][]
}

/** The end-of-stream marker that closes each column stream. */
const EOS = new Uint8Array(new Int32Array([-1, 0]).buffer)

/**
 * The messages one column needs for `batches`, in stream order: its schema,
 * then before each batch the dictionary batches that bring every dictionary to
 * its state at that batch (deltas since the last batch sent when that is
 * enough, else the last replacement and its deltas), then the batch.
 */
function columnMessages(column: ColumnLayout, batches: readonly number[]): Span[] {
  const out: Span[] = [column.schema]
  // Per dictionary id: the replacement the reader holds and how many messages of the run it has.
  const held = new Map<number, { base: number; end: number }>()
  for (const b of batches) {
    for (const [id, run] of column.dictionaries) {
      const end = upperBound(run.messages, b) // messages [0, end) were written before batch b
      if (end === 0) continue
      const base = run.base[end - 1] as number
      const state = held.get(id)
      const from = state !== undefined && state.base === base && state.end <= end ? state.end : base
      for (let i = from; i < end; i++) out.push(run.messages[i] as Span)
      held.set(id, { base, end })
    }
    out.push({ offset: column.records[2 * b] as number, length: column.records[2 * b + 1] as number })
  }
  return out
}

/** The number of messages written before or with batch `b` (messages are in batch order). */
function upperBound(messages: readonly { batch: number }[], b: number): number {
  let lo = 0
  let hi = messages.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((messages[mid] as { batch: number }).batch <= b) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Adds `span` to the read: merged into the last range when it follows it (within the padding), else a new range. */
function place(ranges: [number, number][], last: [number, number] | undefined, span: Span): [number, number] {
  const end = last === undefined ? -1 : last[0] + last[1]
  if (last !== undefined && span.offset >= end && span.offset - end < ALIGN) {
    last[1] = span.offset + span.length - last[0]
    return last
  }
  const range: [number, number] = [span.offset, span.length]
  ranges.push(range)
  return range
}

/**
 * Plans one vectored read of `columns` (distinct indexes) for `batches`.
 * Messages (or fast batches) that follow each other in the handle share a
 * range (the padding between them is read too), so a whole column is a
 * single range.
 */
export function plan(layout: TableLayout, columns: readonly number[], batches: readonly number[]): ReadPlan {
  const ranges: [number, number][] = []
  const streams: Piece[][] = []
  if (batches.length === 0) return { ranges, streams: columns.map(() => []) }
  for (const c of columns) {
    const column = layout.columns[c] as ColumnLayout | FastColumn | DictionaryColumn
    const spans: Span[] =
      column.kind === 'ipc'
        ? columnMessages(column, batches)
        : column.kind === 'fast'
          ? fastSpans(column, batches)
          : // The whole dictionary, then the indices of the batches.
            [...fastSpans(column.values, allOf(column.values)), ...fastSpans(column.indices, batches)]
    const pieces: Piece[] = []
    let last: [number, number] | undefined
    for (const span of spans) {
      last = place(ranges, last, span)
      pieces.push({ range: ranges.length - 1, at: span.offset - last[0], length: span.length })
    }
    streams.push(pieces)
  }
  return { ranges, streams }
}

/** The places of `batches` of a fast column. */
function fastSpans(column: FastColumn, batches: readonly number[]): Span[] {
  return batches.map((b) => {
    const start = column.spans[2 * b] as number
    return { offset: column.offset + start, length: (column.spans[2 * b + 1] as number) - start }
  })
}

/** Every batch index of a fast column. */
function allOf(column: FastColumn): number[] {
  return Array.from({ length: column.spans.length / 2 }, (_, b) => b)
}

/** Decodes one IPC column stream with apache-arrow; its bodies stay views of `buffers`. */
function decodeColumn(A: ArrowModule, pieces: Piece[], buffers: Buffer[], count: number): Arrow.Data[] {
  const chunks: Uint8Array[] = pieces.map((p) => {
    const buffer = buffers[p.range] as Buffer
    return new Uint8Array(buffer.buffer, buffer.byteOffset + p.at, p.length)
  })
  chunks.push(EOS)
  const out: Arrow.Data[] = []
  for (const batch of A.RecordBatchReader.from(chunks)) {
    if (out.length === count) break
    const data = batch.data.children[0]
    if (data === undefined) throw new Error('a column stream decoded to a batch without its column')
    out.push(data)
  }
  if (out.length !== count) throw new Error(`a column stream decoded to ${out.length} batches, expected ${count}`)
  return out
}

/** Builds the batches of a fast column as views of `buffers`. */
function decodeFastColumn(
  D: Classes,
  type: Arrow.DataType,
  column: FastColumn,
  pieces: readonly Piece[],
  buffers: Buffer[],
  batches: readonly number[],
  dictionary?: Arrow.Vector,
) {
  return batches.map((b, k) => {
    const p = pieces[k] as Piece
    return decodeFast(D, type, column, b, buffers[p.range] as Buffer, (column.spans[2 * b] as number) - p.at, dictionary)
  })
}

/** Builds the batches of a dictionary column: its dictionary once, then each batch's indices over it. */
function decodeDictionaryColumn(D: Classes, type: Arrow.DataType, column: DictionaryColumn, pieces: Piece[], buffers: Buffer[], batches: readonly number[]) {
  if (batches.length === 0) return []
  const all = allOf(column.values)
  const values = decodeFastColumn(D, column.valueType, column.values, pieces.slice(0, all.length), buffers, all)
  const dictionary = new column.Vector(values)
  return decodeFastColumn(D, type, column.indices, pieces.slice(all.length), buffers, batches, dictionary)
}

/**
 * The apache-arrow classes a read builds its table with: those of the table
 * that was paged out (any copy of apache-arrow), so that the table read back
 * is an instance of the caller's `Table`.
 */
export interface Classes {
  Data: typeof Arrow.Data
  Table: typeof Arrow.Table
  RecordBatch: typeof Arrow.RecordBatch
  Schema: typeof Arrow.Schema
  Struct: typeof Arrow.Struct
}

/** The classes of `table`'s own apache-arrow copy; `A` fills in what an empty table cannot show. */
export function classesOf(table: Arrow.Table, A: ArrowModule | undefined): Classes {
  const batch = table.batches[0]
  const ctor = <T>(x: unknown, fallback: T | undefined, what: string): T => {
    const c = (x as { constructor?: unknown } | undefined)?.constructor ?? fallback
    if (typeof c !== 'function' || c === Object) {
      throw invalidArgType('table', `an apache-arrow Table (its ${what} class was not found)`, table)
    }
    return c as T
  }
  return {
    Table: ctor(table, A?.Table, 'Table'),
    Schema: ctor(table.schema, A?.Schema, 'Schema'),
    RecordBatch: ctor(batch, A?.RecordBatch, 'RecordBatch'),
    Data: ctor(batch?.data, A?.Data, 'Data'),
    Struct: ctor(batch?.data.type, A?.Struct, 'Struct'),
  }
}

/** `buffer` itself when 8-byte aligned (typed array views need it), else an aligned copy. */
function aligned(buffer: Buffer): Buffer {
  if (buffer.byteOffset % 8 === 0) return buffer
  const copy = Buffer.allocUnsafeSlow(buffer.byteLength)
  buffer.copy(copy)
  return copy
}

/**
 * Decodes the columns of a read, without building a table: `result[i]` is the
 * Data (one per batch of `batches`) of the `i`th requested column, `which[i]`
 * indexing the decoded column (distinct) that holds it.
 */
export function decode(
  A: ArrowModule | undefined,
  C: Classes,
  schema: Arrow.Schema,
  layout: TableLayout,
  columns: readonly number[],
  which: readonly number[],
  batches: readonly number[],
  readPlan: ReadPlan,
  read: Buffer[],
): Column[] {
  const buffers = read.map(aligned)
  const decoded = readPlan.streams.map((pieces, d) => {
    const c = columns[d] as number
    const column = layout.columns[c] as ColumnLayout | FastColumn | DictionaryColumn
    if (column.kind === 'fast') return decodeFastColumn(C, (schema.fields[c] as Arrow.Field).type, column, pieces, buffers, batches)
    if (column.kind === 'dictionary') return decodeDictionaryColumn(C, (schema.fields[c] as Arrow.Field).type, column, pieces, buffers, batches)
    if (A === undefined) throw new Error('an IPC column needs the apache-arrow module of the table')
    return decodeColumn(A, pieces, buffers, batches.length)
  })
  return which.map((d) => decoded[d] as Column)
}

/**
 * Builds the table of a read: `fields[i]` is the field of the `i`th requested
 * column, `which[i]` indexes the decoded column (distinct) that holds it.
 */
export function assemble(
  A: ArrowModule | undefined,
  C: Classes,
  schema: Arrow.Schema,
  layout: TableLayout,
  fields: readonly Arrow.Field[],
  columns: readonly number[],
  which: readonly number[],
  batches: readonly number[],
  readPlan: ReadPlan,
  read: Buffer[],
): Arrow.Table {
  const decoded = decode(A, C, schema, layout, columns, which, batches, readPlan, read)
  const rows = batches.map((b) => layout.batchRows[b] as number)
  const metadata = batches.map((b) => layout.batchMetadata[b])
  return tableOf(C, fields, schema.metadata, rows, metadata, decoded)
}
