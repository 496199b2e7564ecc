// Arrow from every engine: IPC bytes (stream and file format) and flechette tables in,
// IPC streams out (`readIPC`), read back by apache-arrow and by flechette; errors that
// name what was given and what is accepted.
import { createRequire } from 'node:module'

import test from 'ava'
import * as arrow from 'apache-arrow'
import { createStore } from 'coldpage'
import { pageoutTable, pageoutTableAsync } from 'coldpage/arrow'

import { BACKENDS, throwsCode } from './helpers.js'

const A17 = createRequire(import.meta.url)('apache-arrow-17') as typeof arrow

/** The part of flechette these tests use (loaded at run time: its .d.ts files do not compile under this project's strict settings). */
interface FlechetteTable {
  readonly schema: { readonly fields: readonly unknown[] }
  readonly children: readonly unknown[]
  toArray(): unknown[]
  getChild(name: string): { toArray(): unknown[] | ArrayLike<unknown> }
}
const flechette = createRequire(import.meta.url)('@uwdata/flechette') as {
  tableFromIPC(bytes: Uint8Array): FlechetteTable
  tableFromArrays(columns: Record<string, unknown>): FlechetteTable
}

/** `n` batches of `rows` rows: ints, floats with nulls, strings with nulls, a dictionary column. */
function mixed(n: number, rows: number): arrow.Table {
  const batches: arrow.RecordBatch[] = []
  let schema: arrow.Schema | undefined
  // One dictionary for every batch (the file format has no replacement dictionaries).
  const tagType = new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())
  const colours = arrow.vectorFromArray(['red', 'green', 'blue'], new arrow.Utf8())
  for (let b = 0; b < n; b++) {
    const base = b * rows
    const t = new arrow.Table({
      id: arrow.makeVector(Int32Array.from({ length: rows }, (_, i) => base + i)),
      price: arrow.vectorFromArray(Array.from({ length: rows }, (_, i) => ((base + i) % 7 === 0 ? null : (base + i) * 0.25)), new arrow.Float64()),
      name: arrow.vectorFromArray(Array.from({ length: rows }, (_, i) => ((base + i) % 5 === 0 ? null : `n${base + i}`)), new arrow.Utf8()),
      tag: arrow.makeVector(arrow.makeData({ type: tagType, length: rows, data: Int32Array.from({ length: rows }, (_, i) => (base + i) % 3), dictionary: colours })),
    })
    const batch = t.batches[0] as arrow.RecordBatch
    schema ??= batch.schema
    batches.push(new arrow.RecordBatch(schema, batch.data))
  }
  return new arrow.Table(schema as arrow.Schema, batches)
}

/** The rows of any table (apache-arrow's or flechette's) as plain JSON. */
function rows(table: { toArray(): unknown[] }): string[] {
  return table.toArray().map((r) => JSON.stringify(typeof (r as { toJSON?: unknown }).toJSON === 'function' ? (r as { toJSON(): unknown }).toJSON() : r))
}

