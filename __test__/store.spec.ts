// createStore: a model test against a Map with a byte counter (values always
// equal, the budget never passed beyond SPEC's rule, every byte accounted for),
// tables evicted and paged in column by column, holds, resize, bad arguments.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import { fc, testProp } from '@fast-check/ava'
import test from 'ava'
import * as arrow from 'apache-arrow'
import { type BackendName, type Store, type StoreStats, configure, createStore, stats, zeroCopySupported } from 'coldpage'

import { BACKENDS, bytes, collectUntil, node, throwsCode } from './helpers.js'

type Op =
  | { op: 'set'; key: number; size: number; seed: number }
  | { op: 'get'; key: number }
  | { op: 'range'; key: number; at: number; len: number }
  | { op: 'delete'; key: number }
  | { op: 'hold'; key: number }
  | { op: 'release' }
  | { op: 'resize'; budget: number }

const key = fc.integer({ min: 0, max: 7 })
const ops = fc.array(
  fc.oneof(
    { arbitrary: fc.record({ op: fc.constant('set' as const), key, size: fc.integer({ min: 0, max: 40_000 }), seed: fc.integer({ min: 1, max: 1 << 30 }) }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('get' as const), key }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('range' as const), key, at: fc.nat(40_000), len: fc.nat(5_000) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('delete' as const), key }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('hold' as const), key }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('release' as const) }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('resize' as const), budget: fc.integer({ min: 0, max: 120_000 }) }), weight: 1 },
  ),
  { maxLength: 60 },
)

/** Runs `script` against a store and a Map, checking after every step. */
function runModel(backend: BackendName, policy: 'lru' | 'sieve', budget0: number, script: Op[]): string | true {
  const store = createStore({ residentBytes: budget0, backend, policy, pressure: false })
  const model = new Map<string, Buffer>()
  const holds: { key: string; hold: Disposable }[] = []
  let budget = budget0
  try {
    for (const [i, s] of script.entries()) {
      const k = 'key' in s ? `k${s.key}` : ''
      switch (s.op) {
        case 'set': {
          const value = bytes(s.size, s.seed)
          store.set(k, value)
          model.set(k, Buffer.from(value))
          break
        }
        case 'get': {
          const got = store.get(k)
          const want = model.get(k)
          if (want === undefined ? got !== undefined : !(Buffer.isBuffer(got) && got.equals(want))) return `step ${i}: get(${k}) differs`
          break
        }
        case 'range': {
          const want = model.get(k)
          if (want === undefined) {
            if (store.getRange(k, 0, 0) !== undefined) return `step ${i}: getRange of a missing key`
          } else if (s.at + s.len > want.length) {
            try {
              store.getRange(k, s.at, s.len)
              return `step ${i}: getRange outside did not throw`
            } catch (err) {
              if ((err as { code?: string }).code !== 'ERR_OUT_OF_RANGE') return `step ${i}: ${String(err)}`
            }
          } else {
            const got = store.getRange(k, s.at, s.len)
            if (!got?.equals(want.subarray(s.at, s.at + s.len))) return `step ${i}: getRange(${k}, ${s.at}, ${s.len}) differs`
          }
          break
        }
        case 'delete':
          if (store.delete(k) !== model.delete(k)) return `step ${i}: delete(${k}) answered differently`
          for (let h = holds.length - 1; h >= 0; h--) if (holds[h]?.key === k) holds.splice(h, 1)
          break
        case 'hold':
          if (model.has(k)) holds.push({ key: k, hold: store.hold(k) })
          break
        case 'release':
          holds.shift()?.hold[Symbol.dispose]()
          break
        case 'resize':
          budget = s.budget
          store.resize(budget)
          break
      }
      let total = 0
      for (const v of model.values()) total += v.length
      let held = 0
      for (const key of new Set(holds.map((h) => h.key))) held += model.get(key)?.length ?? 0
      if (store.size !== model.size) return `step ${i}: size ${store.size}, model ${model.size}`
      if (store.residentBytes + store.coldBytes !== total) return `step ${i}: ${store.residentBytes} + ${store.coldBytes} bytes accounted, model holds ${total}`
      if (store.residentBytes > Math.max(budget, 0) + held) return `step ${i}: ${store.residentBytes} resident over a budget of ${budget} with ${held} held`
      const info = new Map(store)
      for (const key of model.keys()) if (info.get(key)?.byteLength !== model.get(key)?.length) return `step ${i}: iteration lacks ${key}`
      let resident = 0
      for (const e of info.values()) resident += e.residentBytes
      if (resident !== store.residentBytes) return `step ${i}: entries hold ${resident} resident bytes, the store counts ${store.residentBytes}`
    }
    for (const [k, v] of model) if (!(store.get(k) as Buffer).equals(v)) return `end: get(${k}) differs`
    return true
  } finally {
    store.dispose()
  }
}

