// The handle, share, arrow and store suites again in Electron's mode: no external buffers, every view and
// take is a copy (COLDPAGE_NO_EXTERNAL_BUFFERS=1).
import base from './ava.config.mjs'

export default {
  ...base,
  files: ['__test__/handle.spec.ts', '__test__/async.spec.ts', '__test__/share.spec.ts', '__test__/arrow*.spec.ts', '__test__/store.spec.ts', '__test__/store-async.spec.ts'],
  environmentVariables: { COLDPAGE_NO_EXTERNAL_BUFFERS: '1' },
}
