/**
 * `Handle`: the JS face of one paged-out byte sequence. Owns the disposal
 * state, checks arguments, and forwards to the native handle.
 */
import { abortError, disposedError, fromNative, illegalConstructor, rangeOutside } from './errors.js'
import type { NativeHandle } from './native.js'
import { zeroCopyAllowed } from './native.js'
import { type BackendName, type Ranges, byteCount, options, ranges, signalOption, target } from './validate.js'

/** Options of the async reads. */
export interface ReadOptions {
  /** Aborts the read: the promise rejects with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignal
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
    return this.#disposed
  }

  #live(): NativeHandle {
    if (this.#disposed) throw disposedError(this.#id)
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
    const out = Buffer.allocUnsafe(l)
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
    // One Buffer that V8 owns holds every range: the GC frees it at once, whereas the
    // finalizer of an external Buffer waits for Node's next turn of the event loop,
    // which a synchronous loop of reads never gives it.
    const all = Buffer.allocUnsafe(total)
    try {
      native.readAtManyInto(flat, all)
    } catch (err) {
      throw fromNative(err)
    }
    const parts: Buffer[] = new Array(flat.length / 2)
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
   * taken, so it can never point at freed memory. Treat it as read-only.
   * @param offset - defaults to 0
   * @param length - defaults to the rest of the handle
   */
  view(offset?: number, length?: number): Buffer {
    const native = this.#live()
    const [o, l] = this.#span(offset, length)
    if (o + l > this.byteLength) throw rangeOutside(o, l, this.byteLength)
    try {
      return native.view(o, l, zeroCopyAllowed())
    } catch (err) {
      throw fromNative(err)
    }
  }

  /**
   * Returns all bytes and disposes the handle; zero-copy where possible (a swap
   * handle hands over its own pages).
   */
  take(): Buffer {
    const native = this.#live()
    if (this.backend === 'file' || !zeroCopyAllowed()) {
      // Nothing to hand over without a copy: read into a Buffer V8 owns (freed by
      // the GC at once, unlike an external Buffer's deferred finalizer). Disposed
      // whatever the read gives, as `takeAsync` and a zero-copy take are.
      try {
        return this.readAt(0, this.byteLength)
      } finally {
        this.dispose()
      }
    }
    this.#disposed = true
    try {
      return native.take(zeroCopyAllowed())
    } catch (err) {
      throw fromNative(err)
    }
  }

  /** `take` with the work on the libuv pool; the handle is disposed at once. */
  async takeAsync(): Promise<Buffer> {
    const native = this.#live()
    this.#disposed = true
    try {
      return await native.takeAsync(zeroCopyAllowed())
    } catch (err) {
      throw fromNative(err)
    }
  }

  /**
   * Hints that a range will be read soon. Never throws for a live handle with
   * valid numbers; a range past the end is clamped.
   */
  prefetch(offset?: number, length?: number): void {
    const native = this.#live()
    const [o, l] = this.#span(offset, length)
    native.prefetch(o, l)
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
