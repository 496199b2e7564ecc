/**
 * `Handle`: the JS face of one paged-out byte sequence. Checks arguments and
 * forwards to the native handle, whose cell in the core owns the handle's life
 * (live, being taken, disposed): this module keeps no state it could get out of
 * step with.
 */
import './polyfill.js'

import { constants as bufferConstants } from 'node:buffer'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { inspect } from 'node:util'
import { markAsUntransferable } from 'node:worker_threads'

import { type TraceContext, readChannel, takeChannel } from './channels.js'

import {
  abortError,
  fromNative,
  illegalConstructor,
  invalidArgType,
  invalidArgValue,
  noMemory,
  outOfRange,
  rangeOutside,
} from './errors.js'
import { inspectState } from './inspect.js'
import type { NativeHandle } from './native.js'
import native_, { zeroCopyAllowed } from './native.js'
import { knownOptions } from './options.js'
import { type BackendName, type Ranges, byteCount, ranges, signalOption, target } from './validate.js'

/**
 * A token for a handle's storage, from `handle.share()`: plain data (a string and
 * a number), so `postMessage` can send it to any worker_thread of this process,
 * where `open(shared)` gives a new `Handle` over the same storage.
 *
 * Note: a token is not a handle, but it outlives a collected one: when a handle over
 * the storage is garbage-collected without `dispose()`, the storage stays openable by
 * its tokens for 60 seconds (share, post, forget the handle is fine). Once every handle
 * over the storage is disposed explicitly (or taken), or 60 s after the last one was
 * collected, `open` throws `ERR_COLDPAGE_DISPOSED`: unopened tokens never keep storage
 * longer than that.
 */
export interface SharedHandle {
  /** The process that made the token: a random nonce, 16 hex digits (tokens do not work across processes). */
  readonly process: string
  /** The id of the handle whose storage it names. */
  readonly id: number
}

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

/**
 * Whether this runtime can mark memory untransferable (Bun 1.1 cannot). Without it
 * no result shares memory with another: each is its own allocation.
 */
const CAN_SHARE: boolean = (() => {
  try {
    markAsUntransferable(new ArrayBuffer(8))
    return true
  } catch {
    return false
  }
})()

/** A memory block that several results share: untransferable (see `POOLED_MAX`). */
function sharedBlock(length: number): Buffer {
  const block = allocResult(length)
  markAsUntransferable(block.buffer)
  return block
}

/** A Buffer of `length` bytes for a result, or `ERR_COLDPAGE_NO_MEMORY`. */
function allocResult(length: number): Buffer {
  try {
    return Buffer.allocUnsafeSlow(length)
  } catch (err) {
    throw noMemory(length, err)
  }
}

/**
 * Results up to this size are slices of a shared pool, as `Buffer.allocUnsafe`
 * makes Buffers under 4 KiB: a new ArrayBuffer costs V8 more than a 4 KiB read
 * from the page cache, a slice of an existing one little. Like Node's own pool, each slab is
 * marked untransferable, so that a transfer of one result (`postMessage`,
 * `structuredClone` with `transfer`) never detaches the others: it copies or
 * throws `DataCloneError`, as for `Buffer.allocUnsafe`'s.
 */
const POOLED_MAX = 4096
/** The pool: a retained slice keeps at most this much memory alive. */
const POOL_SIZE = 64 * 1024
let pool: Buffer = Buffer.alloc(0)
let poolUsed = 0

/**
 * Makes the result Buffers of a `readAtMany` (`parts`, one per `[offset, length]`
 * pair in `flat`) and returns the targets the binding fills in order. Small results
 * are slices of the pool: each run of them in one slab is one target. Slabs of
 * 64 KiB come from malloc's free lists, where one Buffer for all results (4 MB for
 * 1000 × 4 KiB) came from fresh pages whose faults cost more than the reads.
 * Larger results are views of one Buffer allocated first (so that a request too
 * large for memory fails before any work), each its own target.
 */
