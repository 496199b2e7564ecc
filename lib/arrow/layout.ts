/**
 * The byte layout of a paged-out Arrow table: every column is its own IPC
 * stream (a schema message, then per record batch the dictionary batches it
 * needs and its record batch message), all laid end to end in one handle.
 * Every message starts on a 64-byte boundary and its metadata is padded to a
 * multiple of 64, so each body starts 64-byte aligned wherever the message is
 * read into; the small index of byte ranges stays in JS memory.
 */
import type * as Arrow from 'apache-arrow'
import type { Message } from 'apache-arrow/ipc/metadata/message'
import type { ArrayBufferViewInput } from 'apache-arrow/util/buffer'

import { ALIGN, type DictionaryColumn, type FastColumn, isFlat, isFlatDictionary, writeDictionary, writeFast } from './fast.js'

/** The apache-arrow build a table belongs to (CommonJS and ESM builds are distinct). */
export type ArrowModule = typeof import('apache-arrow')

export { ALIGN } from './fast.js'

/** A message's place in the handle. */
export interface Span {
  /** Byte offset of the message (64-byte aligned). */
  offset: number
  /** Its metadata and body, without trailing padding. */
  length: number
}

/** One dictionary batch message of a column stream. */
export interface DictionaryMessage extends Span {
  /** The record batch it was written before. */
  batch: number
  /** The dictionary id. */
  id: number
  /** Whether it appends to the dictionary (a delta) rather than replacing it. */
  isDelta: boolean
}

/** The dictionary messages of one id, in stream order. */
export interface DictionaryRun {
  messages: DictionaryMessage[]
  /** For each message, the index of the replacement (non-delta) message it builds on. */
  base: number[]
}

/** Where one column's stream lives. */
export interface ColumnLayout {
  kind: 'ipc'
  schema: Span
  /** Per record batch: `[offset, length]` of its record batch message, flat. */
  records: Float64Array
  /** Dictionary messages by dictionary id. */
  dictionaries: Map<number, DictionaryRun>
}

/** Everything needed to read a table back, apart from its bytes. */
export interface TableLayout {
  columns: (ColumnLayout | FastColumn | DictionaryColumn)[]
  /** Rows of each record batch. */
  batchRows: number[]
  /** Custom metadata of each record batch (undefined where there is none). */
  batchMetadata: (Map<string, string> | undefined)[]
}

/** A message as the writer emitted it, offsets relative to the column stream. */
interface Emitted extends Span {
  kind: 'schema' | 'record' | 'dictionary'
  batch: number
  id: number
  isDelta: boolean
}

function asBytes(chunk: ArrayBufferView): Uint8Array {
  return chunk instanceof Uint8Array && chunk.constructor === Uint8Array
    ? chunk
    : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
}

const padding = (position: number): number => (ALIGN - (position % ALIGN)) % ALIGN

/** The stream writer subclass of one apache-arrow build, made once per build. */
const writers = new WeakMap<ArrowModule, ReturnType<typeof captureWriter>>()

/**
 * A stream writer that collects the chunks it writes instead of queueing them
 * (the body chunks stay views of the table's own buffers: nothing is copied
 * before `pageout`), aligns each message to 64 bytes, and records where each
 * message landed. The chunks are not a valid stream by themselves (padding
 * sits between messages); reads hand apache-arrow only the messages.
 */
function captureWriter(A: ArrowModule) {
  return class CaptureWriter extends A.RecordBatchStreamWriter {
    readonly chunks: Uint8Array[] = []
    readonly messages: Emitted[] = []
    /** The record batch being written, for the dictionaries written before it. */
    batch = -1

    get position(): number {
      return this._position
    }

    pad(): void {
      this._writePadding(padding(this._position))
    }

    protected override _write(chunk: ArrayBufferViewInput): this {
      if (this._started && ArrayBuffer.isView(chunk) && chunk.byteLength > 0) {
        this.chunks.push(asBytes(chunk))
        this._position += chunk.byteLength
      }
      return this
    }

    protected override _writeMessage<T extends Arrow.MessageHeader>(message: Message<T>): this {
      this.pad()
      const offset = this._position
      super._writeMessage(message, ALIGN)
      const length = this._position - offset + message.bodyLength
      const type = message.headerType as Arrow.MessageHeader
      if (type === A.MessageHeader.DictionaryBatch) {
        const header = (message as Message<Arrow.MessageHeader.DictionaryBatch>).header()
        this.messages.push({ kind: 'dictionary', batch: this.batch, id: header.id, isDelta: header.isDelta, offset, length })
      } else {
        const kind = type === A.MessageHeader.Schema ? 'schema' : 'record'
        this.messages.push({ kind, batch: this.batch, id: -1, isDelta: false, offset, length })
      }
      return this
    }
  }
}

