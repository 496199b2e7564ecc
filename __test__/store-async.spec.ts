// The store's async calls (SPEC "Async never holds the JS thread", Store): setAsync,
// getAsync, getRangeAsync and getTableAsync answer as the sync calls do, keep the
// budget while several run at once and beside sync calls, and an abort sets nothing
// and leaves no scratch bytes. Also the signals of pageoutTableAsync and
// TableHandle.readAsync. ava.copy-mode.config.mjs runs this file again in Electron's mode.
import { fc, testProp } from '@fast-check/ava'
import test from 'ava'
import * as arrow from 'apache-arrow'
import { type BackendName, type Store, createStore, stats } from 'coldpage'
import { pageoutTable, pageoutTableAsync } from 'coldpage/arrow'

import { BACKENDS, bytes, collectUntil, rejectsCode, throwsCode } from './helpers.js'

/** Live handles and scratch bytes: what an abort must not leave behind. */
function footprint() {
  const s = stats()
  return { handles: s.swap.handles + s.file.handles, bytes: s.swap.bytes + s.file.bytes }
}

/** The footprint once values handed out by earlier tests are collected. */
async function settled() {
  await collectUntil(() => false, 3)
  return footprint()
}

/** Whether the footprint comes back to `before` once what the test handed out is collected. */
function backTo(before: ReturnType<typeof footprint>): Promise<boolean> {
  return collectUntil(() => {
    const now = footprint()
    return now.handles === before.handles && now.bytes === before.bytes
  })
}

async function rejectsAbort(t: import('ava').ExecutionContext, p: Promise<unknown>): Promise<void> {
  const err = (await t.throwsAsync(p, { any: true })) as Error & { code?: string }
  t.is(err?.name, 'AbortError', String(err))
  t.is(err?.code, 'ABORT_ERR', String(err))
}

function f64Table(rows: number, seed: number, batches = 2): arrow.Table {
  const per = Math.ceil(rows / batches)
  const parts: arrow.Table[] = []
  for (let b = 0; b < batches; b++) {
    const n = Math.min(per, rows - b * per)
    parts.push(
      arrow.tableFromArrays({
        a: Float64Array.from({ length: n }, (_, i) => seed + b * per + i),
        b: Float64Array.from({ length: n }, (_, i) => seed * 2 + b * per + i),
        c: Int32Array.from({ length: n }, (_, i) => (seed + i) % 1000),
      }),
    )
  }
  return new arrow.Table(parts.flatMap((p) => p.batches))
}

/** Checks the bookkeeping a Map-like store promises: every byte counted once, the budget kept. */
function accounted(store: Store, budget: number, total: number): string | undefined {
  if (store.residentBytes + store.coldBytes !== total) return `${store.residentBytes} + ${store.coldBytes} accounted, ${total} stored`
  if (store.residentBytes > budget) return `${store.residentBytes} resident over a budget of ${budget}`
  let resident = 0
  for (const [, e] of store) resident += e.residentBytes
  if (resident !== store.residentBytes) return `entries hold ${resident}, the store counts ${store.residentBytes}`
  return undefined
}

type Op = { op: 'set'; key: number; size: number; seed: number } | { op: 'get'; key: number } | { op: 'range'; key: number; at: number; len: number } | { op: 'delete'; key: number }

const key = fc.integer({ min: 0, max: 5 })
const op = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('set' as const), key, size: fc.integer({ min: 0, max: 40_000 }), seed: fc.integer({ min: 1, max: 1 << 30 }) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('get' as const), key }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('range' as const), key, at: fc.nat(40_000), len: fc.nat(5_000) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), key }), weight: 1 },
)
/** Rounds of operations started together (on distinct keys, so a Map gives the one answer). */
const rounds = fc.array(fc.uniqueArray(op, { selector: (o) => o.key, maxLength: 4 }), { maxLength: 12 })