for (const backend of BACKENDS) {
  for (const policy of ['lru', 'sieve'] as const) {
    testProp(
      `${backend}, ${policy}: the store answers as a Map, keeps its budget (beyond held entries) and accounts for every byte`,
      [fc.integer({ min: 0, max: 100_000 }), ops],
      (t, budget, script) => {
        const result = runModel(backend, policy, budget, script)
        t.is(result, true)
      },
      { numRuns: 60 },
    )
  }
}

test.serial('evicting pages values out and get pages them back in; the values returned stay valid after later evictions, deletes and dispose', async (t) => {
  const before = stats().file.handles
  const views = zeroCopySupported()
  let store: Store | undefined = createStore({ residentBytes: 3 * 65536, backend: 'file', pressure: false })
  const values = Array.from({ length: 10 }, (_, i) => bytes(65536, i + 1))
  values.forEach((v, i) => store?.set(`v${i}`, v))
  t.true(store.residentBytes <= 3 * 65536)
  t.is(store.coldBytes, 7 * 65536)
  const s1 = store.stats()
  t.is(s1.evictions, 7)
  t.is(s1.pageOuts, views ? 10 : 7, views ? 'zero-copy: every value is written at set and its view kept' : 'evictions write')
  let got: Buffer[] = [store.get('v0') as Buffer]
  t.true(got[0]?.equals(values[0] as Buffer))
  t.is(store.stats().misses, 1)
  t.is(store.stats().pageIns, 1)
  for (let i = 1; i < 10; i++) got.push(store.get(`v${i}`) as Buffer)
  t.is(stats().file.handles - before, 10, 'values paged in keep their copy on disk')
  store.delete('v0')
  store.dispose()
  got.forEach((g, i) => t.true(g.equals(values[i] as Buffer), `value ${i} got stays the caller's after evictions, delete and dispose`))
  throwsCode(t, () => store?.get('v0'), 'ERR_COLDPAGE_DISPOSED')
  t.notThrows(() => store?.dispose(), 'idempotent')
  store = undefined
  got = []
  t.true(await collectUntil(() => stats().file.handles === before), 'the scratch space goes once the values handed out are collected')
})

test('a file-backed value paged in keeps its copy on disk: evicting it again writes nothing', (t) => {
  using store = createStore({ residentBytes: 100_000, backend: 'file', pressure: false })
  store.set('a', bytes(80_000, 1))
  store.set('b', bytes(80_000, 2))
  const views = zeroCopySupported()
  t.is(store.stats().pageOuts, views ? 2 : 1)
  for (let round = 0; round < 3; round++) {
    t.true((store.get('a') as Buffer).equals(bytes(80_000, 1)))
    t.true((store.get('b') as Buffer).equals(bytes(80_000, 2)))
  }
  const s = store.stats()
  t.is(s.pageOuts, 2, 'each value was written once')
  t.is(s.evictions, 7)
  t.is(s.pageIns, 6)
})

test('getRange reads a cold Buffer entry without paging it in', (t) => {
  using store = createStore({ residentBytes: 0, backend: 'file', pressure: false })
  const v = bytes(1 << 20, 7)
  store.set('big', v)
  t.is(store.residentBytes, 0, 'an entry larger than the budget goes cold at once')
  t.true(store.getRange('big', 1000, 5000)?.equals(v.subarray(1000, 6000)))
  t.is(store.stats().pageIns, 0)
  t.is(store.coldBytes, v.length)
  t.true((store.get('big') as Buffer).equals(v), 'get of an entry over the budget reads it and leaves it cold')
  t.is(store.residentBytes, 0)
})

test('a held entry stays resident past the budget and is evicted once released', (t) => {
  using store = createStore({ residentBytes: 100_000, backend: 'file', pressure: false })
  store.set('a', bytes(80_000, 1))
  store.set('b', bytes(80_000, 2))
  t.is(store.residentBytes, 80_000, 'a is evicted for b')
  {
    using held = store.hold('a')
    t.is(typeof held.dispose, 'function')
    t.is(store.residentBytes, 80_000, 'holding a pages it in and evicts b')
    t.true([...store].find(([k]) => k === 'a')?.[1].held)
    store.set('c', bytes(80_000, 3))
    t.true([...store].find(([k]) => k === 'a')?.[1].residentBytes === 80_000, 'a held is never evicted')
  }
  t.true(store.residentBytes <= 100_000, 'released: the budget holds again')
  throwsCode(t, () => store.hold('nope'), 'ERR_INVALID_ARG_VALUE')
})

