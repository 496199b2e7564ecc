/**
 * The fast path for flat columns (fixed-width, boolean, utf8/binary and their
 * large variants, without children), and for dictionary columns of such values
 * whose batches share one dictionary: no IPC messages at all.
 * Each batch's buffers (offsets, values, validity) are paged out as they are,
 * each on a 64-byte boundary, column after column; the index of where each
 * buffer landed stays in JS memory, and a read builds the `Data` objects as
 * views of the Buffer read back, with the table's own apache-arrow classes.
 * A table of many small batches then costs about what its bytes cost.
 */
import type * as Arrow from 'apache-arrow'

/** Alignment of messages and bodies in the handle, and within every Buffer read back. */
export const ALIGN = 64

/** Buffer slots, in apache-arrow's `Data` order: offsets, values, validity. */
const SLOTS = 3
/** Per batch: length, null count, then per slot offset (relative to the column, -1 when absent) and byte length. */
export const STRIDE = 2 + 2 * SLOTS

/** Type ids (apache-arrow's `Type` enum, stable across versions) the fast path writes. */
const FLAT = new Set([
  2, // Int
  3, // Float
  4, // Binary
  5, // Utf8
  6, // Bool
  7, // Decimal
  8, // Date
  9, // Time
  10, // Timestamp
  11, // Interval
  15, // FixedSizeBinary
  18, // Duration
  19, // LargeBinary
  20, // LargeUtf8
])

/** Where one fast column lives in the handle. */
export interface FastColumn {
  kind: 'fast'
  /** Byte offset of the column's first batch in the handle. */
  offset: number
  /** Per batch, `STRIDE` numbers (see `STRIDE`). */
  index: Float64Array
  /** Per batch: start and end of its bytes relative to `offset`. */
  spans: Float64Array
}

/** Whether every batch's data of one column can take the fast path. */
export function isFlat(parts: readonly Arrow.Data[]): boolean {
  for (const d of parts) {
    if (!FLAT.has(d.type.typeId as number)) return false
    if (d.offset !== 0 || d.dictionary !== undefined || d.children.length > 0) return false
    if ((d.variadicBuffers?.length ?? 0) > 0) return false
  }
  return true
}

/**
 * A dictionary column whose batches all share one dictionary of a flat type (the
 * usual shape: one dictionary written once, no deltas or replacements): its
 * indices are a fast column, and so is the dictionary's own data. Others are
 * written as IPC streams.
 */
export interface DictionaryColumn {
  kind: 'dictionary'
  indices: FastColumn
  values: FastColumn
  /** The dictionary's value type, and the Vector class of the table's apache-arrow copy. */
  valueType: Arrow.DataType
  Vector: new (data: Arrow.Data[]) => Arrow.Vector
}

/** Whether one column's batches share one dictionary that can take the fast path. */
export function isFlatDictionary(parts: readonly Arrow.Data[]): boolean {
  const first = parts[0]?.dictionary
  if (first === undefined || first === null) return false
  for (const d of parts) {
    if (d.dictionary !== first || d.offset !== 0 || d.children.length > 0) return false
    if (d.type.typeId as number !== -1 || !FLAT.has((d.type as Arrow.Dictionary).indices.typeId as number)) return false
  }
  return first.data.length > 0 && isFlat(first.data)
}

/** Zero bytes for the padding between buffers (views of one block). */
const ZEROS = new Uint8Array(ALIGN)
const PAD = Array.from({ length: ALIGN }, (_, n) => ZEROS.subarray(0, n))

const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)

/**
 * Appends one column's buffers to `chunks` (views of the table's buffers, no
 * copy) starting at `offset` in the handle (64-byte aligned); returns its
 * index and the number of bytes appended (a multiple of 64).
 */
export function writeFast(parts: readonly Arrow.Data[], chunks: Uint8Array[], offset: number): { column: FastColumn; size: number } {
  const index = new Float64Array(parts.length * STRIDE)
  const spans = new Float64Array(parts.length * 2)
  let at = 0
  parts.forEach((d, b) => {
    const row = b * STRIDE
    index[row] = d.length
    index[row + 1] = d.nullCount
    spans[2 * b] = at
    const slots = [d.valueOffsets, d.values, d.nullBitmap] as (ArrayBufferView | undefined)[]
    for (let s = 0; s < SLOTS; s++) {
      const v = slots[s]
      if (v === undefined || v === null) {
        index[row + 2 + 2 * s] = -1
        continue
      }
      index[row + 2 + 2 * s] = at
      index[row + 3 + 2 * s] = v.byteLength
      if (v.byteLength > 0) chunks.push(bytesOf(v))
      const pad = (ALIGN - (v.byteLength % ALIGN)) % ALIGN
      if (pad > 0) chunks.push(PAD[pad] as Uint8Array)
      at += v.byteLength + pad
    }
    spans[2 * b + 1] = at
  })
  return { column: { kind: 'fast', offset, index, spans }, size: at }
}

/**
 * Appends a dictionary column: its indices, then its dictionary's data, both as
 * fast columns (views of the table's buffers, no copy).
 */
export function writeDictionary(
  parts: readonly Arrow.Data[],
  chunks: Uint8Array[],
  offset: number,
  Vector: DictionaryColumn['Vector'],
): { column: DictionaryColumn; size: number } {
  const dictionary = (parts[0] as Arrow.Data).dictionary as Arrow.Vector
  const indices = writeFast(parts, chunks, offset)
  const values = writeFast(dictionary.data, chunks, offset + indices.size)
  return { column: { kind: 'dictionary', indices: indices.column, values: values.column, valueType: dictionary.type, Vector }, size: indices.size + values.size }
}

/** The apache-arrow `Data` class a read builds with (that of the table paged out). */
interface Classes {
  Data: typeof Arrow.Data
}

type ArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView & { BYTES_PER_ELEMENT?: number }

function view(Type: ArrayCtor & { BYTES_PER_ELEMENT: number }, bytes: Uint8Array, at: number, byteLength: number) {
  return new Type(bytes.buffer, bytes.byteOffset + at, byteLength / Type.BYTES_PER_ELEMENT)
}

/**
 * Builds batch `b` of a fast column from `bytes`, which hold the column's bytes
 * from `start` (relative to the column) on, at an 8-byte aligned address.
 */
export function decodeFast(
  D: Classes,
  type: Arrow.DataType,
  column: FastColumn,
  b: number,
  bytes: Uint8Array,
  start: number,
  dictionary?: Arrow.Vector,
): Arrow.Data {
  const row = b * STRIDE
  const idx = column.index
  const slot = (s: number, Type: ArrayCtor & { BYTES_PER_ELEMENT: number }) => {
    const at = idx[row + 2 + 2 * s] as number
    return at < 0 ? undefined : view(Type, bytes, at - start, idx[row + 3 + 2 * s] as number)
  }
  // A dictionary column's buffers are its indices'.
  const t = (dictionary === undefined ? type : (type as Arrow.Dictionary).indices) as Arrow.DataType & {
    ArrayType: ArrayCtor & { BYTES_PER_ELEMENT: number }
    OffsetArrayType?: ArrayCtor & { BYTES_PER_ELEMENT: number }
  }
  const offsets = t.OffsetArrayType === undefined ? undefined : slot(0, t.OffsetArrayType)
  const values = slot(1, t.ArrayType)
  const validity = slot(2, Uint8Array)
  return new D.Data(type, 0, idx[row] as number, idx[row + 1] as number, [offsets, values, validity] as never, [], dictionary)
}