function packResults(flat: Float64Array, parts: Buffer[]): Buffer[] {
  let large = 0
  let larges = 0
  for (let i = 1; i < flat.length; i += 2) {
    if (flat[i]! > POOLED_MAX) {
      large += flat[i]!
      larges++
    }
  }
  fitsBuffer(large, "the sum of the ranges' lengths")
  // All results fit in memory, or nothing is allocated (as the async form checks).
  let total = 0
  for (let i = 1; i < flat.length; i += 2) total += flat[i]!
  try {
    byId.checkMemory(total)
  } catch (err) {
    throw fromNative(err)
  }
  if (!CAN_SHARE) {
    const targets: Buffer[] = []
    for (let i = 0; i < parts.length; i++) targets.push((parts[i] = allocResult(flat[2 * i + 1]!)))
    return targets
  }
  // One block for the large results, untransferable when it holds more than one.
  const big = larges === 0 ? pool : larges > 1 ? sharedBlock(large) : allocResult(large)
  let bigUsed = 0
  const targets: Buffer[] = []
  let runStart = -1
  const endRun = (): void => {
    if (runStart >= 0) targets.push(pool.subarray(runStart, poolUsed))
    runStart = -1
    poolUsed = (poolUsed + 7) & ~7
  }
  for (let i = 0; i < parts.length; i++) {
    const length = flat[2 * i + 1]!
    if (length > POOLED_MAX) {
      endRun() // Targets follow the ranges' order.
      const own = big.subarray(bigUsed, bigUsed + length)
      bigUsed += length
      parts[i] = own
      targets.push(own)
      continue
    }
    if (poolUsed + length > pool.length) {
      endRun()
      pool = sharedBlock(POOL_SIZE)
      poolUsed = 0
    }
    if (runStart < 0) runStart = poolUsed
    parts[i] = pool.subarray(poolUsed, poolUsed + length)
    poolUsed += length
  }
  endRun()
  return targets
}

/** A result Buffer of `length` bytes: a pool slice when small, else its own memory. */
function resultBuffer(length: number): Buffer {
  if (length > POOLED_MAX || !CAN_SHARE) return allocResult(length)
  if (poolUsed + length > pool.length) {
    pool = sharedBlock(POOL_SIZE)
    poolUsed = 0
  }
  const out = pool.subarray(poolUsed, poolUsed + length)
  // 8-byte aligned, so that a typed array over a result needs no copy.
  poolUsed = (poolUsed + length + 7) & ~7
  return out
}

/** The per-range reads, which find a handle by id (see crates/coldpage-node/src/reads_by_id.rs). */
const byId = native_

/** `readAt` into a fresh result: the traced path (the untraced one is inlined in `readAt`). */
function readFresh(id: number, offset: number, length: number): Buffer {
  const out = resultBuffer(length)
  try {
    byId.readInto(id, offset, out)
  } catch (err) {
    throw fromNative(err)
  }
  return out
}

/** The keys of `ReadOptions`. */
const READ_OPTIONS = ['signal'] as const

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
/**
 * The most result bytes, and the most results, that one turn of the event loop
 * asks the binding for in `readAtManyAsync`. The binding makes every result Buffer of
 * its call on the JS thread (at once in Electron's mode, where the pool fills
 * V8-owned Buffers; at resolve otherwise), and V8 may collect garbage as they add up:
 * a call for a GiB of small results in one turn would hold the loop that long.
 */
const TURN_BYTES = 32 << 20
const TURN_RANGES = 4096

/** The ranges of `flat` (offset, length pairs) cut where a turn's share ends. */
function turns(flat: Float64Array): Float64Array[] {
  const out: Float64Array[] = []
  let start = 0
  let bytes = 0
  for (let i = 0; i < flat.length; i += 2) {
    const len = flat[i + 1]!
    if (i > start && (bytes + len > TURN_BYTES || (i - start) / 2 >= TURN_RANGES)) {
      out.push(flat.subarray(start, i))
      start = i
      bytes = 0
    }
    bytes += len
  }
  out.push(flat.subarray(start))
  return out
}

/**
 * `readAtManyAsync` of the binding, a turn's share of the ranges per turn (the
 * reads of earlier shares run on the pool meanwhile). All results fit in memory or
 * none is asked for, as in one call.
 */
