// The runtime-neutral smoke-and-contract suite of `npm run test:runtimes`.
//
// Plain JavaScript with node:assert and no test framework, so that it runs
// unchanged under every runtime users ship (Node 20-26, Bun, Electron's
// no-external-buffers mode). runtimes/run.mjs copies it into a fresh project
// where the packed tarball and apache-arrow are installed, so `coldpage`
// resolves exactly as it does for users.
//
// Usage: <runtime> suite.mjs [--report <file.json>]
//   COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY=1|0  fail unless zero-copy is on|off
//
// Whatever a runtime lacks is printed as a "degraded:" or "note:" line and
// listed in the report: the suite never skips silently.
/* global AbortController */
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'

const require = createRequire(import.meta.url)

const runtime = globalThis.Bun !== undefined ? 'bun' : 'node'
const version = runtime === 'bun' ? process.versions.bun : process.versions.node
const reportPath = process.argv.includes('--report') ? process.argv[process.argv.indexOf('--report') + 1] : undefined

const results = []
const degraded = []
const notes = []

function degrade(capability, reason) {
  degraded.push({ capability, reason })
  console.log(`degraded: ${capability}: ${reason}`)
}

function note(text) {
  notes.push(text)
  console.log(`note: ${text}`)
}

const tests = []
function test(name, fn) {
  tests.push({ name, fn })
}

