// The async calls' contract (SPEC "Async never holds the JS thread"): pageoutAsync
// reads its input a slice at a time across turns, async results are the caller's
// own Buffers in both buffer modes, and every call takes an AbortSignal that leaves
// nothing behind. ava.copy-mode.config.mjs runs this file again in Electron's mode
// (COLDPAGE_NO_EXTERNAL_BUFFERS=1), where results are filled on the thread pool.
import test from 'ava'
import { pageout, pageoutAsync, stats } from 'coldpage'

import { BACKENDS, bytes, rejectsCode } from './helpers.js'

const MiB = 1 << 20

/** What a pageout leaves behind when it fails: live handles and scratch bytes. */
function footprint() {
  const s = stats()
  return { handles: s.swap.handles + s.file.handles, bytes: s.swap.bytes + s.file.bytes, scratch: s.scratchBytesAllocated }
}

async function rejectsAbort(t: import('ava').ExecutionContext, p: Promise<unknown>): Promise<void> {
  const err = (await t.throwsAsync(p, { any: true })) as Error & { code?: string }
  t.is(err?.name, 'AbortError', String(err))
  t.is(err?.code, 'ABORT_ERR', String(err))
}

for (const backend of BACKENDS) {
  test.serial(`${backend}: pageoutAsync stores every byte of inputs that cross slice boundaries`, async (t) => {
    const data = bytes(13 * MiB + 4321, 7)
    // Chunk edges that fall inside slices and on them, plus empty chunks.
    const edges = [0, 1, 3 * MiB, 3 * MiB, 4 * MiB, 9 * MiB - 5, data.length]
    const chunks = edges.slice(1).map((end, i) => data.subarray(edges[i], end))
    using h = await pageoutAsync(chunks, { backend })
    t.is(h.byteLength, data.length)
    t.is(h.backend, backend)
    t.true(h.readAt(0, data.length).equals(data))
  })

  test.serial(`${backend}: 16 pageoutAsync at once each store their own bytes`, async (t) => {
    const inputs = Array.from({ length: 16 }, (_, i) => bytes(2 * MiB + i * 4099, i + 1))
    const handles = await Promise.all(inputs.map((d) => pageoutAsync(d, { backend })))
    handles.forEach((h, i) => t.true(h.readAt(0, h.byteLength).equals(inputs[i]!), `handle ${i}`))
    handles.forEach((h) => h.dispose())
  })

  test.serial(`${backend}: an input transferred before pageoutAsync read it rejects with ERR_INVALID_STATE and stores nothing`, async (t) => {
    const before = footprint()
    const now = Buffer.alloc(9 * MiB, 1)
    const pending = pageoutAsync(now, { backend })
    structuredClone(now.buffer, { transfer: [now.buffer] })
    await rejectsCode(t, pending, 'ERR_INVALID_STATE')
    t.deepEqual(footprint(), before)

    // Transferred after some slices were read: the same, and the slices written are given back.
    const later = Buffer.alloc(64 * MiB, 2)
    const pending2 = pageoutAsync([Buffer.alloc(8 * MiB, 3), later], { backend })
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r))
    structuredClone(later.buffer, { transfer: [later.buffer] })
    await rejectsCode(t, pending2, 'ERR_INVALID_STATE')
    t.deepEqual(footprint(), before)
  })

  test.serial(`${backend}: an aborted pageoutAsync rejects with AbortError and leaves no handle and no scratch bytes`, async (t) => {
    const before = footprint()
    const data = bytes(32 * MiB, 3)
    await rejectsAbort(t, pageoutAsync(data, { backend, signal: AbortSignal.abort() }))
    t.deepEqual(footprint(), before)
    // Aborted while it runs: 8 slices take at least 8 turns.
    const ac = new AbortController()
    const pending = pageoutAsync(data, { backend, signal: ac.signal })
    setImmediate(() => ac.abort())
    await rejectsAbort(t, pending)
    t.deepEqual(footprint(), before)
    // The pager keeps working.
    using h = await pageoutAsync(data, { backend })
    t.true(h.readAt(0, data.length).equals(data))
  })

  test(`${backend}: async results are the caller's own: transferring one leaves the others whole`, async (t) => {
    const data = bytes(3 * MiB + 17, 5)
    using h = pageout(data, { backend })
    const one = await h.readAtAsync(0, 8)
    const whole = await h.readAtAsync(0, data.length)
    const many = await h.readAtManyAsync([
      [0, 8],
      [5, 100],
      [MiB, 2 * MiB],
    ])
    const small = await h.readAtAsync(100, 16)
    // (An external Buffer may refuse to move and stay as it is: either is fine here.)
    structuredClone(one.buffer, { transfer: [one.buffer as ArrayBuffer] })
    structuredClone(many[0]!.buffer, { transfer: [many[0]!.buffer as ArrayBuffer] })
    t.true(whole.equals(data))
    t.true(many[1]!.equals(data.subarray(5, 105)))
    t.true(many[2]!.equals(data.subarray(MiB, 3 * MiB)))
    t.true(small.equals(data.subarray(100, 116)))
  })

  test.serial(`${backend}: pageoutAsync counts in stats() as pageout does`, async (t) => {
    const data = bytes(9 * MiB + 5, 3)
    const before = stats()
    using h = await pageoutAsync(data, { backend })
    const after = stats()
    t.is(after.pageouts - before.pageouts, 1)
    t.is(after.bytesPagedOut - before.bytesPagedOut, data.length)
    t.is(after.bytesWritten - before.bytesWritten >= (backend === 'file' ? data.length : 0), true)
    t.true(h.readAt(0, data.length).equals(data))
  })

  test(`${backend}: readAtAsync, readAtManyAsync and takeAsync take a signal`, async (t) => {
    const data = bytes(MiB, 9)
    const h = pageout(data, { backend })
    const signal = AbortSignal.abort()
    await rejectsAbort(t, h.readAtAsync(0, 10, { signal }))
    await rejectsAbort(t, h.readAtManyAsync([[0, 10]], { signal }))
    await rejectsAbort(t, h.takeAsync({ signal }))
    // Nothing was taken: the handle is live and whole.
    t.false(h.disposed)
    t.true((await h.takeAsync()).equals(data))
    t.true(h.disposed)
  })

  test(`${backend}: many concurrent async reads of one handle are all right`, async (t) => {
    const data = bytes(4 * MiB, 11)
    using h = pageout(data, { backend })
    const offsets = Array.from({ length: 200 }, (_, i) => (i * 20_011) % (data.length - 4096))
    const results = await Promise.all(offsets.map((o) => h.readAtAsync(o, 4096)))
    results.forEach((r, i) => t.true(r.equals(data.subarray(offsets[i], offsets[i]! + 4096)), `read ${i}`))
    const parts = await h.readAtManyAsync(offsets.map((o) => [o, 4096] as const))
    parts.forEach((r, i) => t.true(r.equals(data.subarray(offsets[i], offsets[i]! + 4096)), `range ${i}`))
  })

  test(`${backend}: readAtManyAsync of more ranges and bytes than one turn reads returns each range in order, each its own`, async (t) => {
    // More than a turn's share both ways: 9,000 small ranges, then 40 of 1 MiB
    // (more bytes than a turn asks for), with repeats and empty ranges between.
    const data = bytes(8 * MiB, 13)
    using h = pageout(data, { backend })
    const ranges: [number, number][] = []
    for (let i = 0; i < 9000; i++) ranges.push([(i * 7919) % (data.length - 100), i % 101])
    for (let i = 0; i < 40; i++) ranges.push([(i % 7) * MiB, MiB], [i, 0])
    const parts = await h.readAtManyAsync(ranges)
    t.is(parts.length, ranges.length)
    const wrong = ranges.filter(([o, l], i) => !parts[i]!.equals(data.subarray(o, o + l)))
    t.deepEqual(wrong, [], 'every range has its own bytes, in request order')
    // Transferring one result empties no other.
    const big = parts.findIndex((p) => p.length === MiB)
    const other = parts.findLastIndex((p) => p.length === MiB)
    structuredClone(parts[big]!.buffer, { transfer: [parts[big]!.buffer as ArrayBuffer] })
    t.true(parts[other]!.equals(data.subarray(ranges[other]![0], ranges[other]![0] + MiB)))
  })

  test(`${backend}: readAtManyAsync aborted between turns rejects and leaves the handle whole`, async (t) => {
    const data = bytes(4 * MiB, 17)
    using h = pageout(data, { backend })
    const ranges = Array.from({ length: 64 }, (_, i) => [(i % 4) * MiB, MiB] as const)
    const ac = new AbortController()
    const read = h.readAtManyAsync(ranges, { signal: ac.signal })
    setImmediate(() => ac.abort())
    await rejectsAbort(t, read)
    t.false(h.disposed)
    t.true((await h.readAtManyAsync([[0, data.length]]))[0]!.equals(data))
  })
}

test('pageoutAsync checks its options', async (t) => {
  await rejectsCode(t, pageoutAsync(Buffer.alloc(1), { signal: 'no' as unknown as AbortSignal }), 'ERR_INVALID_ARG_TYPE')
  await rejectsCode(t, pageoutAsync(Buffer.alloc(1), { backend: 'disk' as 'file' }), 'ERR_INVALID_ARG_VALUE')
  using empty = await pageoutAsync([])
  t.is(empty.byteLength, 0)
})
