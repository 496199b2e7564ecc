// The store's budget counts memory really held: values that are views of a larger
// buffer (a table read from one file buffer) are copied into memory of their own when
// they stay resident; without `residentBytes` the budget is a quarter of the memory the
// process can use, from fake cgroup files (COLDPAGE_PRESSURE_CGROUP, read once per process:
// each case runs in a child process).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, totalmem } from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import * as arrow from 'apache-arrow'
import { createStore } from 'coldpage'

import { BACKENDS, node } from './helpers.js'

const MIB = 1 << 20

/** Every ArrayBuffer the buffers of `table` are views of. */
function backing(table: arrow.Table): Set<ArrayBufferLike> {
  const out = new Set<ArrayBufferLike>()
  const visit = (d: arrow.Data): void => {
    for (const v of [d.values, d.valueOffsets, d.nullBitmap] as (ArrayBufferView | undefined)[]) if (v && v.byteLength > 0) out.add(v.buffer)
    d.children.forEach(visit)
    d.dictionary?.data.forEach(visit)
  }
  for (const b of table.batches) b.data.children.forEach(visit)
  return out
}

/** A table of `columns` Float64 columns of `rows` rows, read from one IPC buffer (as apps open files). */
function fromOneBuffer(columns: number, rows: number): { table: arrow.Table; file: Uint8Array } {
  const cols: Record<string, Float64Array> = {}
  for (let c = 0; c < columns; c++) cols[`c${c}`] = Float64Array.from({ length: rows }, (_, i) => i * (c + 1))
  const file = arrow.tableToIPC(arrow.tableFromArrays(cols), 'file')
  return { table: arrow.tableFromIPC(file), file }
}

for (const backend of BACKENDS) {
  test(`${backend}: a resident column of a table read from one buffer no longer keeps that buffer alive`, (t) => {
    const { table, file } = fromOneBuffer(8, 128 * 1024) // 8 MiB of columns in one 8 MiB buffer
    t.deepEqual([...backing(table)], [file.buffer], 'every column is a view of the file')
    using store = createStore({ residentBytes: 3 * MIB, backend, pressure: false })
    store.set('t', table)
    // Two columns (1 MiB each) fit the budget and stay resident.
    t.true(store.residentBytes <= 3 * MIB, `${store.residentBytes}`)
    const resident = [...store][0]![1].residentBytes
    t.true(resident >= MIB, `${resident} resident`)
    const back = store.getTable('t', { columns: ['c7', 'c6'] }) as arrow.Table
    t.false(backing(back).has(file.buffer), 'the resident columns own their bytes')
    for (const b of backing(back)) t.true(b.byteLength <= 1.25 * 2 * MIB, `a backing buffer of ${b.byteLength} bytes`)
    t.deepEqual(back.getChild('c7')!.toArray(), table.getChild('c7')!.toArray())
  })
}

test('a column that owns its buffers is kept as it is, and counted for them', (t) => {
  const values = Float64Array.from({ length: 1000 }, (_, i) => i)
  const table = arrow.tableFromArrays({ x: values })
  using store = createStore({ residentBytes: MIB, pressure: false })
  store.set('t', table)
  t.is(store.residentBytes, values.byteLength)
  t.is((store.getTable('t') as arrow.Table).getChild('x')!.data[0]!.values.buffer, values.buffer, 'no copy')
})

test('a Buffer entry that is a small view of a large buffer is copied while resident', (t) => {
  const big = Buffer.alloc(4 * MIB, 7)
  using store = createStore({ residentBytes: MIB, backend: 'file', pressure: false })
  store.set('b', big.subarray(100, 1100))
  const got = store.get('b') as Buffer
  t.is(got.byteLength, 1000)
  t.true(got.buffer.byteLength < 2 * 1000 || got.buffer !== big.buffer, 'not a view of the 4 MiB buffer')
  t.not(got.buffer, big.buffer)
  t.true(got.every((x) => x === 7))
})

/** `store.stats()` of `createStore()` in a child process with `env`. */
async function defaultStats(env: Record<string, string>): Promise<{ budgetBytes: number; budgetSource: string }> {
  const script = `
    const { createStore } = require('coldpage')
    const s = createStore({ pressure: false }); const { budgetBytes, budgetSource } = s.stats(); s.dispose()
    console.log(JSON.stringify({ budgetBytes, budgetSource, total: require('node:os').totalmem() }))
  `
  const r = await node(['-e', script], env)
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as { budgetBytes: number; budgetSource: string }
}

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-budget-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('without residentBytes the budget is a quarter of a cgroup v2 limit', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'memory.current'), '1000\n')
  writeFileSync(path.join(dir, 'memory.max'), `${2 ** 30}\n`)
  writeFileSync(path.join(dir, 'memory.high'), 'max\n')
  t.deepEqual(await defaultStats({ COLDPAGE_PRESSURE_CGROUP: dir }), { budgetBytes: 2 ** 28, budgetSource: 'cgroup2', total: totalmem() } as never)
})

test('without residentBytes the budget is a quarter of a cgroup v1 limit', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'memory.usage_in_bytes'), '1000\n')
  writeFileSync(path.join(dir, 'memory.limit_in_bytes'), `${3 * 2 ** 30}\n`)
  const s = await defaultStats({ COLDPAGE_PRESSURE_CGROUP: dir })
  t.is(s.budgetBytes, 3 * 2 ** 28)
  t.is(s.budgetSource, 'cgroup1')
})

test('a cgroup without a limit (or above physical memory) gives a quarter of physical memory', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'memory.current'), '1000\n')
  writeFileSync(path.join(dir, 'memory.max'), 'max\n')
  const s = await defaultStats({ COLDPAGE_PRESSURE_CGROUP: dir })
  t.is(s.budgetBytes, Math.floor(totalmem() * 0.25))
  t.is(s.budgetSource, 'physical')
  writeFileSync(path.join(dir, 'memory.max'), `${totalmem() * 4}\n`)
  t.is((await defaultStats({ COLDPAGE_PRESSURE_CGROUP: dir })).budgetSource, 'physical')
})

test('a budget given, or set by resize, is the option', (t) => {
  using store = createStore({ residentBytes: 1234, pressure: false })
  t.like(store.stats(), { budgetBytes: 1234, budgetSource: 'option' })
  using auto = createStore({ pressure: false })
  t.not(auto.stats().budgetSource, 'option')
  auto.resize(99)
  t.like(auto.stats(), { budgetBytes: 99, budgetSource: 'option' })
})