async function readManyInTurns(native: NativeHandle, flat: Float64Array, signal?: AbortSignal): Promise<Buffer[]> {
  const shares = turns(flat)
  if (shares.length === 1) return native.readAtManyAsync(flat, zeroCopyAllowed(), signal)
  byId.checkMemory(sumLengths(flat))
  const pending: Promise<Buffer[]>[] = []
  try {
    for (const share of shares) {
      if (pending.length > 0) await nextTurn()
      if (signal?.aborted) throw abortError(signal.reason)
      pending.push(native.readAtManyAsync(share, zeroCopyAllowed(), signal))
    }
  } catch (err) {
    // The shares already asked for settle unobserved.
    for (const p of pending) p.catch(() => {})
    throw err
  }
  return (await Promise.all(pending)).flat()
}

async function withSignal<T>(signal: AbortSignal | undefined, run_: (signal?: AbortSignal) => Promise<T>): Promise<T> {
  // The native call can also throw before it returns a promise (the handle disposed
  // while the arguments were read): that error gets its class too.
  const run = (s?: AbortSignal): Promise<T> => {
    try {
      return run_(s)
    } catch (err) {
      return Promise.reject(fromNative(err))
    }
  }
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
  /**
   * The native handle's id, read once: the per-range reads pass it (a getter call
   * per read would cost more than the read). Fixed for the handle's life, as
   * `byteLength` is.
   */
  readonly #id: number

  /** The number of bytes paged out. */
  readonly byteLength: number

  /** Handles come from `pageout`/`pageoutAsync` (and `open`). */
  private constructor(token: symbol, native: NativeHandle) {
    if (token !== INTERNAL) throw illegalConstructor('Handle instances are created by pageout()')
    this.#native = native
    this.#id = native.id
    this.byteLength = native.byteLength
  }

  /** Where the bytes live, fixed at pageout. */
  get backend(): BackendName {
    return this.#native.backend as BackendName
  }

  /** @internal */
  static wrap(native: NativeHandle): Handle {
    return new Handle(INTERNAL, native)
  }

  /** Whether the handle was disposed or taken (or a `takeAsync` is under way). */
  get disposed(): boolean {
    return this.#native.disposed
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
   * @returns a new Buffer the caller owns. Note: results up to 4 KiB are slices of
   *   a shared 64 KiB pool, as `Buffer.allocUnsafe` makes small Buffers; the pool is
   *   untransferable, so a transfer of `.buffer` copies or throws (`DataCloneError`)
   *   and never empties another result (copy with `Buffer.from` to own one alone)
   */
  readAt(offset: number, length: number): Buffer {
    const [o, l] = this.#range(offset, length)
    fitsBuffer(l)
    if (readChannel.hasSubscribers) return readChannel.traceSync(readFresh, this.#trace('readAt', l), undefined, this.#id, o, l)
    const out = resultBuffer(l)
    // Inline (no closure per call): readAt is the hot path.
    try {
      byId.readInto(this.#id, o, out)
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
    const native = this.#native
    const [o, l] = this.#range(offset, length)
    fitsBuffer(l)
    const signal = signalOption(knownOptions<ReadOptions>(opts, READ_OPTIONS).signal)
    const run = () => withSignal(signal, (s) => native.readAtAsync(o, l, zeroCopyAllowed(), s))
    return readChannel.hasSubscribers ? readChannel.tracePromise(run, this.#trace('readAtAsync', l)) : run()
  }

  /**
   * Reads several ranges at once (one vectored read for the file backend).
   * Ranges may overlap, repeat or be empty.
   * @param ranges - `[offset, length]` pairs
   * @returns one Buffer per range, in request order
   */
  readAtMany(ranges: Ranges): Buffer[] {
    const flat = this.#ranges(ranges)
    if (readChannel.hasSubscribers) {
      return readChannel.traceSync(readMany, this.#trace('readAtMany', sumLengths(flat)), undefined, this.#id, flat)
    }
    return readMany(this.#id, flat)
  }

  /** `readAtMany` on the libuv thread pool. */
  async readAtManyAsync(ranges: Ranges, opts?: ReadOptions): Promise<Buffer[]> {
    const native = this.#native
    const flat = this.#ranges(ranges)
    for (let i = 1; i < flat.length; i += 2) fitsBuffer(flat[i]!, `ranges[${(i - 1) / 2}][1]`)
    const signal = signalOption(knownOptions<ReadOptions>(opts, READ_OPTIONS).signal)
    const run = () => withSignal(signal, (s) => readManyInTurns(native, flat, s))
    return readChannel.hasSubscribers ? readChannel.tracePromise(run, this.#trace('readAtManyAsync', sumLengths(flat))) : run()
  }

  /** The context of a traced call on this handle. */
  #trace(method: string, byteLength: number): TraceContext {
    return { method, backend: this.backend, byteLength }
  }

  #ranges(value: unknown): Float64Array {
    return ranges(value, this.byteLength, (o, l) => rangeOutside(o, l, this.byteLength))
  }

  /**
   * Fills `target` entirely with the bytes at `offset`; allocates nothing.
   * @param target - any ArrayBufferView; its `byteOffset`/`byteLength` are honoured
   */
  readInto(offset: number, target_: ArrayBufferView): void {
    const t = target(target_)
    const [o] = this.#range(offset, t.byteLength)
    if (readChannel.hasSubscribers) {
      readChannel.traceSync(readIntoTarget, this.#trace('readInto', t.byteLength), undefined, this.#id, o, t)
      return
    }
    try {
      byId.readInto(this.#id, o, t as Buffer)
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
    const native = this.#native
    const [o, l] = this.#span(offset, length)
    if (o + l > this.byteLength) throw rangeOutside(o, l, this.byteLength)
    fitsBuffer(l)
    const run = () => call(() => native.view(o, l, zeroCopyAllowed()))
    return readChannel.hasSubscribers ? readChannel.traceSync(run, this.#trace('view', l)) : run()
  }

  /**
   * Returns all bytes and disposes the handle; zero-copy where possible (a swap
   * handle hands over its own pages, in O(1)). On failure it throws and the
   * handle stays live and readable.
   */
  take(): Buffer {
    fitsBuffer(this.byteLength, 'byteLength')
    return takeChannel.hasSubscribers ? takeChannel.traceSync(this.#take, this.#trace('take', this.byteLength), this) : this.#take()
  }

  #take(): Buffer {
    const native = this.#native
    return call(() => native.take(zeroCopyAllowed()))
  }

  /**
   * `take` with the read on the libuv pool (a zero-copy swap take needs none and
   * completes at once). While it runs the handle is unusable (`disposed` is true);
   * if it fails or is aborted, the handle is live and readable again.
   * @param opts - `signal` aborts the take (the handle stays live)
   */
  async takeAsync(opts?: ReadOptions): Promise<Buffer> {
    fitsBuffer(this.byteLength, 'byteLength')
    const signal = signalOption(knownOptions<ReadOptions>(opts, READ_OPTIONS).signal)
    if (signal?.aborted) throw abortError(signal.reason)
    const run = () => this.#takeAsync(signal)
    return takeChannel.hasSubscribers ? takeChannel.tracePromise(run, this.#trace('takeAsync', this.byteLength)) : run()
  }

  async #takeAsync(signal: AbortSignal | undefined): Promise<Buffer> {
    const native = this.#native
    const zeroCopy = zeroCopyAllowed()
    if (zeroCopy && native.takesInPlace) return this.#take()
    let out: Buffer
    try {
      out = await withSignal(signal, (s) => native.takeAsync(zeroCopy, s))
    } catch (err) {
      native.endTake(false)
      throw err
    }
    native.endTake(true)
    return out
  }

  /**
   * Hints that a range will be read soon. Never throws for a live handle with
   * valid numbers; a range past the end is clamped.
   */
  prefetch(offset?: number, length?: number): void {
    const native = this.#native
    const [o, l] = this.#span(offset, length)
    call(() => native.prefetch(o, l))
  }

  /**
   * A token for this handle's storage, to post to a worker_thread of this process
   * and `open` there. Each opened `Handle` has its own views, `take` and
   * `dispose`; the storage is freed when every handle over it is disposed (or
   * collected). While another handle shares the storage, `take()` returns a copy.
   *
   * Note: the token is weak: keep this handle until the worker has opened it.
   *
   * @returns a structured-cloneable `SharedHandle`
   * @throws `ERR_COLDPAGE_DISPOSED` once the handle is disposed or taken
   * @example
   * ```ts
   * const worker = new Worker('./reader.js')
   * worker.postMessage(handle.share()) // there: using h = open(message)
   * ```
   */
  share(): SharedHandle {
    const native = this.#native
    const token = call(() => native.share())
    return { process: token.process, id: token.id }
  }

  /**
   * Frees the memory or scratch space now and detaches every view. Idempotent.
   * Large storage (1 MiB or more) is given back on a background thread, so this
   * returns at once; `stats()` and a pageout that needs the room wait for it.
   */
  dispose(): void {
    this.#native.dispose()
  }

  /**
   * Ends the handle like `dispose()`, but the views made so far stay valid: each
   * keeps the bytes (and the scratch space) until it is collected.
   * @internal For the store, whose values are the caller's.
   */
  release(): void {
    this.#native.release()
  }

  /** Same as `dispose()`, so that `using h = pageout(...)` works. */
  [Symbol.dispose](): void {
    this.dispose()
  }

  /** @internal */
  get [Symbol.toStringTag](): string {
    return 'Handle'
  }

  /** What `util.inspect` (and `console.log`) shows: `Handle { byteLength, backend, disposed }`. */
  [inspect.custom](depth: unknown, opts: unknown): string {
    return inspectState('Handle', { byteLength: this.byteLength, backend: this.backend, disposed: this.disposed }, depth, opts)
  }
}

/** `readAtMany` into results packed as `packResults` lays them out. */
function readMany(id: number, flat: Float64Array): Buffer[] {
  const parts: Buffer[] = new Array(flat.length / 2)
  const targets = packResults(flat, parts)
  try {
    byId.readAtManyInto(id, flat, targets)
  } catch (err) {
    throw fromNative(err)
  }
  return parts
}

/** `readInto`'s read: the traced path. */
function readIntoTarget(id: number, offset: number, t: Uint8Array): void {
  try {
    byId.readInto(id, offset, t as Buffer)
  } catch (err) {
    throw fromNative(err)
  }
}

/** The sum of the lengths of flat `[offset, length, ...]` ranges. */
function sumLengths(flat: Float64Array): number {
  let sum = 0
  for (let i = 1; i < flat.length; i += 2) sum += flat[i]!
  return sum
}

/**
 * A new `Handle` over the storage that `shared` names (from `handle.share()` in
 * any thread of this process). It reads the same bytes and has its own views,
 * `take` and `dispose`: disposing it, or any other handle over the storage, never
 * breaks the others. The storage is freed when the last one is disposed (or
 * collected).
 *
 * @param shared - a token from `handle.share()`
 * @returns a live handle; dispose it (or `using`) when done
 * @throws `ERR_COLDPAGE_DISPOSED` when every handle over the storage is gone
 *   (tokens are weak); `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` for
 *   something that is not a token of this process
 * @example
 * ```ts
 * import { parentPort } from 'node:worker_threads'
 * import { open } from 'coldpage'
 * parentPort!.on('message', (shared) => {
 *   using h = open(shared)
 *   parentPort!.postMessage(h.readAt(0, 16))
 * })
 * ```
 */
export function open(shared: SharedHandle): Handle {
  if (typeof shared !== 'object' || shared === null) {
    throw invalidArgType('shared', 'a SharedHandle from handle.share()', shared)
  }
  const { process: nonce, id } = shared as { process: unknown; id: unknown }
  if (typeof nonce !== 'string') throw invalidArgType('shared.process', 'a string', nonce)
  if (typeof id !== 'number') throw invalidArgType('shared.id', 'a number', id)
  if (!Number.isSafeInteger(id) || id <= 0) throw invalidArgValue('shared.id', 'a handle id from handle.share()', id)
  return Handle.wrap(call(() => native_.open({ process: nonce, id })))
}
