// Dictionary columns whose batches share one dictionary (the shape apache-arrow's
// IPC reader gives: one dictionary message, many record batches) are paged out as
// their indices plus the dictionary's values: every value, null and batch
// selection reads back as written, and tables of other shapes still round-trip.
import test from 'ava'
import * as arrow from 'apache-arrow'
import { pageoutTable, pageoutTableAsync } from 'coldpage/arrow'

import { BACKENDS } from './helpers.js'

const words = Array.from({ length: 37 }, (_, i) => (i === 5 ? null : `word ${i} ${'x'.repeat(i)}`))

/** A table of `batches` batches of `rows` rows whose `sym` column shares one dictionary. */
function shared(batches: number, rows: number): arrow.Table {
  const n = batches * rows
  const sym = arrow.vectorFromArray(
    Array.from({ length: n }, (_, i) => (i % 11 === 3 ? null : words[(i * 7) % words.length])),
    new arrow.Dictionary(new arrow.Utf8(), new arrow.Int16()),
  )
  const id = arrow.vectorFromArray(Int32Array.from({ length: n }, (_, i) => i))
  const whole = new arrow.Table({ sym, id })
  const parts: arrow.RecordBatch[] = []
  for (let b = 0; b < batches; b++) parts.push(...whole.slice(b * rows, (b + 1) * rows).batches)
  // Through IPC: offsets 0 and one dictionary object for every batch, as a file read gives.
  return arrow.tableFromIPC(arrow.tableToIPC(new arrow.Table(parts)))
}

const values = (t: arrow.Table, name: string) => t.getChild(name)?.toArray() as unknown[]

for (const backend of BACKENDS) {
  test(`${backend}: a dictionary shared by 500 batches reads back value for value, whole and by batches`, async (t) => {
    const table = shared(500, 13)
    t.is(new Set(table.batches.map((b) => b.getChild('sym')?.data[0]?.dictionary)).size, 1, 'one dictionary object')
    using th = pageoutTable(table, { backend })
    const all = th.read()
    t.deepEqual(values(all, 'sym'), values(table, 'sym'))
    t.deepEqual(values(all, 'id'), values(table, 'id'))
    t.is(all.getChild('sym')?.nullCount, table.getChild('sym')?.nullCount)
    t.true(arrow.DataType.isDictionary(all.schema.fields[0]?.type))
    const some = await th.readAsync({ columns: ['sym'], batches: [499, 0, 250] })
    const want = [499, 0, 250].flatMap((b) => values(new arrow.Table([table.batches[b] as arrow.RecordBatch]), 'sym'))
    t.deepEqual(values(some, 'sym'), want)
    t.deepEqual(values(arrow.tableFromIPC(th.readIPC({ columns: ['sym'] })), 'sym'), values(table, 'sym'))
    t.is(th.read({ batches: [] }).numRows, 0)
  })

  test(`${backend}: dictionaries that differ between batches, and sliced batches, still round-trip`, async (t) => {
    const type = new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())
    const a = new arrow.Table({ sym: arrow.vectorFromArray(['a', 'b', 'a'], type) })
    const b = new arrow.Table({ sym: arrow.vectorFromArray(['c', null, 'd'], type) })
    const differ = new arrow.Table([...a.batches, ...b.batches])
    using th = await pageoutTableAsync(differ, { backend })
    t.deepEqual(values(th.read(), 'sym'), ['a', 'b', 'a', 'c', null, 'd'])
    const sliced = shared(4, 10).slice(5, 33)
    using th2 = pageoutTable(sliced, { backend })
    t.deepEqual(values(th2.read(), 'sym'), values(sliced, 'sym'))
  })
}
