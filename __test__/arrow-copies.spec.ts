// Tables from another copy (and version) of apache-arrow than the one coldpage/arrow
// loads: accepted by shape, not `instanceof`, and read back as the caller's copy's
// Table. apache-arrow-17 is a real second install (npm:apache-arrow@17).
import { createRequire } from 'node:module'

import * as A21 from 'apache-arrow'
import test from 'ava'
import { pageoutTable } from 'coldpage/arrow'

import { BACKENDS } from './helpers.js'

// Loaded at run time and typed as the current API: apache-arrow 17's own .d.ts files
// do not compile against this project's TypeScript libs.
const A17 = createRequire(import.meta.url)('apache-arrow-17') as typeof A21
type T17 = A21.Table

function flat17(batches: number, rows: number): T17 {
  const out: A21.RecordBatch[] = []
  for (let b = 0; b < batches; b++) {
    const ids = Int32Array.from({ length: rows }, (_, i) => b * rows + i)
    const names = Array.from({ length: rows }, (_, i) => (i % 5 === 0 ? null : `n${b}-${i}`))
    out.push(new A17.RecordBatch({ id: A17.makeData({ type: new A17.Int32(), data: ids }), name: A17.vectorFromArray(names, new A17.Utf8()).data[0]! }))
  }
  return new A17.Table(out)
}

for (const backend of BACKENDS) {
  test(`${backend}: a Table of apache-arrow 17 pages out and comes back as an apache-arrow 17 Table`, (t) => {
    const table = flat17(40, 64)
    t.false(table instanceof A21.Table, 'really another copy')
    using th = pageoutTable(table, { backend })
    const back = th.read()
    t.true(back instanceof A17.Table, 'the caller’s own Table class')
    t.is(back.numRows, table.numRows)
    t.deepEqual(back.getChild('id')!.toArray(), table.getChild('id')!.toArray())
    t.deepEqual([...back.getChild('name')!], [...table.getChild('name')!])
    const some = th.read({ columns: ['name'], batches: [3, 0] })
    t.true(some instanceof A17.Table)
    t.deepEqual([...some.getChild('name')!], [...table.batches[3]!.getChild('name')!, ...table.batches[0]!.getChild('name')!])
  })

  test(`${backend}: a dictionary column of another copy round-trips when its module is passed`, (t) => {
    const dict = A17.vectorFromArray(['a', 'b', 'a', null, 'c'], new A17.Dictionary(new A17.Utf8(), new A17.Int32()))
    const table = new A17.Table({ d: dict })
    using th = pageoutTable(table, { backend, arrow: A17 })
    const back = th.read()
    t.true(back instanceof A17.Table)
    t.deepEqual([...back.getChild('d')!], ['a', 'b', 'a', null, 'c'])
  })
}
