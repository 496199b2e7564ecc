/**
 * `pageout` and `pageoutAsync`: bytes in, a handle out. The entry points of
 * `coldpage`, `coldpage/arrow` and the store all page out through here.
 */
import { type TraceContext, pageoutChannel } from './channels.js'
import { fromNative } from './errors.js'
import { Handle } from './handle.js'
import native from './native.js'
import { knownOptions } from './options.js'
import { type BackendName, type Data, backendOption, chunks } from './validate.js'

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

async function pageoutLater(parts: Uint8Array[], backend: BackendName | undefined, context?: TraceContext): Promise<Handle> {
  let handle: Handle
  try {
    handle = Handle.wrap(await native.pageoutAsync(parts as Buffer[], backend))
  } catch (err) {
    throw fromNative(err)
  }
  if (context !== undefined) context.backend = handle.backend
  return checkSwap(handle)
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
 * `pageout` with the write to the file backend on the libuv thread pool.
 *
 * Note: the input is copied before this returns (into the swap region, or into a
 * staging buffer that the pool writes to disk), so the input buffers may be
 * changed, transferred or detached at once.
 */
export async function pageoutAsync(data: Data | readonly Data[], opts?: PageoutOptions): Promise<Handle> {
  const parts = chunks(data)
  const backend = backendOption(knownOptions<PageoutOptions>(opts, PAGEOUT_OPTIONS).backend)
  if (pageoutChannel.hasSubscribers) {
    const context = traceContext('pageoutAsync', backend, parts)
    return pageoutChannel.tracePromise(pageoutLater, context, undefined, parts, backend, context)
  }
  return pageoutLater(parts, backend)
}
