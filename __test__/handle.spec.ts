// Every SPEC line of class Handle, on both backends. ava.copy-mode.config.mjs runs
// this same file again with COLDPAGE_NO_EXTERNAL_BUFFERS=1 (Electron's mode).
import test from 'ava'
import { Handle, pageout, pageoutAsync, stats, zeroCopySupported } from 'coldpage'

import { BACKENDS, bytes, rejectsCode, throwsCode } from './helpers.js'

const FORCED_COPY = process.env.COLDPAGE_NO_EXTERNAL_BUFFERS === '1'

test('zeroCopySupported reflects the runtime and COLDPAGE_NO_EXTERNAL_BUFFERS', (t) => {
  t.is(zeroCopySupported(), !FORCED_COPY)
})

for (const backend of BACKENDS) {
  const make = (data: Parameters<typeof pageout>[0] = bytes(100_000)) => pageout(data, { backend })

  test(`${backend}: pageout keeps the bytes, the length and the backend`, (t) => {
    const data = bytes(100_000)
    using h = make(data)
    t.is(h.byteLength, data.length)
    t.is(h.backend, backend)
    t.false(h.disposed)
    t.deepEqual(h.readAt(0, data.length), data)
  })

  test(`${backend}: every kind of input is accepted and honours byteOffset/byteLength`, (t) => {
    const ab = bytes(64).buffer.slice(0)
    const u8 = new Uint8Array(ab)
    const cases: [Parameters<typeof pageout>[0], Buffer][] = [
      [Buffer.from('abc'), Buffer.from('abc')],
      [new Uint8Array([1, 2, 3]).subarray(1), Buffer.from([2, 3])],
      [new DataView(ab, 8, 4), Buffer.from(u8.subarray(8, 12))],
      [new Float64Array(ab, 16, 2), Buffer.from(u8.subarray(16, 32))],
      [ab, Buffer.from(u8)],
      [new SharedArrayBuffer(3), Buffer.alloc(3)],
      [[Buffer.from('ab'), new Uint16Array([0x6463]), new ArrayBuffer(0), Buffer.from('e')], Buffer.from('abcde')],
      [[], Buffer.alloc(0)],
      [Buffer.alloc(0), Buffer.alloc(0)],
    ]
    for (const [input, expected] of cases) {
      using h = make(input)
      t.is(h.byteLength, expected.length)
      t.deepEqual(h.readAt(0, h.byteLength), expected)
    }
  })

  test(`${backend}: pageout copies: the caller's buffer is neither changed nor retained`, (t) => {
    const data = bytes(10_000)
    const copy = Buffer.from(data)
    using h = make(data)
    t.deepEqual(data, copy)
    data.fill(0)
    t.deepEqual(h.readAt(0, 10_000), copy)
  })

  test(`${backend}: readAt returns fresh copies of any range, including empty ones`, (t) => {
    const data = bytes(70_000, 3)
    using h = make(data)
    for (const [o, l] of [[0, 0], [0, 1], [4095, 2], [65_535, 4_465], [69_999, 1], [70_000, 0], [123, 45_678]] as const) {
      t.deepEqual(h.readAt(o, l), data.subarray(o, o + l))
    }
    const a = h.readAt(0, 10)
    a.fill(7)
    t.deepEqual(h.readAt(0, 10), data.subarray(0, 10))
  })

  test(`${backend}: out-of-range and malformed offsets throw ERR_OUT_OF_RANGE`, (t) => {
    using h = make(bytes(100))
    throwsCode(t, () => h.readAt(0, 101), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAt(101, 0), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAt(-1, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAt(0.5, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAt(2 ** 53, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAt(Number.NaN, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAt('0' as unknown as number, 1), 'ERR_INVALID_ARG_TYPE', TypeError)
    throwsCode(t, () => h.view(50, 51), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readAtMany([[99, 2]]), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(t, () => h.readInto(99, new Uint8Array(2)), 'ERR_OUT_OF_RANGE', RangeError)
    const err = t.throws(() => h.readAt(-1, 1))
    t.regex(err.message, /`offset`.*non-negative safe integer.*-1/)
  })

  test(`${backend}: readAtMany returns one Buffer per range in order (overlaps, repeats, empties)`, (t) => {
    const data = bytes(50_000, 5)
    using h = make(data)
    const ranges = [[10, 20], [0, 0], [15, 30], [10, 20], [49_990, 10], [50_000, 0], [0, 50_000]] as const
    const out = h.readAtMany(ranges)
    t.is(out.length, ranges.length)
    ranges.forEach(([o, l], i) => t.deepEqual(out[i], data.subarray(o, o + l)))
    t.deepEqual(h.readAtMany([]), [])
  })

  test(`${backend}: small results are independent copies even where they share a pool slab`, (t) => {
    const data = bytes(300_000, 4)
    using h = make(data)
    const a = h.readAt(10, 100)
    const b = h.readAt(4096, 4096)
    const many = h.readAtMany([[0, 16], [70_000, 5000], [100, 3], [0, 0], [200_000, 4096], [5, 40_000]])
    a.fill(0xff)
    b.fill(0xfe)
    for (const m of many) m.fill(0xfd)
    t.deepEqual(h.readAt(10, 100), data.subarray(10, 110), 'writes into results never reach the handle')
    const again = h.readAtMany([[0, 16], [70_000, 5000], [100, 3], [0, 0], [200_000, 4096], [5, 40_000]])
    t.deepEqual(again, [data.subarray(0, 16), data.subarray(70_000, 75_000), data.subarray(100, 103), Buffer.alloc(0), data.subarray(200_000, 204_096), data.subarray(5, 40_005)])
    // Mixed sizes: pooled and own results interleave in request order.
    const ranges: [number, number][] = []
    for (let i = 0; i < 300; i++) ranges.push([(i * 7919) % 290_000, i % 7 === 0 ? 9000 : (i * 13) % 4097])
    const got = h.readAtMany(ranges)
    t.true(got.every((g, i) => g.equals(data.subarray(ranges[i]![0], ranges[i]![0] + ranges[i]![1]))))
  })

  test(`${backend}: async reads match the sync ones`, async (t) => {
    const data = bytes(30_000, 9)
    using h = make(data)
    t.deepEqual(await h.readAtAsync(100, 5_000), data.subarray(100, 5_100))
    const many = await h.readAtManyAsync([[0, 10], [5, 10], [29_990, 10], [7, 0]])
    t.deepEqual(many, [data.subarray(0, 10), data.subarray(5, 15), data.subarray(29_990), Buffer.alloc(0)])
    await rejectsCode(t, h.readAtAsync(29_999, 2), 'ERR_OUT_OF_RANGE')
    await rejectsCode(t, h.readAtManyAsync([[0, 30_001]]), 'ERR_OUT_OF_RANGE')
  })

  test(`${backend}: readInto fills the target entirely and honours its byteOffset`, (t) => {
    const data = bytes(10_000, 11)
    using h = make(data)
    const backing = new ArrayBuffer(64)
    const target = new Uint8Array(backing, 8, 32)
    h.readInto(1_000, target)
    t.deepEqual(Buffer.from(target), data.subarray(1_000, 1_032))
    t.deepEqual(new Uint8Array(backing, 0, 8), new Uint8Array(8))
    const dv = new DataView(backing, 40, 8)
    h.readInto(0, dv)
    t.deepEqual(Buffer.from(backing, 40, 8), data.subarray(0, 8))
    h.readInto(10_000, new Uint8Array(0))
    throwsCode(t, () => h.readInto(0, [1, 2] as unknown as Uint8Array), 'ERR_INVALID_ARG_TYPE', TypeError)
  })

  test(`${backend}: view returns the bytes, defaults to the whole handle, and is detached by dispose`, (t) => {
    const data = bytes(20_000, 13)
    const h = make(data)
    const whole = h.view()
    const part = h.view(100, 50)
    const tail = h.view(19_990)
    const sub = whole.subarray(5, 10)
    t.deepEqual(whole, data)
    t.deepEqual(part, data.subarray(100, 150))
    t.deepEqual(tail, data.subarray(19_990))
    t.is(h.view(20_000).length, 0)
    h.dispose()
    // Zero-copy views are detached: length 0, never a dangling pointer. Copies keep
    // their bytes; swap views are always copies (see the view-isolation test).
    const zeroCopy = zeroCopySupported() && backend === 'file'
    for (const v of [whole, part, tail, sub]) {
      t.is(v.length === 0, zeroCopy)
    }
    if (zeroCopy) {
      t.is(whole.buffer.byteLength, 0)
      t.is(whole[0], undefined)
      t.throws(() => whole.fill(1), { instanceOf: TypeError })
    }
  })

  test(`${backend}: take returns everything, disposes the handle and detaches views`, (t) => {
    const data = bytes(40_000, 17)
    const h = make(data)
    const v = h.view(0, 10)
    const taken = h.take()
    t.deepEqual(taken, data)
    t.true(h.disposed)
    if (zeroCopySupported() && backend === 'file') t.is(v.length, 0)
    else t.deepEqual(v, data.subarray(0, 10), 'a copy keeps its bytes')
    // The taken Buffer is the caller's: writable, independent.
    taken.fill(1)
    t.is(taken[39_999], 1)
    throwsCode(t, () => h.take(), 'ERR_COLDPAGE_DISPOSED')
  })

  test(`${backend}: takeAsync returns everything and disposes the handle at once`, async (t) => {
    const data = bytes(40_000, 19)
    const h = make(data)
    const p = h.takeAsync()
    t.true(h.disposed)
    t.deepEqual(await p, data)
    await rejectsCode(t, h.takeAsync(), 'ERR_COLDPAGE_DISPOSED')
  })

  test(`${backend}: take while an async read is in flight still returns every byte`, async (t) => {
    const data = bytes(1 << 20, 21)
    const h = make(data)
    const reads = [h.readAtAsync(0, 1 << 20), h.readAtAsync(5, 10)]
    t.deepEqual(h.take(), data)
    const [a, b] = await Promise.all(reads)
    t.deepEqual(a, data)
    t.deepEqual(b, data.subarray(5, 15))
  })

  test(`${backend}: prefetch is a hint that never throws for a live handle`, (t) => {
    using h = make(bytes(10_000))
    t.notThrows(() => {
      h.prefetch()
      h.prefetch(0, 10)
      h.prefetch(5_000)
      h.prefetch(9_999, 1_000_000)
      h.prefetch(20_000, 5)
    })
  })

  test(`${backend}: every use after dispose throws ERR_COLDPAGE_DISPOSED; dispose is idempotent`, async (t) => {
    const h = make(bytes(100))
    h.dispose()
    h.dispose()
    h[Symbol.dispose]()
    t.true(h.disposed)
    t.is(h.byteLength, 100)
    t.is(h.backend, backend)
    for (const use of [
      () => h.readAt(0, 1),
      () => h.readAtMany([[0, 1]]),
      () => h.readInto(0, new Uint8Array(1)),
      () => h.view(),
      () => h.take(),
      () => h.prefetch(),
    ]) {
      throwsCode(t, use, 'ERR_COLDPAGE_DISPOSED', Error)
    }
    await rejectsCode(t, h.readAtAsync(0, 1), 'ERR_COLDPAGE_DISPOSED')
    await rejectsCode(t, h.readAtManyAsync([[0, 1]]), 'ERR_COLDPAGE_DISPOSED')
    await rejectsCode(t, h.takeAsync(), 'ERR_COLDPAGE_DISPOSED')
  })

  test(`${backend}: \`using\` disposes at the end of the block`, (t) => {
    let escaped: Handle | undefined
    {
      using h = make(bytes(10))
      escaped = h
      t.false(h.disposed)
    }
    t.true(escaped.disposed)
  })

  test(`${backend}: abort of an async read rejects with AbortError`, async (t) => {
    using h = make(bytes(1 << 20))
    const early = new AbortController()
    early.abort(new Error('stop'))
    const e1 = (await t.throwsAsync(h.readAtAsync(0, 10, { signal: early.signal }))) as Error & { code?: string }
    t.is(e1.name, 'AbortError')
    t.is(e1.code, 'ABORT_ERR')
    const late = new AbortController()
    const pending = Promise.all(
      Array.from({ length: 8 }, () => h.readAtManyAsync([[0, 1 << 20]], { signal: late.signal })),
    )
    late.abort()
    const e2 = (await t.throwsAsync(pending)) as Error & { code?: string }
    t.is(e2.code, 'ABORT_ERR')
    // A signal that never fires changes nothing; the handle still works.
    t.is((await h.readAtAsync(0, 10, { signal: new AbortController().signal })).length, 10)
  })

  test(`${backend}: pageoutAsync gives the same handle as pageout`, async (t) => {
    const data = bytes(100_000, 23)
    const u16 = new Uint16Array(data.buffer, data.byteOffset, 50)
    using h = await pageoutAsync([data, u16, new DataView(data.buffer, data.byteOffset, 3)], { backend })
    t.is(h.backend, backend)
    t.deepEqual(h.readAt(0, 100_000), data)
    t.deepEqual(h.readAt(100_000, 103), Buffer.concat([data.subarray(0, 100), data.subarray(0, 3)]))
  })

  test.serial(`${backend}: stats count live handles and bytes`, (t) => {
    const before = stats()[backend]
    const h = make(bytes(12_345))
    t.is(stats()[backend].handles, before.handles + 1)
    t.is(stats()[backend].bytes, before.bytes + 12_345)
    h.dispose()
    t.deepEqual(stats()[backend], before)
    t.notThrows(() => JSON.parse(JSON.stringify(stats())))
  })
}

test('writing into a view never crashes the process', (t) => {
  // JS can write into any Buffer; a view is documented read-only, but a write must
  // not be SIGSEGV (file views are mapped by the core).
  for (const backend of BACKENDS) {
    using h = pageout(bytes(10_000), { backend })
    const v = h.view(0, 100)
    v.fill(1)
    t.is(v[0], 1)
    if (backend === 'file') {
      // File views are private copy-on-write maps: a write never reaches the scratch file.
      t.deepEqual(h.readAt(0, 100), bytes(10_000).subarray(0, 100))
    }
  }
})

test('handles come from pageout(): new Handle() is ERR_ILLEGAL_CONSTRUCTOR', (t) => {
  const Ctor = Handle as unknown as new (...args: unknown[]) => unknown
  throwsCode(t, () => new Ctor(Symbol('x'), {}), 'ERR_ILLEGAL_CONSTRUCTOR', TypeError)
})

test('opts.backend is checked', (t) => {
  throwsCode(t, () => pageout(Buffer.alloc(1), { backend: 'tape' as 'file' }), 'ERR_INVALID_ARG_VALUE', TypeError)
  throwsCode(t, () => pageout(Buffer.alloc(1), { backend: 1 as unknown as 'file' }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => pageout('abc' as unknown as Buffer), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => pageout([Buffer.alloc(1), 'x'] as unknown as Buffer[]), 'ERR_INVALID_ARG_TYPE', TypeError)
})

if (process.platform !== 'linux') {
  test('swap is ERR_COLDPAGE_UNSUPPORTED off Linux', (t) => {
    throwsCode(t, () => pageout(Buffer.alloc(1), { backend: 'swap' }), 'ERR_COLDPAGE_UNSUPPORTED')
  })
}