/** Runs rounds of async calls (a round's calls at once, plus a sync get of another key) against a Map. */
async function runModel(backend: BackendName, budget: number, script: Op[][]): Promise<string | true> {
  const store = createStore({ residentBytes: budget, backend, pressure: false })
  const model = new Map<string, Buffer>()
  try {
    for (const [r, round] of script.entries()) {
      const checks = round.map(async (s): Promise<string | undefined> => {
        const k = `k${s.key}`
        switch (s.op) {
          case 'set': {
            const value = bytes(s.size, s.seed)
            model.set(k, Buffer.from(value))
            await store.setAsync(k, value)
            return undefined
          }
          case 'get': {
            const want = model.get(k)
            const got = await store.getAsync(k)
            if (want === undefined ? got !== undefined : !(Buffer.isBuffer(got) && got.equals(want))) return `getAsync(${k}) differs`
            return undefined
          }
          case 'range': {
            const want = model.get(k)
            if (want === undefined) return (await store.getRangeAsync(k, 0, 0)) === undefined ? undefined : 'getRangeAsync of a missing key'
            if (s.at + s.len > want.length) {
              const err = await store.getRangeAsync(k, s.at, s.len).then(
                () => undefined,
                (e: { code?: string }) => e,
              )
              return err?.code === 'ERR_OUT_OF_RANGE' ? undefined : `getRangeAsync outside: ${String(err)}`
            }
            const got = await store.getRangeAsync(k, s.at, s.len)
            return got?.equals(want.subarray(s.at, s.at + s.len)) ? undefined : `getRangeAsync(${k}, ${s.at}, ${s.len}) differs`
          }
          case 'delete': {
            const had = model.delete(k)
            return store.delete(k) === had ? undefined : `delete(${k}) answered differently`
          }
        }
      })
      // A sync read of a key the round does not touch, while the round's page-outs run.
      const other = [...model.keys()].find((k) => !round.some((s) => `k${s.key}` === k))
      if (other !== undefined && !(store.get(other) as Buffer).equals(model.get(other) as Buffer)) return `round ${r}: sync get(${other}) differs`
      for (const failure of await Promise.all(checks)) if (failure !== undefined) return `round ${r}: ${failure}`
      let total = 0
      for (const v of model.values()) total += v.length
      if (store.size !== model.size) return `round ${r}: size ${store.size}, model ${model.size}`
      const wrong = accounted(store, budget, total)
      if (wrong !== undefined) return `round ${r}: ${wrong}`
    }
    for (const [k, v] of model) if (!((await store.getAsync(k)) as Buffer).equals(v)) return `end: getAsync(${k}) differs`
    return true
  } finally {
    store.dispose()
  }
}