for (const backend of BACKENDS) {
  for (const format of ['stream', 'file'] as const) {
    test(`${backend}: IPC bytes in the ${format} format page out and read back exactly`, async (t) => {
      const source = mixed(200, 16)
      const bytes = arrow.tableToIPC(source, format)
      using th = pageoutTable(bytes, { backend })
      t.is(th.numBatches, 200)
      t.deepEqual(rows(th.read()), rows(source))
      t.deepEqual(rows(th.read({ columns: ['tag', 'price'], batches: [7, 3] })), rows(new arrow.Table([source.batches[7]!, source.batches[3]!]).select(['tag', 'price'])))
      using again = await pageoutTableAsync([bytes.subarray(0, 100), bytes.subarray(100)], { backend })
      t.deepEqual(rows(again.read()), rows(source), 'chunks are concatenated')
    })
  }

  test(`${backend}: readIPC returns a stream that apache-arrow and flechette read`, async (t) => {
    const source = mixed(50, 32)
    using th = pageoutTable(source, { backend })
    const all = th.readIPC()
    t.true(all instanceof Uint8Array)
    t.deepEqual(rows(arrow.tableFromIPC(all)), rows(source))
    const ft = flechette.tableFromIPC(all)
    t.deepEqual(ft.toArray().map((r) => JSON.stringify(r)), rows(source))
    const some = await th.readIPCAsync({ columns: ['name', 'id'], batches: [9, 2] })
    const expected = new arrow.Table([source.batches[9]!, source.batches[2]!]).select(['name', 'id'])
    t.deepEqual(rows(arrow.tableFromIPC(some)), rows(expected))
    t.deepEqual(flechette.tableFromIPC(some).toArray().map((r) => JSON.stringify(r)), rows(expected))
    const none = arrow.tableFromIPC(th.readIPC({ batches: [] }))
    t.deepEqual(none.schema.fields.map((f) => f.name), ['id', 'price', 'name', 'tag'])
    t.is(none.numRows, 0)
  })

  test(`${backend}: a flechette table pages out and round-trips (readIPC back to flechette)`, (t) => {
    const ft = flechette.tableFromArrays({
      id: Int32Array.from({ length: 1000 }, (_, i) => i),
      name: Array.from({ length: 1000 }, (_, i) => (i % 9 === 0 ? null : `row ${i}`)),
      score: Float64Array.from({ length: 1000 }, (_, i) => i / 3),
    })
    using th = pageoutTable(ft, { backend })
    t.is(th.numRows, 1000)
    const back = flechette.tableFromIPC(th.readIPC())
    t.deepEqual(back.toArray(), ft.toArray())
    t.deepEqual(flechette.tableFromIPC(th.readIPC({ columns: ['score'] })).getChild('score').toArray(), ft.getChild('score').toArray())
    t.deepEqual([...th.read({ columns: ['name'] }).getChild('name')!], ft.getChild('name').toArray())
  })

  test(`${backend}: the store takes IPC bytes (as: 'table') and flechette tables`, (t) => {
    using store = createStore({ residentBytes: 1 << 30, backend, pressure: false })
    const source = mixed(300, 8)
    store.set('ipc', arrow.tableToIPC(source, 'file'), { as: 'table' })
    store.set('bytes', arrow.tableToIPC(source, 'stream'))
    t.true(Buffer.isBuffer(store.get('bytes')), 'without as: table, bytes stay a Buffer entry')
    const ft = flechette.tableFromArrays({ x: Float64Array.from({ length: 500 }, (_, i) => i * 1.5), s: Array.from({ length: 500 }, (_, i) => `s${i % 17}`) })
    store.set('flechette', ft)
    store.resize(0)
    store.resize(1 << 30)
    t.deepEqual(rows(store.getTable('ipc') as arrow.Table), rows(source))
    t.deepEqual(rows(store.getTable('ipc', { columns: ['tag'], batches: [299] }) as arrow.Table), rows(new arrow.Table([source.batches[299]!]).select(['tag'])))
    t.deepEqual([...(store.getTable('flechette', { columns: ['s'] }) as arrow.Table).getChild('s')!], ft.getChild('s').toArray())
  })
}

test('readIPC of a table of another apache-arrow copy given without its module', (t) => {
  const t17 = new A17.Table({ id: A17.makeData({ type: new A17.Int64(), data: BigInt64Array.from({ length: 100 }, (_, i) => BigInt(i) << 40n) }), when: A17.vectorFromArray(Array.from({ length: 100 }, (_, i) => i * 86_400_000), new A17.DateMillisecond()).data[0]! })
  t.false(t17 instanceof arrow.Table)
  using th = pageoutTable(t17)
  const back = arrow.tableFromIPC(th.readIPC())
  t.deepEqual(back.getChild('id')!.toArray(), t17.getChild('id')!.toArray())
  const when = (bytes: Uint8Array) => flechette.tableFromIPC(bytes).getChild('when').toArray()
  t.deepEqual(when(th.readIPC({ columns: ['when'] })), when(A17.tableToIPC(t17)))
})

test('errors name what was given and what is accepted', (t) => {
  const err = t.throws(() => pageoutTable({ schema: {}, rows: [] } as never)) as Error & { code: string }
  t.is(err.code, 'ERR_INVALID_ARG_TYPE')
  t.regex(err.message, /apache-arrow Table.*flechette Table.*Arrow IPC bytes/)
  t.regex(err.message, /got an instance of Object/)
  throwsCode(t, () => pageoutTable('x' as never), 'ERR_INVALID_ARG_TYPE')
  const bad = t.throws(() => pageoutTable(Buffer.from('certainly not an Arrow stream'))) as Error & { code: string }
  t.is(bad.code, 'ERR_INVALID_ARG_VALUE')
  t.regex(bad.message, /Arrow IPC bytes \(stream or file format\)/)
  throwsCode(t, () => pageoutTable(new Uint8Array(0)), 'ERR_INVALID_ARG_VALUE')
  using store = createStore({ residentBytes: 1 << 20, pressure: false })
  const s = t.throws(() => store.set('k', { a: 1 } as never)) as Error & { code: string }
  t.is(s.code, 'ERR_INVALID_ARG_TYPE')
  t.regex(s.message, /bytes .*apache-arrow Table.*flechette Table/)
  throwsCode(t, () => store.set('k', Buffer.from('nope'), { as: 'table' }), 'ERR_INVALID_ARG_VALUE')
  throwsCode(t, () => store.set('k', Buffer.from('nope'), { as: 'tabel' as never }), 'ERR_INVALID_ARG_VALUE')
})
