// Property: any table apache-arrow can build (random schemas nested to depth 3,
// nulls, metadata, dictionaries, unions, zero rows/columns/batches) comes back
// value for value from read(), from any column/batch selection, and from take().
import { strict as assert } from 'node:assert'

import * as A from 'apache-arrow'
import test from 'ava'
import fc from 'fast-check'
import { pageoutTable, pageoutTableAsync } from 'coldpage/arrow'

import { buildTable, expectedSubset, tableSpecArb, tableValues } from './arrow-helpers.js'
import { BACKENDS } from './helpers.js'

const NUM_RUNS = Number(process.env.COLDPAGE_PROPERTY_RUNS ?? 80)

const hasDictionary = (type: A.DataType): boolean =>
  A.DataType.isDictionary(type) || (type.children ?? []).some((f: A.Field) => hasDictionary(f.type))

/**
 * The values of a table, or the error apache-arrow throws reading them (for a
 * few nested shapes, e.g. a timestamp in a map in a union, apache-arrow cannot
 * read back its own IPC output: then the read must fail the same way).
 */
function observe(table: A.Table): unknown {
  try {
    return tableValues(table)
  } catch (err) {
    return { throws: (err as Error).message }
  }
}

const sameBytes = (a: A.Table, b: A.Table) => Buffer.from(A.tableToIPC(a)).equals(Buffer.from(A.tableToIPC(b)))

/**
 * The reference a read is held to: the table as apache-arrow itself reads back
 * what it writes (for a few nested shapes its IPC round trip is not the
 * identity, e.g. binary inside a struct inside a sparse union). The reader's
 * placeholder batch of a batch-less stream is dropped.
 */
function viaIpc(table: A.Table): A.Table {
  const back = A.tableFromIPC(A.tableToIPC(table, 'stream'))
  const batches = back.batches.slice(0, table.batches.length)
  return new A.Table(
    table.schema,
    batches.map((b, i) => new A.RecordBatch(table.schema, b.data, new Map(table.batches[i]!.metadata))),
  )
}

/** A selection drawn from random numbers: column indexes (repeats allowed) and batch indexes in any order. */
function selection(table: A.Table, cs: number[], bs: number[]): { columns: number[]; batches: number[] } {
  const n = table.schema.fields.length
  const m = table.batches.length
  return {
    columns: n === 0 ? [] : cs.map((c) => c % n),
    batches: m === 0 ? [] : bs.map((b) => b % m),
  }
}

test('read(), random column/batch subsets and take() give the table back value for value', (t) => {
  fc.assert(
    fc.property(
      tableSpecArb,
      fc.array(fc.nat(), { maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      fc.constantFrom(...BACKENDS),
      (spec, cs, bs, backend) => {
        const table = buildTable(spec)
        const reference = viaIpc(table)
        const th = pageoutTable(table, { backend })
        try {
          assert.equal(th.numRows, table.numRows)
          assert.equal(th.numBatches, table.batches.length)

          const whole = th.read()
          assert.deepEqual(observe(whole), observe(reference))
          assert.ok(sameBytes(whole, reference), 'tableToIPC bytes of read() equal the reference')

          const { columns, batches } = selection(table, cs, bs)
          const names = columns.map((c) => table.schema.fields[c]!.name)
          const subset = th.read({ columns: names, batches })
          const expected = expectedSubset(reference, columns, batches)
          assert.deepEqual(observe(subset), observe(expected))
          const repeats = new Set(columns).size < columns.length || new Set(batches).size < batches.length
          if (!repeats && !columns.some((c) => hasDictionary(table.schema.fields[c]!.type))) {
            // With dictionaries the bytes may differ (a replayed dictionary can come
            // back as replacement + deltas), and apache-arrow's writer pads the same
            // Data written twice differently; the values above are what must match.
            assert.ok(sameBytes(subset, expected), 'tableToIPC bytes of the subset equal the expected subset')
          }

          const taken = th.take()
          assert.ok(th.disposed)
          assert.deepEqual(observe(taken), observe(reference))
          assert.ok(sameBytes(taken, reference), 'tableToIPC bytes of take() equal the reference')
        } finally {
          th.dispose()
        }
      },
    ),
    { numRuns: NUM_RUNS },
  )
  t.pass()
})

test('pageoutTableAsync + readAsync agree with the original', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      tableSpecArb,
      fc.array(fc.nat(), { maxLength: 4 }),
      fc.constantFrom(...BACKENDS),
      async (spec, cs, backend) => {
        const table = buildTable(spec)
        const reference = viaIpc(table)
        using th = await pageoutTableAsync(table, { backend })
        assert.deepEqual(observe(await th.readAsync()), observe(reference))
        const { columns } = selection(table, cs, [])
        const names = columns.map((c) => table.schema.fields[c]!.name)
        const all = table.batches.map((_, b) => b)
        const expected = expectedSubset(reference, columns, all)
        assert.deepEqual(observe(await th.readAsync({ columns: names })), observe(expected))
      },
    ),
    { numRuns: Math.ceil(NUM_RUNS / 4) },
  )
  t.pass()
})