for (const backend of BACKENDS) {
  testProp(
    `${backend}: async calls at once answer as a Map, keep the budget and account for every byte`,
    [fc.integer({ min: 0, max: 100_000 }), rounds],
    async (t, budget, script) => {
      t.is(await runModel(backend, budget, script), true)
    },
    { numRuns: 40 },
  )

  test.serial(`${backend}: setAsync of more than the budget pages the rest out and getAsync brings each value back`, async (t) => {
    const store = createStore({ residentBytes: 3 << 20, backend, pressure: false })
    const values = Array.from({ length: 8 }, (_, i) => bytes((1 << 20) + i * 4097, i + 1))
    await Promise.all(values.map((v, i) => store.setAsync(`v${i}`, v)))
    t.true(store.residentBytes <= 3 << 20, `${store.residentBytes} resident`)
    t.true(store.coldBytes > 0)
    t.true(store.stats().pageOuts > 0)
    for (const [i, v] of values.entries()) t.true(((await store.getAsync(`v${i}`)) as Buffer).equals(v), `v${i}`)
    t.true(store.residentBytes <= 3 << 20, `${store.residentBytes} resident after the reads`)
    // A cold value's range is read without paging it in.
    const cold = [...store].find(([, e]) => e.residentBytes === 0)
    t.truthy(cold, 'one value is cold')
    const [k] = cold as [string, unknown]
    const i = Number(k.slice(1))
    const pageIns = store.stats().pageIns
    t.true((await store.getRangeAsync(k, 1000, 5000))?.equals(values[i]!.subarray(1000, 6000)))
    t.is(store.stats().pageIns, pageIns)
    store.dispose()
  })

  test.serial(`${backend}: an aborted setAsync sets nothing and leaves no scratch bytes`, async (t) => {
    const store = createStore({ residentBytes: 1 << 20, backend, pressure: false })
    await store.setAsync('old', bytes(4096, 9))
    const before = await settled()
    await rejectsAbort(t, store.setAsync('new', bytes(3 << 20, 1), { signal: AbortSignal.abort() }))
    const c = new AbortController()
    const pending = store.setAsync('old', bytes(3 << 20, 2), { signal: c.signal })
    c.abort()
    await rejectsAbort(t, pending)
    t.false(store.has('new'))
    t.true((store.get('old') as Buffer).equals(bytes(4096, 9)), 'the value under the key stays')
    t.true(await backTo(before), JSON.stringify([footprint(), before]))
    store.dispose()
  })

  test.serial(`${backend}: a value transferred while setAsync runs rejects with ERR_INVALID_STATE and sets nothing`, async (t) => {
    const store = createStore({ residentBytes: 64 << 20, backend, pressure: false })
    await store.setAsync('k', bytes(4096, 1))
    const value = Buffer.alloc(16 << 20, 3)
    const pending = store.setAsync('k', value)
    structuredClone(value.buffer, { transfer: [value.buffer] })
    await rejectsCode(t, pending, 'ERR_INVALID_STATE')
    t.true((store.get('k') as Buffer).equals(bytes(4096, 1)), 'the value under the key stays')
    t.is(store.residentBytes + store.coldBytes, 4096)
    store.dispose()
  })

  test.serial(`${backend}: setAsync of a small view of a large buffer keeps a copy of its own; a transfer at any turn never stores wrong bytes`, async (t) => {
    const store = createStore({ residentBytes: 256 << 20, backend, pressure: false })
    const big = bytes(64 << 20, 5)
    const want = Buffer.from(big.subarray(0, 12 << 20))
    await store.setAsync('k', big.subarray(0, 12 << 20))
    const got = store.get('k') as Buffer
    t.not(got.buffer, big.buffer, 'the store does not keep the 64 MiB buffer alive for 12 MiB')
    structuredClone(big.buffer, { transfer: [big.buffer as ArrayBuffer] })
    t.true((store.get('k') as Buffer).equals(want), 'the caller giving its buffer away changes nothing stored')
    // The caller breaks the contract: the buffer goes while setAsync runs, after 0 to 7 turns.
    for (let turns = 0; turns < 8; turns++) {
      const mine = bytes(64 << 20, 6 + turns)
      const expect = Buffer.from(mine.subarray(0, 12 << 20))
      const pending = store.setAsync(`t${turns}`, mine.subarray(0, 12 << 20))
      for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
      structuredClone(mine.buffer, { transfer: [mine.buffer as ArrayBuffer] })
      try {
        await pending
        t.true((store.get(`t${turns}`) as Buffer).equals(expect), `stored after ${turns} turns: the right bytes`)
      } catch (err) {
        t.is((err as { code?: string }).code, 'ERR_INVALID_STATE', String(err))
        t.false(store.has(`t${turns}`), `refused after ${turns} turns: nothing stored`)
      }
    }
    store.dispose()
  })

  test.serial(`${backend}: a delete while setAsync pages a value out frees it; a sync get meanwhile reads it`, async (t) => {
    const before = await settled()
    const store = createStore({ residentBytes: 2 << 20, backend, pressure: false })
    const a = bytes(3 << 19, 1)
    const b = bytes(3 << 19, 2)
    store.set('a', a)
    store.set('b', b)
    const pending = store.setAsync('c', bytes(1 << 20, 3))
    t.true((store.get('a') as Buffer).equals(a), 'readable while its page-out runs')
    store.delete('b')
    await pending
    t.false(store.has('b'))
    t.true(((await store.getAsync('a')) as Buffer).equals(a))
    store.dispose()
    t.true(await backTo(before), JSON.stringify([footprint(), before]))
  })
}