test('resize to a smaller budget evicts at once', (t) => {
  using store = createStore({ residentBytes: 1 << 20, backend: 'file', pressure: false })
  for (let i = 0; i < 8; i++) store.set(`v${i}`, bytes(100_000, i + 1))
  t.is(store.residentBytes, 800_000)
  store.resize(250_000)
  t.true(store.residentBytes <= 250_000)
  t.is(store.residentBytes + store.coldBytes, 800_000)
})

test('multi-chunk values are stored as their concatenation; any ArrayBufferView or ArrayBuffer is accepted', (t) => {
  using store = createStore({ residentBytes: 10, backend: 'file', pressure: false })
  store.set('parts', [Buffer.from('hello '), new Uint8Array(Buffer.from('world'))])
  store.set('floats', new Float64Array([1.5, 2.5]))
  store.set('ab', new Uint8Array([1, 2, 3]).buffer)
  t.is((store.get('parts') as Buffer).toString(), 'hello world')
  t.deepEqual([...new Float64Array(new Uint8Array(store.get('floats') as Buffer).buffer)], [1.5, 2.5])
  t.deepEqual([...(store.get('ab') as Buffer)], [1, 2, 3])
})

test('bad arguments get SPEC codes', (t) => {
  throwsCode(t, () => createStore(1 as never), 'ERR_INVALID_ARG_TYPE')
  throwsCode(t, () => createStore({ residentBytes: '1' as never }), 'ERR_INVALID_ARG_TYPE')
  throwsCode(t, () => createStore({ residentBytes: -1 }), 'ERR_OUT_OF_RANGE')
  throwsCode(t, () => createStore({ residentBytes: 1, backend: 'tape' as never }), 'ERR_INVALID_ARG_VALUE')
  throwsCode(t, () => createStore({ residentBytes: 1, policy: 'fifo' as never }), 'ERR_INVALID_ARG_VALUE')
  throwsCode(t, () => createStore({ residentBytes: 1, pressure: 'yes' as never }), 'ERR_INVALID_ARG_TYPE')
  using store = createStore({ residentBytes: 100, pressure: false })
  throwsCode(t, () => store.set(1 as never, Buffer.alloc(1)), 'ERR_INVALID_ARG_TYPE')
  throwsCode(t, () => store.set('x', 'text' as never), 'ERR_INVALID_ARG_TYPE')
  throwsCode(t, () => store.set('x', [Buffer.alloc(1), 2] as never), 'ERR_INVALID_ARG_TYPE')
  t.false(store.has('x'), 'a bad value stores nothing')
  store.set('x', Buffer.alloc(4))
  throwsCode(t, () => store.getRange('x', -1, 1), 'ERR_OUT_OF_RANGE')
  throwsCode(t, () => store.getRange('x', 2, 3), 'ERR_OUT_OF_RANGE')
  throwsCode(t, () => store.getTable('x'), 'ERR_INVALID_ARG_VALUE')
  throwsCode(t, () => store.resize(1.5), 'ERR_OUT_OF_RANGE')
  t.is(store.get('missing'), undefined)
  t.is(store.getRange('missing', 0, 1), undefined)
  t.is(store.getTable('missing'), undefined)
})

/** Flat columns, a nullable string column and a dictionary column, in batches of `batch` rows sharing one schema. */
function table(rows: number, batch: number): arrow.Table {
  const batches: arrow.RecordBatch[] = []
  let schema: arrow.Schema | undefined
  for (let start = 0; start < rows; start += batch) {
    const n = Math.min(batch, rows - start)
    const b = new arrow.Table({
      id: arrow.vectorFromArray(Int32Array.from({ length: n }, (_, i) => start + i)),
        price: arrow.vectorFromArray(Float64Array.from({ length: n }, (_, i) => (start + i) * 0.25)),
        name: arrow.vectorFromArray(Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : `row ${start + i}`)), new arrow.Utf8()),
        tag: arrow.vectorFromArray(Array.from({ length: n }, (_, i) => ['a', 'b', 'c'][i % 3] as string), new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())),
    }).batches[0] as arrow.RecordBatch
    schema ??= b.schema
    batches.push(new arrow.RecordBatch(schema, b.data))
  }
  return new arrow.Table(schema as arrow.Schema, batches)
}

