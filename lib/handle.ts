/**
 * `Handle`: the JS face of one paged-out byte sequence. Owns the disposal
 * state, checks arguments, and forwards to the native handle.
 */
import { constants as bufferConstants } from 'node:buffer'

import { abortError, disposedError, fromNative, illegalConstructor, noMemory, outOfRange, rangeOutside } from './errors.js'
import type { NativeHandle } from './native.js'
import { zeroCopyAllowed } from './native.js'
import { type BackendName, type Ranges, byteCount, options, ranges, signalOption, target } from './validate.js'

/** Options of the async reads. */
export interface ReadOptions {
  /** Aborts the read: the promise rejects with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignal
}

/** The largest Buffer this runtime can make (4 GiB on Node 20, 2^53 - 1 from Node 22). */
const MAX_BUFFER = bufferConstants.MAX_LENGTH

/** `ERR_OUT_OF_RANGE` before any work when a result would pass the runtime's Buffer limit. */
function fitsBuffer(length: number, what = 'length'): void {
  if (length > MAX_BUFFER) throw outOfRange(what, `at most ${MAX_BUFFER} (buffer.constants.MAX_LENGTH)`, length)
}

/** A Buffer of `length` bytes for a result, or `ERR_COLDPAGE_NO_MEMORY`. */
function allocResult(length: number): Buffer {
  try {
    return Buffer.allocUnsafe(length)
  } catch (err) {
    throw noMemory(length, err)
  }
}

/** Runs a native call off the hot read paths, giving its errors their class. */
function call<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw fromNative(err)
  }
}

/** Marks constructor calls made by this package (users get handles from `pageout`). */
const INTERNAL = Symbol('coldpage.internal')

/**
 * Runs a native async call under an optional AbortSignal. The caller's signal
 * is never handed to the binding (napi-rs would take over its `onabort`): a
 * private controller relays the abort, which also cancels work still queued on
 * the libuv pool, and the promise rejects at once even if work already started.
 */