test.serial('tables: setAsync and getTableAsync page columns out and in, columns and batches as getTable', async (t) => {
  const store = createStore({ residentBytes: 200_000, pressure: false })
  const tables = [f64Table(8000, 1), f64Table(6000, 2, 3), f64Table(9000, 3)]
  for (const [i, table] of tables.entries()) await store.setAsync(`t${i}`, table)
  t.true(store.residentBytes <= 200_000, `${store.residentBytes} resident`)
  t.true(store.coldBytes > 0)
  for (const [i, table] of tables.entries()) {
    const all = await store.getTableAsync<arrow.Table>(`t${i}`)
    t.deepEqual(all?.toArray().map((r) => r.toJSON()), table.toArray().map((r) => r.toJSON()), `t${i}`)
    const some = await store.getTableAsync<arrow.Table>(`t${i}`, { columns: ['c', 'a'], batches: [1] })
    t.deepEqual(some?.getChild('a')?.toArray(), table.batches[1]!.getChild('a')?.toArray())
    t.deepEqual(some?.schema.fields.map((f) => f.name), ['c', 'a'])
    t.true(store.residentBytes <= 200_000, `${store.residentBytes} resident after reading t${i}`)
  }
  const got = (await store.getAsync('t1')) as arrow.Table
  t.is(got.numRows, 6000)
  await rejectsCode(t, store.getTableAsync('t0', { columns: ['nope'] }), 'ERR_OUT_OF_RANGE')
  await rejectsAbort(t, store.getTableAsync('t0', { signal: AbortSignal.abort() }))
  store.dispose()
})

test('bad arguments of the async store calls are refused with codes', async (t) => {
  const store = createStore({ residentBytes: 1 << 20, pressure: false })
  await store.setAsync('buf', bytes(100, 1))
  await rejectsCode(t, store.setAsync('x', 42 as never), 'ERR_INVALID_ARG_TYPE')
  await rejectsCode(t, store.setAsync('x', bytes(1, 1), { signal: 'no' as never }), 'ERR_INVALID_ARG_TYPE')
  await rejectsCode(t, store.getAsync('buf', { sigmal: 1 } as never), 'ERR_INVALID_ARG_VALUE')
  await rejectsCode(t, store.getRangeAsync('buf', 90, 20), 'ERR_OUT_OF_RANGE')
  await rejectsCode(t, store.getTableAsync('buf'), 'ERR_INVALID_ARG_VALUE')
  t.is(await store.getAsync('missing'), undefined)
  t.is(await store.getTableAsync('missing'), undefined)
  store.dispose()
  await rejectsCode(t, store.getAsync('buf'), 'ERR_COLDPAGE_DISPOSED')
})

test.serial('pageoutTableAsync and TableHandle.readAsync take a signal; an abort stores nothing', async (t) => {
  const table = f64Table(50_000, 5)
  const before = await settled()
  await rejectsAbort(t, pageoutTableAsync(table, { signal: AbortSignal.abort() }))
  const c = new AbortController()
  const pending = pageoutTableAsync(table, { signal: c.signal })
  c.abort()
  await rejectsAbort(t, pending)
  t.true(await backTo(before), JSON.stringify([footprint(), before]))
  using th = await pageoutTableAsync(table, { signal: new AbortController().signal })
  await rejectsAbort(t, th.readAsync({ columns: ['a'], signal: AbortSignal.abort() }))
  await rejectsAbort(t, th.readIPCAsync({ signal: AbortSignal.abort() }))
  const got = await th.readAsync({ columns: ['b'], signal: new AbortController().signal })
  t.deepEqual(got.getChild('b')?.toArray(), table.getChild('b')?.toArray())
  throwsCode(t, () => pageoutTable(table, { signal: AbortSignal.abort() } as never), 'ERR_INVALID_ARG_VALUE')
  await rejectsCode(t, th.readAsync({ signal: 1 as never }), 'ERR_INVALID_ARG_TYPE')
})
