/**
 * What `pageoutTable` and a store accept as a table, from any Arrow engine: an
 * apache-arrow `Table` of any copy >= 17, a flechette `Table` (Arquero's), or
 * Arrow IPC bytes in the stream or file format (as DuckDB, Polars, pyarrow or
 * parquet-wasm write them). Bytes and flechette tables become a table of the
 * given apache-arrow module: IPC is decoded without copying the column bodies
 * (they stay views of the bytes), a flechette table is written to IPC by
 * flechette first. Loads no apache-arrow itself.
 */
import type * as Arrow from 'apache-arrow'

import { invalidArgType, invalidArgValue } from '../errors.js'
import type { FlechetteTable } from '../table-types.js'
import { chunks } from '../validate.js'
import type { ArrowModule } from './layout.js'
import { isTable } from './select.js'

/** The table objects accepted, for messages. */
export const TABLE_OBJECTS = 'an apache-arrow Table (any copy >= 17), a flechette Table (Arquero)'

/** Everything accepted as a table, for messages. */
export const TABLE_KINDS = `${TABLE_OBJECTS} or Arrow IPC bytes (stream or file format: a Uint8Array, an ArrayBuffer or an array of them)`

export type { FlechetteTable } from '../table-types.js'

/** Whether `value` looks like a flechette `Table` of any copy (it has columns, not record batches). */
export function isFlechetteTable(value: unknown): value is FlechetteTable {
  const t = value as Partial<FlechetteTable> & { batches?: unknown } | null
  return (
    typeof t === 'object' &&
    t !== null &&
    Array.isArray(t.schema?.fields) &&
    Array.isArray(t.children) &&
    t.batches === undefined &&
    typeof t.getChild === 'function'
  )
}

/** Whether `value` is bytes or an array of chunks (what IPC input looks like). */
export function isBytes(value: unknown): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer) || Array.isArray(value)
}

type Flechette = { tableToIPC(table: unknown, options?: { format?: 'stream' | 'file' }): Uint8Array | null }
let flechette: Flechette | null | undefined

/** flechette's own `tableToIPC`, from the `@uwdata/flechette` the app resolves. */
function flechetteModule(): Flechette | null {
  if (flechette === undefined) {
    try {
      flechette = require('@uwdata/flechette') as Flechette
    } catch {
      flechette = null
    }
  }
  return flechette
}

/** The bytes of `value` (one chunk, or several concatenated) as one Uint8Array. */
function ipcBytes(value: unknown): Uint8Array {
  const parts = chunks(value)
  if (parts.length === 1) return parts[0] as Uint8Array
  return Buffer.concat(parts)
}

/** Decodes IPC `bytes` (stream or file format) with `A`: an argument error naming `name` when they are not IPC. */
function decodeIPC(A: ArrowModule, bytes: Uint8Array, name: string, what: string): Arrow.Table {
  const kind = bytes.byteLength >= 6 && String.fromCharCode(...bytes.subarray(0, 6)) === 'ARROW1' ? 'file' : 'stream'
  let schema: Arrow.Schema | undefined
  let batches: Arrow.RecordBatch[] = []
  try {
    const reader = A.RecordBatchReader.from(bytes).open()
    schema = reader.schema as Arrow.Schema | undefined
    if (schema) batches = [...reader]
  } catch (err) {
    throw invalidArgValue(name, `${what} (stream or file format); read as the ${kind} format they fail: ${(err as Error).message}`, bytes)
  }
  if (!schema) throw invalidArgValue(name, `${what} (stream or file format); these ${bytes.byteLength} bytes hold no schema message`, bytes)
  return new A.Table(schema, batches)
}

/**
 * `value` as a table of `A`: an apache-arrow Table as it is, IPC bytes decoded,
 * a flechette table written to IPC by flechette and decoded.
 *
 * @param name - the argument's name, for errors
 * @throws `ERR_INVALID_ARG_TYPE` naming what was given and what is accepted;
 *   `ERR_INVALID_ARG_VALUE` for bytes that are not Arrow IPC
 */
export function toTable(A: ArrowModule, value: unknown, name: string): Arrow.Table {
  if (isTable(value)) return value
  if (isFlechetteTable(value)) {
    const f = flechetteModule()
    if (f === null) {
      throw invalidArgValue(name, `${TABLE_KINDS}; this flechette Table needs @uwdata/flechette resolvable from coldpage (or pass tableToIPC(table))`, value)
    }
    const bytes = f.tableToIPC(value, { format: 'stream' })
    if (bytes === null) throw invalidArgValue(name, `${TABLE_KINDS}; flechette could not write this table as IPC`, value)
    return decodeIPC(A, bytes, name, 'a flechette Table that flechette writes as Arrow IPC')
  }
  if (isBytes(value)) {
    let bytes: Uint8Array
    try {
      bytes = ipcBytes(value)
    } catch {
      throw invalidArgType(name, TABLE_KINDS, value)
    }
    return decodeIPC(A, bytes, name, 'Arrow IPC bytes')
  }
  throw invalidArgType(name, TABLE_KINDS, value)
}
