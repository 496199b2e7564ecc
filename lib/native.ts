/**
 * The native binding, loaded once through the loader that `napi build`
 * generates at the package root (it picks the prebuilt binary for this
 * platform), and whether its Buffers can be zero-copy here.
 */
import native = require('../index.js')

export type { NativeConfig, NativeDoctorReport, NativeHandle, NativeStats } from '../index.js'

export default native

let zeroCopy: boolean | undefined

/**
 * Whether `view`/`take` can hand out pager memory without copying. Decided once:
 * `COLDPAGE_NO_EXTERNAL_BUFFERS=1` forces copies; otherwise the runtime is asked
 * whether it accepts external buffers (Electron >= 21 does not).
 */
export function zeroCopyAllowed(): boolean {
  if (zeroCopy === undefined) {
    const forced = process.env.COLDPAGE_NO_EXTERNAL_BUFFERS
    zeroCopy = forced !== '1' && native.externalBuffersAllowed()
  }
  return zeroCopy
}