/** `n` deterministic pseudo-random bytes (xorshift32, as in __test__/helpers.ts: this suite runs outside the repo). */
function bytes(n, seed = 1) {
  const out = Buffer.allocUnsafe(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** Asserts that `fn` throws an error with `code` (and class, when given). */
function throwsCode(fn, code, cls) {
  let thrown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown !== undefined, `expected a throw with ${code}`)
  assert.equal(thrown.code, code, String(thrown))
  if (cls !== undefined) assert.ok(thrown instanceof cls, `${thrown} is not a ${cls.name}`)
  return thrown
}

async function rejectsCode(promise, code) {
  let thrown
  try {
    await promise
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown !== undefined, `expected a rejection with ${code}`)
  assert.equal(thrown.code, code, String(thrown))
  return thrown
}

/** A GC hook where the runtime offers one (Bun.gc, or node --expose-gc). */
const gc = globalThis.Bun !== undefined ? () => globalThis.Bun.gc(true) : globalThis.gc

// Loading: both module systems, one instance.
const cjs = require('coldpage')
const esm = await import('coldpage')
const cjsArrow = require('coldpage/arrow')
const esmArrow = await import('coldpage/arrow')
const { pageout, pageoutAsync, stats, configure, getConfig, doctor, zeroCopySupported, Handle, ColdpageError, open, memoryPressure } = cjs

const zeroCopy = zeroCopySupported()
const report = doctor()
// What scripts/platform-table.mjs checks against the README's Platforms table.
const platform = {
  os: process.platform,
  auto: report.auto,
  swapTotalBytes: report.swapTotalBytes,
  pageOut: report.pageOut,
  pageOutWorks: report.pageOutWorks,
  holePunching: report.holePunching,
  zeroCopy,
  zeroCopyReason: report.zeroCopyReason,
  warnings: report.warnings,
}
console.log(`${runtime} ${version} (node-api ${process.versions.napi ?? '?'}), zero-copy ${zeroCopy ? 'on' : 'off'}`)
if (!zeroCopy) degrade('zero-copy views and take (copies instead)', report.zeroCopyReason ?? 'no reason given')

// The swap backend exists on Linux (MADV_COLD/MADV_PAGEOUT) and Windows (VirtualUnlock);
// macOS has no public range page-out, so it has the file backend only.
const SWAP_PLATFORMS = ['linux', 'win32']
const BACKENDS = SWAP_PLATFORMS.includes(process.platform) ? ['swap', 'file'] : ['file']
if (!SWAP_PLATFORMS.includes(process.platform)) note(`the swap backend is Linux and Windows only; ${process.platform} tests the file backend`)

test('require and import load one module instance, coldpage/arrow too', () => {
  for (const name of ['pageout', 'pageoutAsync', 'configure', 'getConfig', 'watchConfig', 'stats', 'doctor', 'zeroCopySupported', 'Handle', 'ColdpageError', 'open', 'memoryPressure']) {
    assert.equal(typeof cjs[name], 'function', name)
    assert.equal(esm[name], cjs[name], `import and require give the same ${name}`)
  }
  assert.equal(esmArrow.TableHandle, cjsArrow.TableHandle)
  assert.equal(typeof esmArrow.pageoutTable, 'function')
})

test('zero-copy support is what this runtime and its environment call for', () => {
  assert.equal(report.zeroCopy, zeroCopy)
  assert.equal(report.zeroCopyReason === null, zeroCopy)
  const expect = process.env.COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY
  if (expect === '1' || expect === '0') assert.equal(zeroCopy, expect === '1', report.zeroCopyReason ?? '')
  if (process.env.COLDPAGE_NO_EXTERNAL_BUFFERS === '1') assert.equal(zeroCopy, false)
  assert.doesNotThrow(() => JSON.stringify(report))
})

test('the CLI runs under this runtime: coldpage doctor --json', () => {
  const cli = join(dirname(require.resolve('coldpage/package.json')), 'dist', 'cli.js')
  const r = spawnSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const json = JSON.parse(r.stdout)
  assert.equal(json.zeroCopy, zeroCopy)
  assert.ok(['swap', 'file'].includes(json.auto.backend))
})

for (const backend of BACKENDS) {
  const data = bytes(300_000, backend.length)
  /** The same bytes as mixed chunk kinds, with non-zero byteOffsets. */
  const chunks = () => {
    const pad = Buffer.concat([Buffer.alloc(3), data.subarray(0, 1000)])
    const second = data.subarray(1000, 5000)
    const ab = data.buffer.slice(data.byteOffset + 5000, data.byteOffset + 9000)
    const dv = new DataView(Buffer.concat([Buffer.alloc(5), data.subarray(9000)]).buffer, 5)
    return [new Uint8Array(pad.buffer, pad.byteOffset + 3, 1000), second, ab, dv]
  }

  test(`${backend}: pageout of mixed chunks, every sync read form`, () => {
    const inputs = chunks()
    const h = pageout(inputs, { backend })
    try {
      assert.ok(h instanceof Handle)
      assert.ok(h instanceof esm.Handle)
      assert.equal(h.byteLength, data.length)
      assert.equal(h.backend, backend)
      assert.equal(h.disposed, false)
      assert.deepEqual(h.readAt(0, data.length), data)
      assert.deepEqual(h.readAt(999, 4002), data.subarray(999, 5001))
      assert.equal(h.readAt(data.length, 0).length, 0)
      const many = h.readAtMany([[0, 16], [123_456, 4096], [0, 16], [10, 0], [299_000, 1000]])
      assert.deepEqual(many.map((b) => b.length), [16, 4096, 16, 0, 1000])
      assert.deepEqual(many[1], data.subarray(123_456, 123_456 + 4096))
      assert.deepEqual(many[2], data.subarray(0, 16))
      assert.deepEqual(many[4], data.subarray(299_000))
      const target = new Uint8Array(new ArrayBuffer(100), 10, 64)
      h.readInto(77_777, target)
      assert.deepEqual(Buffer.from(target), data.subarray(77_777, 77_777 + 64))
      const words = new Float64Array(8)
      h.readInto(8, words)
      assert.deepEqual(Buffer.from(words.buffer), data.subarray(8, 72))
      h.prefetch()
      h.prefetch(1000, 4096)
      h.prefetch(data.length - 1, 1 << 30) // clamped: a hint never throws for a live handle
      // The caller's buffers are untouched and not detached.
      assert.equal(inputs[1].length, 4000)
      assert.equal(inputs[2].byteLength, 4000)
    } finally {
      h.dispose()
    }
  })

  test(`${backend}: async reads, pageoutAsync, takeAsync, abort`, async () => {
    const h = await pageoutAsync(chunks(), { backend })
    assert.equal(h.backend, backend)
    assert.deepEqual(await h.readAtAsync(1234, 5678), data.subarray(1234, 1234 + 5678))
    const many = await h.readAtManyAsync([[0, 1], [200_000, 65_536], [0, 1]])
    assert.deepEqual(many, [data.subarray(0, 1), data.subarray(200_000, 265_536), data.subarray(0, 1)])
    const ac = new AbortController()
    ac.abort()
    await rejectsCode(h.readAtAsync(0, 10, { signal: ac.signal }), 'ABORT_ERR')
    const all = await h.takeAsync()
    assert.equal(h.disposed, true)
    assert.deepEqual(all, data)
    await rejectsCode(h.readAtAsync(0, 1), 'ERR_COLDPAGE_DISPOSED')
    await rejectsCode(h.takeAsync(), 'ERR_COLDPAGE_DISPOSED')
  })

  // File views are copy-on-write maps (zero-copy where the runtime allows); swap
  // views are always copies: a writable zero-copy view would alias the storage.
  const leases = zeroCopy && backend === 'file'

  test(`${backend}: a write into a view never reaches the handle's bytes`, () => {
    const h = pageout(data, { backend })
    const v = h.view(0, 4096)
    v.fill(0xee)
    assert.deepEqual(h.readAt(0, 4096), data.subarray(0, 4096))
    assert.deepEqual(h.view(0, 4096), data.subarray(0, 4096))
    h.dispose()
  })

  test(`${backend}: view leases are ${leases ? 'detached' : 'copies that stay valid'} after dispose`, () => {
    const h = pageout(data, { backend })
    const whole = h.view()
    const part = h.view(4096, 8192)
    const sub = whole.subarray(100, 200)
    assert.deepEqual(whole, data)
    assert.deepEqual(part, data.subarray(4096, 4096 + 8192))
    assert.equal(h.view(10, 0).length, 0)
    h.dispose()
    assert.equal(h.disposed, true)
    if (leases) {
      // Zero-copy views are detached: length 0, never a dangling pointer.
      for (const v of [whole, part, sub]) assert.equal(v.length, 0)
      assert.equal(whole.buffer.byteLength, 0)
      assert.equal(whole[0], undefined)
    } else {
      assert.deepEqual(whole, data)
      assert.deepEqual(part, data.subarray(4096, 4096 + 8192))
      assert.deepEqual(sub, data.subarray(100, 200))
    }
  })

  test(`${backend}: take returns everything, disposes and ${leases ? 'detaches' : 'leaves'} earlier views`, () => {
    const h = pageout(data, { backend })
    const v = h.view(0, 1000)
    const all = h.take()
    assert.equal(h.disposed, true)
    assert.deepEqual(all, data)
    assert.equal(v.length, leases ? 0 : 1000)
    all[0] ^= 0xff // the taken Buffer belongs to the caller
    assert.equal(all[0], data[0] ^ 0xff)
    throwsCode(() => h.take(), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
  })

  test(`${backend}: dispose is idempotent, Symbol.dispose works, use after dispose throws`, () => {
    const before = stats()[backend].handles
    const h = pageout(data.subarray(0, 5000), { backend })
    assert.equal(stats()[backend].handles, before + 1)
    assert.equal(typeof h[Symbol.dispose], 'function')
    h[Symbol.dispose]()
    assert.equal(h.disposed, true)
    assert.equal(stats()[backend].handles, before)
    h.dispose()
    h[Symbol.dispose]()
    for (const use of [() => h.readAt(0, 1), () => h.readAtMany([[0, 1]]), () => h.readInto(0, Buffer.alloc(1)), () => h.view(), () => h.take(), () => h.prefetch()]) {
      throwsCode(use, 'ERR_COLDPAGE_DISPOSED', ColdpageError)
    }
  })
}

test('a shared handle opens in a worker thread, which keeps reading after the owner disposes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coldpage-suite-'))
  const script = join(dir, 'share-worker.cjs')
  writeFileSync(
    script,
    `const { parentPort, workerData } = require('node:worker_threads')
    const coldpage = require(workerData.entry)
    const data = Buffer.from(workerData.data)
    const h = coldpage.open(workerData.shared)
    parentPort.postMessage('opened')
    parentPort.once('message', () => {
      const ok = h.readAt(0, h.byteLength).equals(data) && h.backend === workerData.backend
      h.dispose()
      parentPort.postMessage(ok)
    })`,
  )
  try {
    for (const backend of BACKENDS) {
      const data = bytes(100_000, 9)
      const h = pageout(data, { backend })
      const shared = h.share()
      const w = new Worker(script, { workerData: { entry: require.resolve('coldpage'), shared, data, backend } })
      const messages = []
      const next = () => new Promise((resolve, reject) => {
        w.once('message', resolve)
        w.once('error', reject)
      })
      let got = next()
      messages.push(await got)
      got = next()
      h.dispose() // the worker's handle keeps the storage
      w.postMessage('read')
      messages.push(await got)
      assert.deepEqual(messages, ['opened', true], backend)
      await w.terminate()
      throwsCode(() => open(shared), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
      throwsCode(() => h.share(), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
    }
    const end = Date.now() + 10_000
    while (stats().swap.handles + stats().file.handles > 0 && Date.now() < end) await sleep(10)
    assert.equal(stats().swap.handles + stats().file.handles, 0)
    throwsCode(() => open({ process: 'x', id: 1 }), 'ERR_INVALID_ARG_VALUE', TypeError)
    throwsCode(() => open(null), 'ERR_INVALID_ARG_TYPE', TypeError)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('memoryPressure() reports a level and a source of this platform', () => {
  const p = memoryPressure()
  assert.ok(['none', 'moderate', 'critical'].includes(p.level), p.level)
  assert.ok(['psi', 'cgroup2', 'cgroup1', 'windows', 'macos', 'none'].includes(p.source), p.source)
  if (process.platform === 'win32') assert.equal(p.source, 'windows', p.detail)
  assert.equal(typeof p.detail, 'string')
  console.log(`  memory pressure: ${p.level} (${p.source}): ${p.detail}`)
})

for (const backend of BACKENDS) {
  test(`${backend}: a store keeps its budget, pages values back in equal, and its values outlive it`, async () => {
    const live = () => stats().file.handles + stats().swap.handles
    const before = live()
    const store = cjs.createStore({ residentBytes: 200_000, backend, pressure: false })
    const values = Array.from({ length: 6 }, (_, i) => Buffer.alloc(90_000 + i, i + 1))
    values.forEach((v, i) => store.set(`v${i}`, v))
    assert.ok(store.residentBytes <= 200_000, `${store.residentBytes} resident`)
    assert.equal(store.residentBytes + store.coldBytes, values.reduce((n, v) => n + v.length, 0))
    const got = values.map((_, i) => store.get(`v${i}`))
    got.forEach((g, i) => assert.ok(g.equals(values[i]), `value ${i}`))
    assert.ok(store.getRange('v0', 10, 100).equals(values[0].subarray(10, 110)))
    const held = store.hold('v1')
    for (let i = 2; i < 6; i++) store.get(`v${i}`)
    assert.equal([...store].find(([k]) => k === 'v1')[1].residentBytes, values[1].length, 'a held entry stays resident')
    held.dispose()
    assert.ok(store.stats().pageIns > 0 && store.stats().evictions > 0)
    store.dispose()
    got.forEach((g, i) => assert.ok(g.equals(values[i]), `value ${i} stays valid after the store is disposed`))
    throwsCode(() => store.get('v0'), 'ERR_COLDPAGE_DISPOSED')
    // Zero-copy values keep their scratch bytes until collected: let them go, so that
    // later tests that count handles start from a settled pager.
    got.length = 0
    for (let round = 0; gc !== undefined && round < 100 && live() !== before; round++) {
      gc()
      await sleep(10)
    }
    if (gc !== undefined) assert.equal(live(), before, 'the values handed out free their scratch once collected')
  })
}

test('errors carry their codes and classes', async () => {
  const h = pageout(Buffer.from('hello world'))
  try {
    throwsCode(() => h.readAt(-1, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(() => h.readAt(0.5, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(() => h.readAt(0, 12), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(() => h.readAt(2 ** 53, 1), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(() => h.readAt('0', 1), 'ERR_INVALID_ARG_TYPE', TypeError)
    throwsCode(() => h.readAtMany([[0, 1, 2]]), 'ERR_INVALID_ARG_TYPE', TypeError)
    throwsCode(() => h.readAtMany([[10, 5]]), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(() => h.readInto(0, 'nope'), 'ERR_INVALID_ARG_TYPE', TypeError)
    throwsCode(() => h.view(5, 100), 'ERR_OUT_OF_RANGE', RangeError)
    throwsCode(() => h.prefetch(-1), 'ERR_OUT_OF_RANGE', RangeError)
    await rejectsCode(h.readAtAsync(0, 1, { signal: 'no' }), 'ERR_INVALID_ARG_TYPE')
    await rejectsCode(h.readAtManyAsync([[0, 100]]), 'ERR_OUT_OF_RANGE')
  } finally {
    h.dispose()
  }
  throwsCode(() => pageout(42), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(() => pageout([Buffer.alloc(1), 'x']), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(() => pageout(Buffer.alloc(1), { backend: 'tape' }), 'ERR_INVALID_ARG_VALUE', TypeError)
  await rejectsCode(pageoutAsync(Buffer.alloc(1), { backend: 'tape' }), 'ERR_INVALID_ARG_VALUE')
  throwsCode(() => configure({ backend: 'tape' }), 'ERR_INVALID_ARG_VALUE', TypeError)
  throwsCode(() => configure({ maxScratchBytes: -1 }), 'ERR_OUT_OF_RANGE', RangeError)
  // A regular file is an unsafe scratch dir.
  throwsCode(() => configure({ scratchDir: require.resolve('coldpage/package.json') }), 'ERR_COLDPAGE_CONFIG', ColdpageError)
})

test('the file quota gives ERR_COLDPAGE_NO_SPACE and the pager keeps working', () => {
  const previous = getConfig()
  configure({ maxScratchBytes: 64 * 1024 })
  try {
    const err = throwsCode(() => pageout(Buffer.alloc(1 << 20, 1), { backend: 'file' }), 'ERR_COLDPAGE_NO_SPACE', ColdpageError)
    assert.equal(err.name, 'ColdpageError')
  } finally {
    configure({ maxScratchBytes: previous.maxScratchBytes })
  }
  const h = pageout(Buffer.alloc(1 << 20, 2), { backend: 'file' })
  assert.equal(h.readAt(12345, 1)[0], 2)
  h.dispose()
})

test('encrypt and compress: every read form round-trips, views are copies, doctor names the AEAD', async () => {
  const previous = getConfig()
  try {
    for (const [encrypt, compress] of [[true, 'none'], [false, 'lz4'], [true, 'lz4']]) {
      configure({ encrypt, compress })
      const text = Buffer.from('price volume close '.repeat(4000))
      for (const data of [text, bytes(70_000, 9)]) {
        const h = pageout([data.subarray(0, 5000), data.subarray(5000)], { backend: 'file' })
        assert.deepEqual(h.readAt(4090, 20_000), data.subarray(4090, 24_090))
        assert.deepEqual(await h.readAtAsync(1, data.length - 1), data.subarray(1))
        const [a, b] = h.readAtMany([[0, 10], [8000, 9000]])
        assert.deepEqual([a, b], [data.subarray(0, 10), data.subarray(8000, 17_000)])
        const into = Buffer.alloc(4096)
        h.readInto(4096, into)
        assert.deepEqual(into, data.subarray(4096, 8192))
        const view = h.view(0, 100)
        view.fill(0)
        assert.deepEqual(h.readAt(0, 100), data.subarray(0, 100), 'a view is a decoded copy')
        assert.deepEqual(h.take(), data)
      }
    }
    assert.match(doctor().encryption.aead, /^(AES-256-GCM|ChaCha20-Poly1305) \((ring|RustCrypto)\)$/)
  } finally {
    configure({ encrypt: previous.encrypt, compress: previous.compress })
  }
})

test('empty inputs give zero-length handles', () => {
  for (const input of [Buffer.alloc(0), [], new ArrayBuffer(0), [new Uint8Array(0), new Uint8Array(0)]]) {
    const h = pageout(input)
    assert.equal(h.byteLength, 0)
    assert.equal(h.view().length, 0)
    assert.equal(h.take().length, 0)
  }
})

// `using` is syntax: Node 20 and 22 cannot parse it, so it is compiled at run
// time here and the tests above call h[Symbol.dispose]() directly everywhere.
let usingFn
try {
  usingFn = new Function('pageout', 'data', '{ using h = pageout(data); var out = h } return out')
} catch {
  note('`using` declarations do not parse in this runtime; Symbol.dispose is tested by direct calls')
}
if (usingFn !== undefined) {
  test('`using` disposes the handle at the end of its block', () => {
    const h = usingFn(pageout, Buffer.from('abc'))
    assert.equal(h.disposed, true)
  })
}

if (gc !== undefined) {
  test('a forgotten handle is freed by garbage collection (finalizers run)', async () => {
    const before = stats().file.handles
    ;(() => {
      for (let i = 0; i < 8; i++) pageout(Buffer.alloc(4096, i), { backend: 'file' }).view(0, 10)
    })()
    assert.equal(stats().file.handles, before + 8)
    let freed = false
    for (let round = 0; round < 100 && !freed; round++) {
      gc()
      await sleep(10)
      freed = stats().file.handles === before
    }
    assert.ok(freed, `still ${stats().file.handles - before} live file handles after GC`)
  })
} else {
  note('no GC hook (run node with --expose-gc): finalizers not exercised')
}

function arrowTests(label, A, arrowApi) {
  /** Three record batches (1000, 1001, 1002 rows) of one schema with nulls, a dictionary, a zoned timestamp, a list. */
  const makeTable = () => {
    const n = 3003
    const whole = A.tableFromArrays({
      id: Int32Array.from({ length: n }, (_, i) => i),
      big: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 1_000_000_007n),
      price: Float64Array.from({ length: n }, (_, i) => i / 7),
      name: A.vectorFromArray(Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : `n-${i}`)), new A.Utf8()),
      tag: A.vectorFromArray(Array.from({ length: n }, (_, i) => ['red', 'green', 'blue'][i % 3]), new A.Dictionary(new A.Utf8(), new A.Int32())),
      when: A.vectorFromArray(Array.from({ length: n }, (_, i) => 1_700_000_000_000 + i), new A.TimestampMillisecond('UTC')),
      list: A.vectorFromArray(Array.from({ length: n }, (_, i) => (i % 4 === 0 ? null : [i, i + 1])), new A.List(new A.Field('item', new A.Int32(), true))),
    })
    return new A.Table([whole.slice(0, 1000), whole.slice(1000, 2001), whole.slice(2001)].flatMap((t) => t.batches))
  }
  const rows = (t) => JSON.stringify(t.toArray(), (_, v) => (typeof v === 'bigint' ? `${v}n` : v))
  const column = (t, name) => JSON.stringify([...t.getChild(name)], (_, v) => (typeof v === 'bigint' ? `${v}n` : v))

  for (const backend of BACKENDS) {
    test(`arrow (${label}), ${backend}: round trips, column and batch selection, take, dispose`, async () => {
      const table = makeTable()
      const th = arrowApi.pageoutTable(table, { backend })
      assert.ok(th instanceof arrowApi.TableHandle)
      assert.equal(th.numRows, table.numRows)
      assert.equal(th.numBatches, 3)
      assert.ok(th.schema.fields.map((f) => f.name).join() === table.schema.fields.map((f) => f.name).join())
      const back = th.read()
      assert.ok(back instanceof A.Table, 'read() returns this apache-arrow build’s Table')
      assert.equal(rows(back), rows(table))
      const some = th.read({ columns: ['price', 'name'] })
      assert.deepEqual(some.schema.fields.map((f) => f.name), ['price', 'name'])
      assert.equal(column(some, 'name'), column(table, 'name'))
      const second = th.read({ batches: [1] })
      assert.equal(second.numRows, 1001)
      assert.equal(rows(second), rows(new A.Table(table.batches[1])))
      assert.equal(rows(await th.readAsync({ columns: ['tag', 'when', 'list'] })), rows(table.select(['tag', 'when', 'list'])))
      const taken = th.take()
      assert.equal(th.disposed, true)
      assert.equal(rows(taken), rows(table))
      throwsCode(() => th.read(), 'ERR_COLDPAGE_DISPOSED')
      // A table read before disposal owns its memory.
      const th2 = await arrowApi.pageoutTableAsync(table, { backend })
      const kept = th2.read({ columns: ['id'] })
      th2[Symbol.dispose]()
      assert.equal(th2.disposed, true)
      assert.equal(column(kept, 'id'), column(table, 'id'))
      th2.dispose()
      throwsCode(() => th2.read(), 'ERR_COLDPAGE_DISPOSED')
      throwsCode(() => arrowApi.pageoutTable({ not: 'a table' }), 'ERR_INVALID_ARG_TYPE', TypeError)
    })
  }
  test(`arrow (${label}): a store pages a table out and back in column by column`, () => {
    const table = makeTable()
    const store = cjs.createStore({ residentBytes: 1 << 30, pressure: false })
    store.set('t', table)
    store.resize(0)
    assert.equal(store.residentBytes, 0)
    store.resize(1 << 30)
    const one = store.getTable('t', { columns: ['price'] })
    assert.equal(column(one, 'price'), column(table, 'price'))
    assert.equal(store.stats().pageIns, 1, 'only the column asked for')
    const whole = store.get('t')
    assert.ok(whole instanceof A.Table, 'the table comes back as this apache-arrow build’s Table')
    assert.equal(rows(whole), rows(table))
    store.dispose()
  })
  test(`arrow (${label}): an empty table round-trips`, () => {
    const empty = new A.Table(new A.Schema([new A.Field('x', new A.Int32(), true)]))
    const th = arrowApi.pageoutTable(empty)
    assert.equal(th.numRows, 0)
    assert.equal(th.read().numRows, 0)
    assert.deepEqual(th.read().schema.fields.map((f) => f.name), ['x'])
    th.dispose()
  })
}

arrowTests('require', require('apache-arrow'), cjsArrow)
arrowTests('import', await import('apache-arrow'), esmArrow)

// Run sequentially: the pager is process-wide and some tests change its config.
for (const { name, fn } of tests) {
  const started = performance.now()
  try {
    await fn()
    results.push({ name, ok: true })
    console.log(`ok  ${name} (${Math.round(performance.now() - started)} ms)`)
  } catch (err) {
    results.push({ name, ok: false, error: String(err?.stack ?? err) })
    console.log(`FAIL ${name}\n  ${String(err?.stack ?? err).split('\n').join('\n  ')}`)
  }
}
const live = stats()
if (live.swap.handles !== 0 || live.file.handles !== 0) {
  results.push({ name: 'no handle is left live', ok: false, error: JSON.stringify(live) })
  console.log(`FAIL no handle is left live: ${JSON.stringify(live)}`)
}
const passed = results.filter((r) => r.ok).length
const failed = results.length - passed
console.log(`${passed} passed, ${failed} failed`)
if (reportPath !== undefined) {
  writeFileSync(
    reportPath,
    JSON.stringify({ runtime, version, napi: process.versions.napi ?? null, zeroCopy, zeroCopyReason: report.zeroCopyReason, platform, degraded, notes, passed, failed, results }, null, 2),
  )
}
process.exitCode = failed === 0 ? 0 : 1
