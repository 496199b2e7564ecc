// Finalizers are the safety net: a handle (or view) dropped without dispose is
// freed by GC. Run with --expose-gc (see ava.config.mjs).
import test from 'ava'
import { type BackendName, pageout, stats } from 'coldpage'

import { BACKENDS, bytes, collectUntil } from './helpers.js'

const live = () => {
  const s = stats()
  return s.swap.handles + s.file.handles
}

/** Pages out 1 MiB and drops the handle. (WeakRefs are not used: under ava's
 * runner their targets stay alive, while plain references are collected.) */
function forgotten(backend: BackendName): void {
  pageout(bytes(1 << 20), { backend })
}

for (const backend of BACKENDS) {
  test.serial(`${backend}: a handle dropped without dispose is freed by GC`, async (t) => {
    const before = live()
    forgotten(backend)
    t.is(live(), before + 1)
    t.true(await collectUntil(() => live() === before), 'handle collected, stats back')
    if (backend === 'file') t.true(await collectUntil(() => stats().scratchBytesAllocated === 0))
  })

  test.serial(`${backend}: a view outlives its collected handle with valid bytes`, async (t) => {
    const data = bytes(200_000, 7)
    let view: Buffer | undefined
    ;(() => {
      const h = pageout(data, { backend })
      view = h.view(1_000, 50_000)
    })()
    await collectUntil(() => false, 5)
    t.deepEqual(view, data.subarray(1_000, 51_000))
    view = undefined
    t.true(await collectUntil(() => live() === 0 && stats().scratchBytesAllocated === 0))
  })

  test.serial(`${backend}: views dropped before dispose leave nothing behind`, async (t) => {
    const h = pageout(bytes(100_000), { backend })
    for (let i = 0; i < 100; i++) h.view(i * 10, 1_000)
    await collectUntil(() => false, 3)
    h.dispose()
    t.true(await collectUntil(() => live() === 0 && stats().scratchBytesAllocated === 0))
  })
}