const rowsOf = (t: arrow.Table) => t.toArray().map((r) => JSON.stringify(r.toJSON()))

for (const backend of BACKENDS) {
  test(`${backend}: tables are evicted and paged in column by column`, (t) => {
    const source = table(5000, 1024)
    const store = createStore({ residentBytes: 1 << 30, backend, pressure: false })
    store.set('t', source)
    const info = new Map(store).get('t')
    t.is(info?.kind, 'table')
    const total = info?.byteLength as number
    t.true(total > 5000 * 12)
    store.resize(0)
    t.is(store.residentBytes, 0)
    t.is(store.coldBytes, total)
    t.is(store.stats().pageOuts, 4, 'one pageout per column')
    store.resize(1 << 30)
    const prices = store.getTable('t', { columns: ['price'] }) as arrow.Table
    t.deepEqual(prices.schema.fields.map((f) => f.name), ['price'])
    t.deepEqual([...prices.getChild('price')!], [...source.getChild('price')!])
    t.is(store.stats().pageIns, 1, 'only the column asked for is paged in')
    t.true(store.residentBytes > 0 && store.residentBytes < total / 2)
    const some = store.getTable('t', { columns: ['name', 'id'], batches: [4, 1] }) as arrow.Table
    t.is(store.stats().pageIns, 1, 'with batches, cold columns are read for those batches and stay cold')
    t.deepEqual(rowsOf(some), rowsOf(new arrow.Table([source.batches[4]!, source.batches[1]!]).select(['name', 'id'])))
    const whole = store.get('t') as arrow.Table
    t.true(whole instanceof arrow.Table)
    t.deepEqual(rowsOf(whole), rowsOf(source))
    t.is(store.residentBytes, total)
    t.deepEqual(whole.schema.fields.map((f) => String(f.type)), source.schema.fields.map((f) => String(f.type)))
    store.dispose()
  })
}

test('under memory pressure (a fake PSI file) the store shrinks to half its budget, then to its held entries, and grows back', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-store-pressure-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'memory')
  const psi = (some: number, full: number) =>
    `some avg10=${some} avg60=0.00 avg300=0.00 total=1\nfull avg10=${full} avg60=0.00 avg300=0.00 total=1\n`
  writeFileSync(file, psi(0, 0))
  // Each stage waits (up to 30 s: the store samples once a second) for the store to react.
  const script = `
    const fs = require('node:fs')
    const { createStore } = require('coldpage')
    const psi = ${psi.toString()}
    const store = createStore({ residentBytes: 1 << 20, backend: 'file' })
    for (let i = 0; i < 8; i++) store.set('v' + i, Buffer.alloc(128 << 10, i))
    const held = store.hold('v7')
    const until = async (ok) => {
      for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 100))
      return store.stats()
    }
    ;(async () => {
      const out = [store.stats()]
      fs.writeFileSync(${JSON.stringify(file)}, psi(25, 0))
      out.push(await until(() => store.stats().pressure === 'moderate'))
      fs.writeFileSync(${JSON.stringify(file)}, psi(25, 12))
      out.push(await until(() => store.stats().pressure === 'critical'))
      fs.writeFileSync(${JSON.stringify(file)}, psi(0, 0))
      out.push(await until(() => store.stats().pressure === 'none'))
      for (let i = 0; i < 8; i++) store.get('v' + i)
      out.push(store.stats())
      const same = [0, 1, 2, 3, 4, 5, 6, 7].every((i) => store.get('v' + i).equals(Buffer.alloc(128 << 10, i)))
      held.dispose()
      store.dispose()
      console.log(JSON.stringify({ out, same }))
    })()
  `
  const r = await node(['-e', script], { COLDPAGE_PRESSURE_PSI: file })
  t.is(r.code, 0, r.stderr)
  const { out, same } = JSON.parse(r.stdout) as { out: StoreStats[]; same: boolean }
  const [calm, moderate, critical, after, refilled] = out as [StoreStats, StoreStats, StoreStats, StoreStats, StoreStats]
  t.is(calm.residentBytes, 1 << 20)
  t.is(moderate.pressure, 'moderate')
  t.is(moderate.effectiveBudgetBytes, 512 << 10)
  t.true(moderate.residentBytes <= 512 << 10, `moderate: ${moderate.residentBytes} resident`)
  t.is(critical.pressure, 'critical')
  t.is(critical.residentBytes, 128 << 10, 'critical: only the held entry stays resident')
  t.is(after.pressure, 'none')
  t.is(after.effectiveBudgetBytes, 1 << 20)
  t.is(refilled.residentBytes, 1 << 20, 'with the pressure gone, gets page entries back in up to the whole budget')
  t.true(same, 'every value reads back equal')
})

