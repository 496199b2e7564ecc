// Record batches of a table read back (TableHandle.read, store.getTable) are made like
// the first batch rather than each through apache-arrow's constructor (lib/arrow/batches.ts):
// they must be batches that every apache-arrow API takes, for the copies we support.
import { createRequire } from 'node:module'

import * as A21 from 'apache-arrow'
import test from 'ava'
import { createStore } from 'coldpage'
import { pageoutTable } from 'coldpage/arrow'

const A17 = createRequire(import.meta.url)('apache-arrow-17') as typeof A21

/** 30 batches of 1-40 rows: ints, nullable strings, a dictionary column shared by every batch. */
function tableOf(A: typeof A21, withMetadata: boolean): A21.Table {
  const dictionary = A.vectorFromArray(['red', 'green', 'blue'], new A.Utf8())
  const type = new A.Dictionary(new A.Utf8(), new A.Int32(), 0)
  const batches: A21.RecordBatch[] = []
  for (let b = 0; b < 30; b++) {
    const rows = 1 + ((b * 7) % 40)
    const ids = Int32Array.from({ length: rows }, (_, i) => b * 1000 + i)
    const names = Array.from({ length: rows }, (_, i) => (i % 4 === 0 ? null : `n${b}-${i}`))
    const tags = Int32Array.from({ length: rows }, (_, i) => (b + i) % 3)
    const batch = new A.RecordBatch({
      id: A.makeData({ type: new A.Int32(), data: ids }),
      name: A.vectorFromArray(names, new A.Utf8()).data[0]!,
      tag: A.makeData({ type, data: tags, dictionary }),
    })
    batches.push(withMetadata && b % 5 === 0 ? new A.RecordBatch(batch.schema, batch.data, new Map([['batch', String(b)]])) : batch)
  }
  return new A.Table(batches)
}

/** Every batch of `back` is a batch of apache-arrow `A` that its APIs take, equal to `want`'s. */
function checkBatches(t: import('ava').ExecutionContext, A: typeof A21, back: A21.Table, want: A21.Table, withMetadata: boolean) {
  t.is(back.batches.length, want.batches.length)
  t.true(back instanceof A.Table)
  back.batches.forEach((batch, b) => {
    const expected = want.batches[b]!
    t.true(batch instanceof A.RecordBatch, `batch ${b} is a RecordBatch of the table's copy`)
    t.is(batch.numRows, expected.numRows)
    t.is(batch.numCols, expected.numCols)
    t.deepEqual(
      batch.schema.fields.map((f) => [f.name, String(f.type)]),
      expected.schema.fields.map((f) => [f.name, String(f.type)]),
    )
    if (withMetadata) t.deepEqual([...(batch.metadata ?? [])], [...(expected.metadata ?? [])], `batch ${b}'s metadata`)
    t.deepEqual(batch.toArray().map((row) => row.toJSON()), expected.toArray().map((row) => row.toJSON()))
    t.is(batch.dictionaries.size, expected.dictionaries.size, `batch ${b}'s dictionaries`)
    for (let c = 0; c < batch.numCols; c++) t.deepEqual([...batch.getChildAt(c)!], [...expected.getChildAt(c)!])
    t.deepEqual([...batch.selectAt([0]).getChildAt(0)!], [...expected.selectAt([0]).getChildAt(0)!])
    t.deepEqual([...batch.slice(1).getChild('id')!], [...expected.slice(1).getChild('id')!])
  })
  // Whole-table APIs over the batches: slicing across batches, IPC both ways, concat.
  t.deepEqual([...back.slice(5, 100).getChild('tag')!], [...want.slice(5, 100).getChild('tag')!])
  const again = A.tableFromIPC(A.tableToIPC(back, 'stream'))
  t.deepEqual(again.toArray().map((row) => row.toJSON()), want.toArray().map((row) => row.toJSON()))
  t.is(back.concat(back).numRows, 2 * want.numRows)
}

for (const [label, A, withMetadata] of [
  ['apache-arrow 21', A21, true],
  ['apache-arrow 17', A17, false],
] as const) {
  test(`${label}: batches of a table read back are real RecordBatches (TableHandle.read)`, (t) => {
    const table = tableOf(A, withMetadata)
    using th = pageoutTable(table, { backend: 'file' })
    checkBatches(t, A, th.read(), table, withMetadata)
    const picked = th.read({ columns: ['tag', 'id'] })
    checkBatches(t, A, picked.select(['id', 'tag']), table.select(['id', 'tag']), withMetadata)
    // The batches after the first share its schema: the fast path applies to this copy
    // (a future apache-arrow whose batches it does not recognise falls back to the
    // constructor for every batch, which is correct but slow; this line says so).
    t.true(picked.batches.every((batch) => batch.schema === picked.batches[0]!.schema), 'every batch made like the first')
  })

  test(`${label}: batches of a table from the store are real RecordBatches (getTable of resident and paged-in columns)`, (t) => {
    const table = tableOf(A, withMetadata)
    using store = createStore({ residentBytes: 1 << 20, backend: 'file', pressure: false })
    store.set('t', table)
    checkBatches(t, A, store.getTable('t') as A21.Table, table, withMetadata)
    store.resize(0) // every column paged out
    t.is(store.residentBytes, 0)
    store.resize(1 << 20)
    checkBatches(t, A, store.getTable('t') as A21.Table, table, withMetadata)
    const some = store.getTable('t', { columns: ['name'], batches: [4, 2] }) as A21.Table
    t.deepEqual([...some.getChild('name')!], [...table.batches[4]!.getChild('name')!, ...table.batches[2]!.getChild('name')!])
  })
}