/**
 * Lays a table out for `pageout`: the chunks to page out (views of the table's
 * buffers plus small metadata and padding) and the layout to read it back.
 * Flat columns take the fast path (`./fast.ts`); the others are written by
 * apache-arrow's stream writer of `A`, which is needed only for them.
 */
export function layOut(A: ArrowModule | undefined, table: Arrow.Table): { chunks: Uint8Array[]; layout: TableLayout } {
  const batches = table.batches
  const chunks: Uint8Array[] = []
  const columns: (ColumnLayout | FastColumn | DictionaryColumn)[] = []
  let base = 0
  table.schema.fields.forEach((field, c) => {
    const parts = batches.map((batch, b) => {
      const child = batch.data.children[c]
      if (child === undefined) throw new Error(`record batch ${b} lacks column ${c}`)
      return child
    })
    if (isFlat(parts) || isFlatDictionary(parts)) {
      // The table's own Vector class (a dictionary may be a subclass of it that memoizes).
      const { column, size } = isFlat(parts)
        ? writeFast(parts, chunks, base)
        : writeDictionary(parts, chunks, base, (table.getChildAt(c) as Arrow.Vector).constructor as DictionaryColumn['Vector'])
      columns.push(column)
      base += size
      return
    }
    if (A === undefined) throw new NeedsModule(field)
    let Writer = writers.get(A)
    if (Writer === undefined) {
      Writer = captureWriter(A)
      writers.set(A, Writer)
    }
    const schema = new A.Schema([field])
    const struct = new A.Struct([field])
    const writer = new Writer()
    writer.reset(undefined, schema)
    parts.forEach((child, b) => {
      writer.batch = b
      const data = A.makeData({ type: struct, length: (batches[b] as Arrow.RecordBatch).numRows, nullCount: 0, children: [child] })
      writer.write(new A.RecordBatch(schema, data))
    })
    writer.pad()
    for (const chunk of writer.chunks) chunks.push(chunk)
    columns.push(indexColumn(writer.messages, base, batches.length))
    base += writer.position
  })
  return {
    chunks,
    layout: {
      columns,
      batchRows: batches.map((b) => b.numRows),
      // RecordBatch metadata exists from apache-arrow 21 on.
      batchMetadata: batches.map((b) => {
        const metadata = b.metadata as Map<string, string> | undefined
        return metadata !== undefined && metadata.size > 0 ? new Map(metadata) : undefined
      }),
    },
  }
}

/** Thrown by `layOut` when a column needs apache-arrow's writer and no module was given. */
export class NeedsModule extends Error {
  constructor(readonly field: Arrow.Field) {
    super(`column ${JSON.stringify(field.name)} (${String(field.type)}) needs the apache-arrow module of the table`)
  }
}

/** Turns a column's emitted messages into its layout, at `base` in the handle. */
function indexColumn(messages: Emitted[], base: number, numBatches: number): ColumnLayout {
  let schema: Span | undefined
  const records = new Float64Array(numBatches * 2)
  const dictionaries = new Map<number, DictionaryRun>()
  for (const m of messages) {
    const span = { offset: base + m.offset, length: m.length }
    if (m.kind === 'schema') {
      schema = span
    } else if (m.kind === 'record') {
      records[2 * m.batch] = span.offset
      records[2 * m.batch + 1] = span.length
    } else {
      let run = dictionaries.get(m.id)
      if (run === undefined) dictionaries.set(m.id, (run = { messages: [], base: [] }))
      const i = run.messages.length
      run.messages.push({ ...span, batch: m.batch, id: m.id, isDelta: m.isDelta })
      run.base.push(m.isDelta && i > 0 ? (run.base[i - 1] as number) : i)
    }
  }
  if (schema === undefined) throw new Error('the column stream has no schema message')
  return { kind: 'ipc', schema, records, dictionaries }
}
