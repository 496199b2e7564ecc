/**
 * Argument checks at the package boundary: each names the argument and throws
 * Node's error codes, so nothing malformed ever reaches the native binding.
 */
import { types } from 'node:util'

import { invalidArgType, invalidArgValue, noMemory, outOfRange } from './errors.js'

/** A backend a handle can live in. */
export type BackendName = 'swap' | 'file'

/** Bytes coldpage accepts: any `ArrayBufferView` (honouring its offset and length) or an `ArrayBuffer`. */
export type Data = ArrayBufferView | ArrayBufferLike

const SAFE = 'a non-negative safe integer'

/** Checks a byte offset or length: a non-negative safe integer. */
function isByteCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

export function byteCount(name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'a number', value)
  if (!Number.isSafeInteger(value) || value < 0) throw outOfRange(name, SAFE, value)
  return value
}

function isData(value: unknown): value is Data {
  return ArrayBuffer.isView(value) || types.isAnyArrayBuffer(value)
}

/** Bytes of one chunk as a `Uint8Array` over the same memory (no copy). */
function bytesOf(chunk: Data, name: string): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  if (types.isDataView(chunk)) {
    // A DataView over a detached buffer throws on every property read (typed arrays
    // read as empty instead): refused with a code rather than V8's bare TypeError.
    try {
      void chunk.byteLength
    } catch {
      throw invalidArgValue(name, 'a view of a buffer that is not detached', 'a DataView over a detached ArrayBuffer')
    }
  }
  if (ArrayBuffer.isView(chunk)) {
    if (chunk.byteLength === 0) return new Uint8Array(0)
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  }
  return chunk.byteLength === 0 ? new Uint8Array(0) : new Uint8Array(chunk)
}

/** Normalises `data` (one chunk or an array of chunks) to `Uint8Array`s. */
export function chunks(data: unknown): Uint8Array[] {
  if (isData(data)) return [bytesOf(data, 'data')]
  if (!Array.isArray(data)) {
    throw invalidArgType('data', 'an ArrayBufferView, an ArrayBuffer or an array of them', data)
  }
  const out: Uint8Array[] = new Array(data.length)
  for (let i = 0; i < data.length; i++) {
    const chunk: unknown = data[i]
    if (!isData(chunk)) throw invalidArgType(`data[${i}]`, 'an ArrayBufferView or an ArrayBuffer', chunk)
    out[i] = bytesOf(chunk, `data[${i}]`)
  }
  return out
}

/** A writable target for `readInto`, as a `Uint8Array` over the same memory. */
export function target(value: unknown): Uint8Array {
  if (!ArrayBuffer.isView(value)) throw invalidArgType('target', 'an ArrayBufferView', value)
  return bytesOf(value, 'target')
}

/** Checks an options argument: `undefined` or an object. */
export function options<T extends object>(value: unknown, name = 'opts'): Partial<T> {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgType(name, 'an object', value)
  return value as Partial<T>
}

/** Checks `opts.backend`: `undefined`, `'swap'` or `'file'`. */
export function backendOption(value: unknown): BackendName | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw invalidArgType('opts.backend', "'swap' or 'file'", value)
  if (value !== 'swap' && value !== 'file') throw invalidArgValue('opts.backend', "'swap' or 'file'", value)
  return value
}

/** Checks `opts.signal`: `undefined` or an `AbortSignal`. */
export function signalOption(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (!(value instanceof AbortSignal)) throw invalidArgType('opts.signal', 'an AbortSignal', value)
  return value
}

/**
 * `opts` without its `signal` (checked), for the option checks of the sync call
 * that an async one shares.
 */
export function splitSignal(opts: unknown): { signal: AbortSignal | undefined; rest: unknown } {
  if (typeof opts !== 'object' || opts === null || !Object.hasOwn(opts, 'signal')) return { signal: undefined, rest: opts }
  const { signal, ...rest } = opts as { signal?: unknown }
  return { signal: signalOption(signal), rest }
}

/** `{ signal }` when there is one, else `{}`: an options object for the async calls. */
export function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal }
}

/** A range list given by the caller: `[offset, length]` pairs. */
export type Ranges = ReadonlyArray<readonly [offset: number, length: number]>

/**
 * Checks `ranges` against a handle of `byteLength` bytes and flattens them to
 * `[o0, l0, o1, l1, ...]` for the binding.
 */
export function ranges(value: unknown, byteLength: number, outside: (o: number, l: number) => Error): Float64Array {
  if (!Array.isArray(value)) throw invalidArgType('ranges', 'an array of [offset, length] pairs', value)
  // The first pair is checked before the result is allocated, so that a huge sparse
  // array (`new Array(2 ** 31)`) is refused for its hole, not by the allocator.
  if (value.length > 0) pairAt(value, 0)
  // A typed array crosses into the binding as one slice (a JS array costs a call per element).
  let flat: Float64Array
  try {
    flat = new Float64Array(value.length * 2)
  } catch (err) {
    throw noMemory(value.length * 16, err)
  }
  for (let i = 0; i < value.length; i++) {
    const pair = pairAt(value, i)
    const [o, l] = pair
    // The names are built only for an error: this loop runs for every range of a read.
    const offset = isByteCount(o) ? o : byteCount(`ranges[${i}][0]`, o)
    const length = isByteCount(l) ? l : byteCount(`ranges[${i}][1]`, l)
    if (offset + length > byteLength) throw outside(offset, length)
    flat[2 * i] = offset
    flat[2 * i + 1] = length
  }
  return flat
}

/** `ranges[i]`, checked to be a pair (a hole of a sparse array is not). */
function pairAt(value: unknown[], i: number): unknown[] {
  const pair: unknown = value[i]
  if (!Array.isArray(pair) || pair.length !== 2) throw invalidArgType(`ranges[${i}]`, 'an [offset, length] pair', pair)
  return pair as unknown[]
}
