/**
 * `pageout` and `pageoutAsync`: bytes in, a handle out. The entry points of
 * `coldpage`, `coldpage/arrow` and the store all page out through here.
 */
import { fromNative } from './errors.js'
import { Handle } from './handle.js'
import native from './native.js'
import { type BackendName, type Data, backendOption, chunks, options } from './validate.js'

/** Options of `pageout`. */
export interface PageoutOptions {
  /** Where to put these bytes, overriding the global selector for this handle. */
  backend?: BackendName
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
 *   for swap off Linux
 * @example
 * ```ts
 * import { pageout } from 'coldpage'
 * using h = pageout([header, body])
 * const first = h.readAt(0, 4096)
 * ```
 */
export function pageout(data: Data | readonly Data[], opts?: PageoutOptions): Handle {
  const parts = chunks(data)
  const backend = backendOption(options<PageoutOptions>(opts).backend)
  try {
    return Handle.wrap(native.pageout(parts as Buffer[], backend))
  } catch (err) {
    throw fromNative(err)
  }
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
  const backend = backendOption(options<PageoutOptions>(opts).backend)
  try {
    return Handle.wrap(await native.pageoutAsync(parts as Buffer[], backend))
  } catch (err) {
    throw fromNative(err)
  }
}