async function withSignal<T>(signal: AbortSignal | undefined, run: (signal?: AbortSignal) => Promise<T>): Promise<T> {
  if (signal === undefined) return run().catch((err: unknown) => Promise.reject(fromNative(err)))
  if (signal.aborted) throw abortError(signal.reason)
  const relay = new AbortController()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      relay.abort(signal.reason)
      reject(abortError(signal.reason))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  const work = run(relay.signal)
  work.catch(() => {}) // Its rejection after an abort is expected and unobserved.
  try {
    return await Promise.race([work.catch((err: unknown) => Promise.reject(fromNative(err))), aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Bytes paged out of resident memory. Read any range back with `readAt`,
 * borrow it with `view`, or get everything back with `take`.
 *
 * Note: dispose handles explicitly (`dispose()` or `using`); garbage collection
 * frees a forgotten handle too, but late.
 *
 * @example
 * ```ts
 * using h = pageout(Buffer.from('hello world'))
 * h.readAt(6, 5).toString() // 'world'
 * ```
 */
export class Handle implements Disposable {
  readonly #native: NativeHandle
  readonly #id: number
  #disposed = false
  /** A `takeAsync` is reading the bytes: the handle is unusable, and live again if it fails. */
  #taking = false

  /** The number of bytes paged out. */
  readonly byteLength: number
  /** Where the bytes live, fixed at pageout. */
  readonly backend: BackendName

  /** @internal Handles come from `pageout`/`pageoutAsync`. */
  constructor(token: symbol, native: NativeHandle) {
    if (token !== INTERNAL) throw illegalConstructor('Handle instances are created by pageout()')
    this.#native = native
    this.#id = native.id
    this.byteLength = native.byteLength
    this.backend = native.backend as BackendName
  }

  /** @internal */
  static wrap(native: NativeHandle): Handle {
    return new Handle(INTERNAL, native)
  }

  /** Whether the handle was disposed or taken. */
  get disposed(): boolean {
    return this.#disposed || this.#taking
  }

  #live(): NativeHandle {
    if (this.#disposed || this.#taking) throw disposedError(this.#id)
    return this.#native
  }

  #range(offset: unknown, length: unknown): [number, number] {
    const o = byteCount('offset', offset)
    const l = byteCount('length', length)
    if (o + l > this.byteLength) throw rangeOutside(o, l, this.byteLength)
    return [o, l]
  }

  /** The optional `offset`/`length` of view/prefetch: defaults to the rest of the handle. */
  #span(offset: unknown, length: unknown): [number, number] {
    const o = offset === undefined ? 0 : byteCount('offset', offset)
    const l = length === undefined ? Math.max(this.byteLength - o, 0) : byteCount('length', length)
    return [o, l]
  }

  /**
   * Reads `length` bytes at `offset` into a fresh Buffer.
   * @param offset - byte offset into the handle
   * @param length - bytes to read; `offset + length` must not pass `byteLength`
   * @returns a new Buffer the caller owns
   */
  readAt(offset: number, length: number): Buffer {
    const native = this.#live()
    const [o, l] = this.#range(offset, length)
    fitsBuffer(l)
    const out = allocResult(l)
    // Inline (no closure per call): readAt is the hot path.
    try {
      native.readInto(o, out)
    } catch (err) {
      throw fromNative(err)
    }
    return out
  }

  /**
   * `readAt` with the read on the libuv thread pool.
   * @param opts - `signal` aborts the read
   */
  async readAtAsync(offset: number, length: number, opts?: ReadOptions): Promise<Buffer> {
    const native = this.#live()
    const [o, l] = this.#range(offset, length)
    fitsBuffer(l)
    const signal = signalOption(options<ReadOptions>(opts).signal)
    return withSignal(signal, (s) => native.readAtAsync(o, l, zeroCopyAllowed(), s))
  }

  /**
   * Reads several ranges at once (one vectored read for the file backend).
   * Ranges may overlap, repeat or be empty.
   * @param ranges - `[offset, length]` pairs
   * @returns one Buffer per range, in request order
   */
  readAtMany(ranges: Ranges): Buffer[] {
    const native = this.#live()
    const flat = this.#ranges(ranges)
    let total = 0
    for (let i = 1; i < flat.length; i += 2) total += flat[i]!
    // The results are views of one Buffer: together they must fit in one.
    fitsBuffer(total, 'the sum of the ranges\' lengths')
    const parts: Buffer[] = new Array(flat.length / 2)
    const all = allocResult(total)
    try {
      native.readAtManyInto(flat, all)
    } catch (err) {
      throw fromNative(err)
    }
    for (let i = 0, at = 0; i < parts.length; i++) {
      parts[i] = all.subarray(at, at + flat[2 * i + 1]!)
      at += flat[2 * i + 1]!
    }
    return parts
  }

  /** `readAtMany` on the libuv thread pool. */
  async readAtManyAsync(ranges: Ranges, opts?: ReadOptions): Promise<Buffer[]> {
    const native = this.#live()
    const flat = this.#ranges(ranges)
    for (let i = 1; i < flat.length; i += 2) fitsBuffer(flat[i]!, `ranges[${(i - 1) / 2}][1]`)
    const signal = signalOption(options<ReadOptions>(opts).signal)
    return withSignal(signal, (s) => native.readAtManyAsync(flat, zeroCopyAllowed(), s))
  }

  #ranges(value: unknown): number[] {
    return ranges(value, this.byteLength, (o, l) => rangeOutside(o, l, this.byteLength))
  }

  /**
   * Fills `target` entirely with the bytes at `offset`; allocates nothing.
   * @param target - any ArrayBufferView; its `byteOffset`/`byteLength` are honoured
   */
  readInto(offset: number, target_: ArrayBufferView): void {
    const native = this.#live()
    const t = target(target_)
    const [o] = this.#range(offset, t.byteLength)
    try {
      native.readInto(o, t as Buffer)
    } catch (err) {
      throw fromNative(err)
    }
  }

  /**
   * Borrows bytes without copying where the runtime allows external buffers
   * (see `zeroCopySupported()`), else returns a copy.
   *
   * Note: the view is detached (`byteLength` 0) once the handle is disposed or
   * taken, so it can never point at freed memory. A write into it never reaches
   * the handle's bytes: file handles map the extent copy-on-write; swap handles
   * give a copy (their storage is plain memory that a zero-copy view would alias).
   * @param offset - defaults to 0
   * @param length - defaults to the rest of the handle
   */
  view(offset?: number, length?: number): Buffer {
    const native = this.#live()
    const [o, l] = this.#span(offset, length)
    if (o + l > this.byteLength) throw rangeOutside(o, l, this.byteLength)
    fitsBuffer(l)
    return call(() => native.view(o, l, zeroCopyAllowed()))
  }

  /**
   * Returns all bytes and disposes the handle; zero-copy where possible (a swap
   * handle hands over its own pages, in O(1)). On failure it throws and the
   * handle stays live and readable.
   */
  take(): Buffer {
    const native = this.#live()
    fitsBuffer(this.byteLength, 'byteLength')
    if (this.backend === 'file' || !zeroCopyAllowed()) {
      // A copy into a Buffer V8 allocates (and so counts and collects promptly),
      // made before the handle is released: a failure leaves it live.
      const out = this.readAt(0, this.byteLength)
      this.dispose()
      return out
    }
    const out = call(() => native.take(true))
    this.#disposed = true
    return out
  }

  /**
   * `take` with the read on the libuv pool (a zero-copy swap take needs none and
   * completes at once). While it runs the handle is unusable (`disposed` is true);
   * if it fails, the handle is live and readable again.
   */
  async takeAsync(): Promise<Buffer> {
    const native = this.#live()
    fitsBuffer(this.byteLength, 'byteLength')
    if (this.backend === 'swap' && zeroCopyAllowed()) return this.take()
    this.#taking = true
    let out: Buffer
    try {
      out = await native.readAtAsync(0, this.byteLength, zeroCopyAllowed())
    } catch (err) {
      throw fromNative(err)
    } finally {
      this.#taking = false
    }
    this.dispose()
    return out
  }

  /**
   * Hints that a range will be read soon. Never throws for a live handle with
   * valid numbers; a range past the end is clamped.
   */
  prefetch(offset?: number, length?: number): void {
    const native = this.#live()
    const [o, l] = this.#span(offset, length)
    call(() => native.prefetch(o, l))
  }

  /** Frees the memory or scratch space now and detaches every view. Idempotent. */
  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    this.#native.dispose()
  }

  /** Same as `dispose()`, so that `using h = pageout(...)` works. */
  [Symbol.dispose](): void {
    this.dispose()
  }

  /** @internal */
  get [Symbol.toStringTag](): string {
    return 'Handle'
  }
}
