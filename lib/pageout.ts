/**
 * `pageout` and `pageoutAsync`: bytes in, a handle out. The entry points of
 * `coldpage`, `coldpage/arrow` and the store all page out through here.
 */
import { type TraceContext, pageoutChannel } from './channels.js'
import { abortError, fromNative } from './errors.js'
import { Handle } from './handle.js'
import native, { type NativeWriter } from './native.js'
import { knownOptions } from './options.js'
import { type BackendName, type Data, backendOption, chunks, signalOption } from './validate.js'

/** Options of `pageout`. */
export interface PageoutOptions {
  /** Where to put these bytes, overriding the global selector for this handle. */
  backend?: BackendName
}

const PAGEOUT_OPTIONS = ['backend'] as const

/** Whether this thread has asked the pager about swap that pages out nothing (it warns once per process). */
let swapChecked = false

/**
 * The first swap handle of the thread: a process warning (`COLDPAGE_SWAP_INEFFECTIVE`,
 * once per process) when swap pages out nothing here (no active swap).
 */
function checkSwap(handle: Handle): Handle {
  if (handle.backend === 'swap' && !swapChecked) {
    swapChecked = true
    const why = native.claimSwapWarning()
    if (why !== null && why !== undefined) process.emitWarning(why, { code: 'COLDPAGE_SWAP_INEFFECTIVE' })
  }
  return handle
}

/** The context of a traced pageout: `backend` becomes the handle's at `end`. */
function traceContext(method: string, backend: BackendName | undefined, parts: Uint8Array[]): TraceContext {
  let byteLength = 0
  for (const p of parts) byteLength += p.byteLength
  return { method, backend: backend ?? null, byteLength }
}

function pageoutNow(parts: Uint8Array[], backend: BackendName | undefined, context?: TraceContext): Handle {
  let handle: Handle
  try {
    handle = Handle.wrap(native.pageout(parts as Buffer[], backend))
  } catch (err) {
    throw fromNative(err)
  }
  if (context !== undefined) context.backend = handle.backend
  return checkSwap(handle)
}

/** Options of `pageoutAsync`. */
export interface PageoutAsyncOptions extends PageoutOptions {
  /** Aborts the pageout: it rejects with an `AbortError` and stores nothing. */
  signal?: AbortSignal
}

const PAGEOUT_ASYNC_OPTIONS = ['backend', 'signal'] as const

/**
 * Slices in flight on the thread pool, across every `pageoutAsync` of this
 * thread: as many as the binding keeps staging buffers for, so that after the
 * first pageout every copy lands in memory that is already faulted in (and the
 * staging memory stays bounded however many pageouts run at once).
 */
const SLICES_IN_FLIGHT = 4
let slotsFree = SLICES_IN_FLIGHT
const slotWaiters: (() => void)[] = []

/** Waits for a slot among the slices in flight. */
function acquireSlot(): Promise<void> | undefined {
  if (slotsFree > 0) {
    slotsFree--
    return undefined
  }
  return new Promise((resolve) => slotWaiters.push(resolve))
}

/** Gives a slot back, to the oldest waiter first. */
function releaseSlot(): void {
  const next = slotWaiters.shift()
  if (next !== undefined) next()
  else slotsFree++
}

async function pageoutLater(
  parts: Uint8Array[],
  backend: BackendName | undefined,
  signal: AbortSignal | undefined,
  context?: TraceContext,
): Promise<Handle> {
  const lengths = parts.map((p) => p.byteLength)
  const total = lengths.reduce((a, b) => a + b, 0)
  if (signal?.aborted) throw abortError(signal.reason)
  let writer: NativeWriter
  try {
    writer = await native.pageoutBegin(total, backend, signal)
  } catch (err) {
    throw isAbort(err) && signal !== undefined ? abortError(signal.reason) : fromNative(err)
  }
  const inFlight = new Set<Promise<void>>()
  let failure: { error: unknown } | undefined
  try {
    let part = 0
    let within = 0
    for (let offset = 0; offset < total && failure === undefined; offset += SLICE) {
      const wait = acquireSlot()
      if (wait !== undefined) await wait
      if (signal?.aborted || failure !== undefined) {
        releaseSlot()
        if (failure !== undefined) break
        throw abortError(signal!.reason)
      }
      // This slice's pieces of the input, each checked to be still there.
      const want = Math.min(SLICE, total - offset)
      const pieces: Uint8Array[] = []
      for (let got = 0; got < want; ) {
        const p = parts[part]!
        if (p.byteLength !== lengths[part]) {
          releaseSlot()
          throw detachedInput(part)
        }
        const take = Math.min(want - got, p.byteLength - within)
        if (take > 0) pieces.push(p.subarray(within, within + take))
        got += take
        within += take
        if (within === p.byteLength) {
          part++
          within = 0
        }
      }
      let write: Promise<void>
      try {
        write = writer.write(offset, pieces as Buffer[], signal)
      } catch (err) {
        releaseSlot()
        throw fromNative(err)
      }
      const tracked: Promise<void> = write.then(
        () => {
          inFlight.delete(tracked)
          releaseSlot()
        },
        (error: unknown) => {
          inFlight.delete(tracked)
          releaseSlot()
          failure ??= { error }
        },
      )
      inFlight.add(tracked)
      // One slice per turn: timers and I/O run between two copies.
      await nextTurn()
    }
    await Promise.all(inFlight)
    if (failure !== undefined) throw failure.error
    if (signal?.aborted) throw abortError(signal.reason)
    let handle: Handle
    try {
      handle = Handle.wrap(await writer.finish())
    } catch (err) {
      throw fromNative(err)
    }
    if (context !== undefined) context.backend = handle.backend
    return checkSwap(handle)
  } catch (err) {
    writer.abort()
    // The storage goes once the slices in flight are written: wait for them, so
    // that nothing of this pageout is left when the promise rejects.
    await Promise.all(inFlight)
    throw isAbort(err) && signal !== undefined ? abortError(signal.reason) : fromNative(err)
  }
}

