// Error shapes (issue 22 item 9): bad input is refused with a `code`, and errors raised
// while an async call reads its arguments get their class. Also seams (item 11): each
// entry point loads the Symbol.dispose polyfill; the store asks what `auto` picks now.
import * as path from 'node:path'

import test from 'ava'
import * as arrow from 'apache-arrow'
import { ColdpageError, configure, createStore, getConfig, pageout } from 'coldpage'
import { pageoutTable } from 'coldpage/arrow'

import { runNode } from './fixtures/reliability.js'
import { ROOT, throwsCode } from './helpers.js'

test('a DataView over a detached buffer is refused with a code', (t) => {
  const buffer = new ArrayBuffer(16)
  const view = new DataView(buffer, 4, 8)
  structuredClone(buffer, { transfer: [buffer] })
  throwsCode(t, () => pageout(view), 'ERR_INVALID_ARG_VALUE')
  throwsCode(t, () => pageout([new Uint8Array(2), view]), 'ERR_INVALID_ARG_VALUE')
  const h = pageout(Buffer.alloc(8))
  throwsCode(t, () => h.readInto(0, view), 'ERR_INVALID_ARG_VALUE')
  h.dispose()
})

test('readAtMany of a huge sparse array is refused before anything is allocated', (t) => {
  const h = pageout(Buffer.alloc(8))
  throwsCode(t, () => h.readAtMany(new Array(2 ** 31)), 'ERR_INVALID_ARG_TYPE')
  // eslint-disable-next-line no-sparse-arrays
  throwsCode(t, () => h.readAtMany([[0, 1], , [0, 1]] as never), 'ERR_INVALID_ARG_TYPE')
  h.dispose()
})

test('sparse column and batch lists are refused with a code', (t) => {
  const th = pageoutTable(arrow.tableFromArrays({ a: Int32Array.of(1, 2, 3) }))
  // eslint-disable-next-line no-sparse-arrays
  throwsCode(t, () => th.read({ batches: [, 0] as number[] }), 'ERR_INVALID_ARG_TYPE')
  // eslint-disable-next-line no-sparse-arrays
  throwsCode(t, () => th.read({ columns: [, 'a'] as string[] }), 'ERR_INVALID_ARG_TYPE')
  th.dispose()
})

test('ERR_COLDPAGE_DISPOSED raised while an async call reads its arguments is a ColdpageError', async (t) => {
  const h = pageout(Buffer.alloc(64))
  const opts = {
    get signal(): AbortSignal {
      h.dispose()
      return undefined as unknown as AbortSignal // read once, as absent
    },
  }
  const err = await t.throwsAsync(h.readAtAsync(0, 8, opts))
  t.is((err as { code?: string }).code, 'ERR_COLDPAGE_DISPOSED')
  t.true(err instanceof ColdpageError, 'its class, not a plain Error')
  const h2 = pageout(Buffer.alloc(64))
  const opts2 = {
    get signal() {
      h2.dispose()
      return new AbortController().signal
    },
  }
  const err2 = await t.throwsAsync(h2.readAtManyAsync([[0, 8]], opts2))
  t.true(err2 instanceof ColdpageError && (err2 as ColdpageError).code === 'ERR_COLDPAGE_DISPOSED')
})

test('coldpage/arrow alone loads the Symbol.dispose polyfill before its classes', async (t) => {
  const r = await runNode(
    ['-e', "require('coldpage/arrow'); console.log(Object.keys(require.cache).some((k) => k.endsWith('polyfill.js')))"],
    { cwd: ROOT, timeoutMs: 30_000 },
  )
  t.is(r.stdout.trim(), 'true', r.stderr.slice(0, 400))
})

test.serial("the store asks the core what 'auto' picks now, never doctor() (a trial write)", (t) => {
  const native = require(path.join(ROOT, 'index.js')) as { doctor: () => unknown; nextBackend: () => string }
  const doctor = native.doctor
  const before = getConfig().backend
  native.doctor = () => {
    throw new Error('doctor() called')
  }
  try {
    configure({ backend: 'auto' })
    t.true(['swap', 'file'].includes(native.nextBackend()))
    const store = createStore({ residentBytes: 1 << 20 })
    t.notThrows(() => store.set('k', Buffer.alloc(4096, 1)))
    t.true((store.get('k') as Buffer).equals(Buffer.alloc(4096, 1)))
    store.dispose()
  } finally {
    native.doctor = doctor
    configure({ backend: before })
  }
  t.is((native.doctor() as { auto: { backend: string } }).auto.backend, native.nextBackend(), 'both say the same')
})