for (const backend of BACKENDS) {
  test(`${backend}: a store entry shared with a Worker reads there, and stays readable there after the store deletes it`, async (t) => {
    const store = createStore({ residentBytes: 1 << 20, backend, pressure: false })
    const value = bytes(300_000, 9)
    store.set('v', value)
    const token = store.share('v')
    t.truthy(token)
    t.is(store.share('missing'), undefined)
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads'); const coldpage = require('coldpage')
       const h = coldpage.open(workerData.token)
       parentPort.postMessage('opened')
       parentPort.once('message', () => { parentPort.postMessage(Buffer.from(h.readAt(0, h.byteLength)).toString('base64')); h.dispose() })`,
      { eval: true, workerData: { token } },
    )
    const exit = new Promise<number>((resolve) => w.once('exit', resolve))
    const next = () =>
      new Promise<unknown>((resolve, reject) => {
        w.once('message', resolve)
        w.once('error', reject)
        void exit.then((code) => reject(new Error(`the worker exited (${code}) before answering`)))
      })
    t.is(await next(), 'opened')
    store.delete('v')
    store.dispose()
    w.postMessage('read')
    t.true(Buffer.from((await next()) as string, 'base64').equals(value), 'the worker reads the bytes after the entry is gone')
    t.is(await exit, 0)
    const tables = createStore({ residentBytes: 1 << 20, pressure: false })
    tables.set('t', table(10, 10))
    throwsCode(t, () => tables.share('t'), 'ERR_INVALID_ARG_VALUE')
    tables.dispose()
  })
}

test.serial('the residentBytes config field replaces every store\'s budget, live, and null gives each its own back', (t) => {
  const a = createStore({ residentBytes: 1 << 20, backend: 'file', pressure: false })
  const b = createStore({ residentBytes: 1 << 20, backend: 'file', pressure: false })
  try {
    for (let i = 0; i < 8; i++) {
      a.set(`v${i}`, bytes(100_000, i + 1))
      b.set(`v${i}`, bytes(100_000, i + 11))
    }
    t.is(a.residentBytes, 800_000)
    configure({ residentBytes: 250_000 })
    for (const s of [a, b]) {
      t.is(s.stats().budgetBytes, 250_000)
      t.true(s.residentBytes <= 250_000, 'applied at once in this thread')
    }
    a.resize(2 << 20)
    t.is(a.stats().budgetBytes, 250_000, 'while the field is set, it is the budget in force')
    configure({ residentBytes: null })
    t.is(a.stats().budgetBytes, 2 << 20)
    t.is(b.stats().budgetBytes, 1 << 20)
    for (let i = 0; i < 8; i++) t.true((a.get(`v${i}`) as Buffer).equals(bytes(100_000, i + 1)))
    t.is(a.residentBytes, 800_000)
  } finally {
    configure({ residentBytes: null })
    a.dispose()
    b.dispose()
  }
})

for (const opts of [{ encrypt: true }, { compress: 'lz4' as const }, { encrypt: true, compress: 'lz4' as const }]) {
  test.serial(`a store over encoded scratch (${JSON.stringify(opts)}) keeps values equal through evictions and page-ins`, (t) => {
    const before = configure({})
    configure(opts)
    try {
      using store = createStore({ residentBytes: 150_000, backend: 'file', pressure: false })
      const values = Array.from({ length: 6 }, (_, i) => Buffer.concat([bytes(30_000, i + 1), Buffer.alloc(30_000, i)]))
      values.forEach((v, i) => store.set(`v${i}`, v))
      t.is(store.stats().pageOuts, 4, 'encoded handles give copies as views, so values are written when evicted, not at set')
      for (let round = 0; round < 2; round++) values.forEach((v, i) => t.true((store.get(`v${i}`) as Buffer).equals(v)))
      t.true(store.getRange('v0', 59_000, 1000)?.equals(values[0]!.subarray(59_000, 60_000)))
    } finally {
      configure({ encrypt: before.encrypt, compress: before.compress })
    }
  })
}