/**
 * Copies `data` out of resident memory: into memory the kernel reclaims to swap
 * first (`swap`) or into scratch space on disk (`file`). The caller's buffers
 * are never modified, detached or retained.
 *
 * @param data - an ArrayBufferView, an ArrayBuffer, or an array of them (concatenated in order)
 * @param opts - `backend` overrides the global selector
 * @returns a handle; dispose it (or `using`) when done
 * @throws `ERR_COLDPAGE_NO_SPACE` when the quota or the disk is full, `ERR_COLDPAGE_UNSUPPORTED`
 *   for swap off Linux, `ERR_INVALID_ARG_VALUE` for an unknown option
 * @example
 * ```ts
 * import { pageout } from 'coldpage'
 * using h = pageout([header, body])
 * const first = h.readAt(0, 4096)
 * ```
 */
export function pageout(data: Data | readonly Data[], opts?: PageoutOptions): Handle {
  const parts = chunks(data)
  const backend = backendOption(knownOptions<PageoutOptions>(opts, PAGEOUT_OPTIONS).backend)
  if (pageoutChannel.hasSubscribers) {
    const context = traceContext('pageout', backend, parts)
    return pageoutChannel.traceSync(pageoutNow, context, undefined, parts, backend, context)
  }
  return pageoutNow(parts, backend)
}

/**
 * `pageout` without holding the JS thread: the input is read a slice at a time
 * (a few MiB, copied into a recycled staging buffer, one slice per turn of the
 * event loop) and each slice is written on the libuv thread pool, so timers and
 * I/O keep running whatever the size.
 *
 * Note: until the promise settles, do not change the input (a change may or may
 * not be stored, as with `fs.write`). An input detached or transferred before it
 * was read rejects with `ERR_INVALID_STATE` and stores nothing. An abort rejects
 * with an `AbortError` and leaves no handle and no scratch bytes.
 *
 * @param data - an ArrayBufferView, an ArrayBuffer, or an array of them (concatenated in order)
 * @param opts - `backend` overrides the global selector; `signal` aborts
 * @returns a handle; dispose it (or `using`) when done
 * @example
 * ```ts
 * import { pageoutAsync } from 'coldpage'
 * using h = await pageoutAsync(bigBuffer, { signal: AbortSignal.timeout(30_000) })
 * ```
 */
export async function pageoutAsync(data: Data | readonly Data[], opts?: PageoutAsyncOptions): Promise<Handle> {
  const parts = chunks(data)
  const o = knownOptions<PageoutAsyncOptions>(opts, PAGEOUT_ASYNC_OPTIONS)
  const backend = backendOption(o.backend)
  const signal = signalOption(o.signal)
  if (pageoutChannel.hasSubscribers) {
    const context = traceContext('pageoutAsync', backend, parts)
    return pageoutChannel.tracePromise(pageoutLater, context, undefined, parts, backend, signal, context)
  }
  return pageoutLater(parts, backend, signal)
}

const SLICE: number = native.PAGEOUT_SLICE_BYTES

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError'
}

/** `ERR_INVALID_STATE` (Node's code for an object in the wrong state): an input gone before it was read. */
function detachedInput(index: number): Error {
  const err = new TypeError(
    `pageoutAsync: data chunk ${index} was detached or transferred before it was read; nothing was stored`,
  )
  Object.defineProperty(err, 'code', { value: 'ERR_INVALID_STATE', enumerable: true, writable: true, configurable: true })
  return err
}
