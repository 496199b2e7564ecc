/**
 * The native binding, loaded once through the loader that `napi build`
 * generates at the package root (it picks the prebuilt binary for this
 * platform), and whether its Buffers can be zero-copy here. When it does not
 * load, the error says why, with the fix (./load-error.ts).
 */
import type * as Native from '../index.js'

import { ColdpageError } from './errors.js'
import { explainLoadFailure } from './load-error.js'

export type { NativeDoctorReport, NativeHandle, NativeStats, NativeWriter } from '../index.js'

function load(): typeof Native {
  try {
    return require('../index.js') as typeof Native
  } catch (error) {
    throw explainLoadFailure(error)
  }
}

const native = load()

export default native

/**
 * The oldest Bun whose Node-API can run the binding. napi-rs 3 tags every class
 * instance with `napi_type_tag_object`, which Bun implements from 1.1.34 on:
 * before that every pageout fails ("Failed to tag object with class identity")
 * after the pager has stored the bytes, leaking them. There is no copying
 * fallback for that, so refuse at load with a clear error instead.
 */
const MIN_BUN = [1, 1, 34] as const

const bun = process.versions.bun
if (bun !== undefined) {
  const [major = 0, minor = 0, patch = 0] = bun.split(/[.-]/).map(Number)
  const order = major - MIN_BUN[0] || minor - MIN_BUN[1] || patch - MIN_BUN[2]
  if (order < 0) {
    throw new ColdpageError(
      'ERR_COLDPAGE_UNSUPPORTED',
      `coldpage needs bun >= ${MIN_BUN.join('.')} (napi_type_tag_object), this is bun ${bun}`,
    )
  }
}

let zeroCopy: { supported: boolean; reason: string | null } | undefined

/**
 * Decides zero-copy once per thread: `COLDPAGE_NO_EXTERNAL_BUFFERS=1` forces
 * copies; otherwise the binding probes the runtime with a throwaway external
 * buffer (created, checked to borrow rather than copy, and detached, as a
 * view's lease needs). Electron >= 21 refuses external buffers, and another
 * Node-API implementation (Bun's) might lack detaching: either way coldpage
 * degrades to copies instead of failing.
 */
function decide(): { supported: boolean; reason: string | null } {
  if (zeroCopy === undefined) {
    if (process.env.COLDPAGE_NO_EXTERNAL_BUFFERS === '1') {
      zeroCopy = { supported: false, reason: 'COLDPAGE_NO_EXTERNAL_BUFFERS=1 forces copies' }
    } else {
      const probe = native.zeroCopyProbe()
      zeroCopy = { supported: probe.supported, reason: probe.supported ? null : (probe.reason ?? 'unknown') }
    }
  }
  return zeroCopy
}

/** Whether `view`/`take` can hand out pager memory without copying. */
export function zeroCopyAllowed(): boolean {
  return decide().supported
}

/** Why `view`/`take` copy here, or null when they can be zero-copy. */
export function zeroCopyReason(): string | null {
  return decide().reason
}
