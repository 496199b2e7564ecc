// coldpage/arrow on both backends: selection, column-selective paging (from
// stats()), zero-copy decoding, dictionaries that change between batches,
// degenerate tables, metadata, errors and lifetimes. The random-schema property
// is in arrow-property.spec.ts.
import * as A from 'apache-arrow'
import test from 'ava'
import { stats, zeroCopySupported } from 'coldpage'
import { TableHandle, pageoutTable, pageoutTableAsync } from 'coldpage/arrow'

import { expectedSubset, tableValues } from './arrow-helpers.js'
import { BACKENDS, node, rejectsCode, throwsCode } from './helpers.js'

const FORCED_COPY = process.env.COLDPAGE_NO_EXTERNAL_BUFFERS === '1'

const ipc = (t: A.Table) => Buffer.from(A.tableToIPC(t, 'stream'))

/** `n` equal-width Float64 columns `c0..`, in `batches` batches of `rows` rows. */
function wideTable(n: number, batches: number, rows: number): A.Table {
  const out: A.RecordBatch[] = []
  for (let b = 0; b < batches; b++) {
    const columns: Record<string, A.Vector> = {}
    for (let c = 0; c < n; c++) {
      columns[`c${c}`] = A.makeVector(Float64Array.from({ length: rows }, (_, i) => c * 1e6 + b * rows + i))
    }
    out.push(...new A.Table(columns).batches)
  }
  return new A.Table(out)
}

/** A dictionary column whose dictionary grows by a delta, is replaced, and grows again. */
function changingDictionaryTable(): A.Table {
  const utf8 = (xs: string[]) => A.vectorFromArray(xs, new A.Utf8())
  const type = new A.Dictionary(new A.Utf8(), new A.Int32())
  const d0 = utf8(['a', 'b'])
  const d1 = d0.concat(utf8(['c'])) // shares d0's first chunk: written as a delta
  const d2 = utf8(['x', 'y']) // a replacement
  const d3 = d2.concat(utf8(['z'])) // a delta on the replacement
  const field = new A.Field('d', type, true)
  const ints = new A.Field('i', new A.Int32(), true)
  const schema = new A.Schema([field, ints])
  const struct = new A.Struct([field, ints])
  const batch = (dictionary: A.Vector, keys: number[]) => {
    const d = A.makeData({ type, length: keys.length, nullCount: 0, data: Int32Array.from(keys), dictionary })
    const i = A.makeData({ type: new A.Int32(), length: keys.length, nullCount: 0, data: Int32Array.from(keys) })
    return new A.RecordBatch(schema, A.makeData({ type: struct, length: keys.length, nullCount: 0, children: [d, i] }))
  }
  return new A.Table(schema, [batch(d0, [0, 1, 0]), batch(d1, [2, 0]), batch(d2, [1, 0, 1]), batch(d3, [2, 2, 0])])
}

test('the dictionary fixture really changes its dictionary between batches', (t) => {
  const reader = new A.MessageReader(ipc(changingDictionaryTable()))
  const dictionaries: boolean[] = []
  for (const message of reader) {
    if (message.isDictionaryBatch()) dictionaries.push(message.header().isDelta)
    reader.readMessageBody(message.bodyLength)
  }
  t.deepEqual(dictionaries, [false, true, false, true])
})

for (const backend of BACKENDS) {
  test(`${backend}: read() gives back the table, schema and metadata; take() too, and disposes`, (t) => {
    const base = wideTable(3, 4, 100)
    const schema = new A.Schema(
      base.schema.fields.map((f, i) => f.clone({ metadata: new Map([['unit', `u${i}`]]) })),
      new Map([['origin', 'test']]),
    )
    const table = new A.Table(
      schema,
      base.batches.map((b, i) => new A.RecordBatch(schema, b.data, new Map([['batch', String(i)]]))),
    )
    const th = pageoutTable(table, { backend })
    t.true(th instanceof TableHandle)
    t.is(th.numRows, 400)
    t.is(th.numBatches, 4)
    t.is(th.schema, table.schema)
    t.true(th.byteLength >= 400 * 3 * 8)
    t.false(th.disposed)
    const whole = th.read()
    t.deepEqual(ipc(whole), ipc(table))
    t.deepEqual([...whole.schema.metadata], [['origin', 'test']])
    t.deepEqual([...whole.schema.fields[2]!.metadata], [['unit', 'u2']])
    t.deepEqual([...whole.batches[3]!.metadata], [['batch', '3']])
    const taken = th.take()
    t.true(th.disposed)
    t.deepEqual(ipc(taken), ipc(table))
  })

  test(`${backend}: columns come back in the requested order, batches as selected`, (t) => {
    const table = wideTable(4, 5, 50)
    using th = pageoutTable(table, { backend })
    const got = th.read({ columns: ['c3', 'c0', 'c3'], batches: [4, 1, 1] })
    t.deepEqual(
      got.schema.fields.map((f) => f.name),
      ['c3', 'c0', 'c3'],
    )
    t.deepEqual(ipc(got), ipc(expectedSubset(table, [3, 0, 3], [4, 1, 1])))
    t.deepEqual(got.getChildAt(1)!.toArray().slice(0, 2), Float64Array.of(200, 201))
    t.is(th.read({ columns: [] }).numCols, 0)
    t.is(th.read({ columns: [] }).numRows, 250)
    t.is(th.read({ batches: [] }).numRows, 0)
    t.deepEqual(
      th.read({ batches: [] }).schema.fields.map((f) => f.name),
      ['c0', 'c1', 'c2', 'c3'],
    )
  })

  test(`${backend}: reading 1 of N equal columns pages in at most 1/N of the bytes + 1%`, (t) => {
    const n = 8
    const table = wideTable(n, 4, 32_768) // 8 columns of 1 MiB
    using th = pageoutTable(table, { backend })
    const before = stats().bytesRead
    const one = th.read({ columns: ['c5'] })
    const read = stats().bytesRead - before
    t.true(read <= th.byteLength / n + th.byteLength * 0.01, `read ${read} of ${th.byteLength}`)
    t.true(read >= 4 * 32_768 * 8, `read ${read}: at least the column's values`)
    t.deepEqual(ipc(one), ipc(expectedSubset(table, [5], [0, 1, 2, 3])))

    const before2 = stats().bytesRead
    th.read({ columns: ['c5'], batches: [2] })
    const read2 = stats().bytesRead - before2
    t.true(read2 <= th.byteLength / n / 4 + th.byteLength * 0.01, `one batch: read ${read2}`)

    const before3 = stats().bytesRead
    th.read()
    t.true(stats().bytesRead - before3 <= th.byteLength)
  })

  test(`${backend}: decoded columns are views of the Buffer read back, not copies`, (t) => {
    const ints = A.makeVector(BigInt64Array.from({ length: 1000 }, (_, i) => BigInt(i)))
    const table = new A.Table([
      ...new A.Table({ a: ints.slice(0, 500), b: A.makeVector(Float64Array.from({ length: 500 }, (_, i) => i)) }).batches,
      ...new A.Table({ a: ints.slice(500), b: A.makeVector(Float64Array.from({ length: 500 }, (_, i) => -i)) }).batches,
    ])
    using th = pageoutTable(table, { backend })
    const col = th.read({ columns: ['a'] }).getChild('a')!
    t.is(col.data.length, 2)
    const [d0, d1] = col.data as [A.Data, A.Data]
    // Both batches' values sit in the one Buffer the vectored read returned for
    // the column: a copy would have given each batch a tight ArrayBuffer of its own.
    t.is(d0.values.buffer, d1.values.buffer)
    t.true(d0.values.buffer.byteLength >= 1000 * 8)
    t.not(d0.values.byteOffset, d1.values.byteOffset)
    for (const d of [d0, d1]) t.is(d.values.byteOffset % 64, 0, 'bodies are 64-byte aligned')
    t.is(col.get(999), 999n)
  })

  test(`${backend}: dictionaries that change between batches (deltas, replacements) survive any selection`, (t) => {
    const table = changingDictionaryTable()
    using th = pageoutTable(table, { backend })
    t.deepEqual(ipc(th.read()), ipc(table))
    const cases = [[0], [1], [2], [3], [3, 1], [1, 3], [3, 2, 1, 0], [0, 0, 3, 3], [2, 1, 2], [1, 2, 3]]
    for (const batches of cases) {
      const got = th.read({ columns: ['d'], batches })
      t.deepEqual(tableValues(got), tableValues(expectedSubset(table, [0], batches)), `batches ${batches}`)
      t.deepEqual(
        [...got.getChild('d')!],
        batches.flatMap((b) => [...table.batches[b]!.getChild('d')!]),
      )
    }
  })

  test(`${backend}: zero rows, zero batches and zero columns round-trip`, (t) => {
    const schema = new A.Schema([new A.Field('x', new A.Utf8(), true)], new Map([['k', 'v']]))
    const noBatches = new A.Table(schema)
    using a = pageoutTable(noBatches, { backend })
    t.is(a.numBatches, 0)
    t.is(a.numRows, 0)
    const readA = a.read()
    t.is(readA.numRows, 0)
    t.is(readA.batches.length, 0)
    t.deepEqual([...readA.schema.metadata], [['k', 'v']])
    throwsCode(t, () => a.read({ batches: [0] }), 'ERR_OUT_OF_RANGE', RangeError)

    const oneEmpty = new A.Table(schema, [new A.RecordBatch(schema, A.makeData({ type: new A.Struct(schema.fields), length: 0, nullCount: 0, children: [A.makeData({ type: new A.Utf8(), length: 0, nullCount: 0 })] }))])
    using b = pageoutTable(oneEmpty, { backend })
    t.is(b.numBatches, 1)
    t.deepEqual(ipc(b.read()), ipc(oneEmpty))

    const empty = new A.Schema([])
    const noColumns = new A.Table(empty, [
      new A.RecordBatch(empty, A.makeData({ type: new A.Struct([]), length: 5, nullCount: 0, children: [] })),
      new A.RecordBatch(empty, A.makeData({ type: new A.Struct([]), length: 2, nullCount: 0, children: [] })),
    ])
    using c = pageoutTable(noColumns, { backend })
    t.is(c.numRows, 7)
    const before = stats().bytesRead
    const readC = c.take()
    t.is(stats().bytesRead, before, 'nothing to page in')
    t.is(readC.numRows, 7)
    t.deepEqual(
      readC.batches.map((x) => x.numRows),
      [5, 2],
    )
  })

  test(`${backend}: null and all-null columns`, (t) => {
    const table = new A.Table({
      n: A.makeData({ type: new A.Null(), length: 4, nullCount: 4 }) as unknown as A.Vector,
      s: A.vectorFromArray([null, null, null, null], new A.Utf8()),
      i: A.vectorFromArray([1, null, 3, null], new A.Int16()),
    } as unknown as Record<string, A.Vector>)
    using th = pageoutTable(table, { backend })
    const got = th.read({ columns: ['s', 'n', 'i'] })
    t.deepEqual([...got.getChild('n')!], [null, null, null, null])
    t.deepEqual([...got.getChild('s')!], [null, null, null, null])
    t.deepEqual([...got.getChild('i')!], [1, null, 3, null])
    t.is(got.getChild('s')!.nullCount, 4)
  })

  test(`${backend}: async pageout and read agree with sync`, async (t) => {
    const table = wideTable(3, 3, 1000)
    await using th = await pageoutTableAsync(table, { backend })
    t.deepEqual(ipc(await th.readAsync()), ipc(table))
    t.deepEqual(ipc(await th.readAsync({ columns: ['c2'], batches: [2, 0] })), ipc(th.read({ columns: ['c2'], batches: [2, 0] })))
    th.dispose()
    await rejectsCode(t, th.readAsync(), 'ERR_COLDPAGE_DISPOSED')
  })

  test(`${backend}: tables read stay valid after the handle is disposed`, (t) => {
    const table = wideTable(2, 2, 100)
    const th = pageoutTable(table, { backend })
    const got = th.read({ columns: ['c1'] })
    th.dispose()
    th.dispose()
    t.true(th.disposed)
    t.deepEqual(ipc(got), ipc(expectedSubset(table, [1], [0, 1])))
    throwsCode(t, () => th.read(), 'ERR_COLDPAGE_DISPOSED')
    throwsCode(t, () => th.take(), 'ERR_COLDPAGE_DISPOSED')
  })
}

test('unknown columns and batches are ERR_OUT_OF_RANGE naming the culprit', (t) => {
  using th = pageoutTable(wideTable(2, 3, 10))
  const col = t.throws(() => th.read({ columns: ['c0', 'nope'] }), { instanceOf: RangeError }) as Error & { code: string }
  t.is(col.code, 'ERR_OUT_OF_RANGE')
  t.regex(col.message, /opts\.columns\[1\].*nope/)
  for (const bad of [3, -1, 1.5, Number.NaN]) {
    const err = t.throws(() => th.read({ batches: [0, bad] }), { instanceOf: RangeError }) as Error & { code: string }
    t.is(err.code, 'ERR_OUT_OF_RANGE')
    t.regex(err.message, /opts\.batches\[1\]/)
  }
  throwsCode(t, () => th.read({ columns: 'c0' as unknown as string[] }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => th.read({ columns: [1 as unknown as string] }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => th.read({ batches: ['0' as unknown as number] }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => th.read(5 as unknown as object), 'ERR_INVALID_ARG_TYPE', TypeError)
})

test('pageoutTable checks its arguments', async (t) => {
  const table = wideTable(1, 1, 3)
  throwsCode(t, () => pageoutTable({} as A.Table), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => pageoutTable(null as unknown as A.Table), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => pageoutTable(table, { backend: 'disk' as 'file' }), 'ERR_INVALID_ARG_VALUE', TypeError)
  await rejectsCode(t, pageoutTableAsync({} as A.Table), 'ERR_INVALID_ARG_TYPE')
  t.throws(() => new (TableHandle as unknown as new () => unknown)(), { instanceOf: TypeError })
})

test('every type in one table, with nulls, many batches', (t) => {
  const f = (name: string, type: A.DataType) => new A.Field(name, type, true)
  const types: A.DataType[] = [
    new A.Int8(), new A.Uint64(), new A.Float16(), new A.Float32(), new A.Bool(), new A.Utf8(), new A.LargeUtf8(),
    new A.Binary(), new A.LargeBinary(), new A.FixedSizeBinary(3), new A.DateDay(), new A.DateMillisecond(),
    new A.TimeNanosecond(), new A.TimestampMicrosecond('Asia/Tokyo'), new A.TimestampSecond(), new A.DurationNanosecond(),
    new A.IntervalYearMonth(), new A.IntervalDayTime(), new A.IntervalMonthDayNano(), new A.Decimal(3, 20, 128),
    new A.Decimal(2, 60, 256), new A.List(f('item', new A.Int32())), new A.LargeList(f('item', new A.Utf8())),
    new A.FixedSizeList(2, f('item', new A.Float64())), new A.Struct([f('a', new A.Int32()), f('b', new A.Utf8())]),
    new A.Map_(new A.Field('entries', new A.Struct([new A.Field('key', new A.Utf8(), false), f('value', new A.Int32())]), false) as A.Field<A.Struct>),
    new A.Dictionary(new A.Utf8(), new A.Int16()), new A.Null(),
  ]
  const fields = types.map((type, i) => f(`t${i}`, type))
  const schema = new A.Schema(fields)
  // Zero-filled buffers of the right shapes: every type, every null pattern the IPC writer must keep.
  const batches = [0, 3, 7].map((rows) => {
    const children = types.map((type) => {
      const builder = A.makeBuilder({ type, nullValues: [null] })
      for (let i = 0; i < rows; i++) builder.append(i % 3 === 1 ? null : sample(type, i))
      return builder.finish().flush()
    })
    return new A.RecordBatch(schema, A.makeData({ type: new A.Struct(fields), length: rows, nullCount: 0, children }))
  })
  const table = new A.Table(schema, batches)
  for (const backend of BACKENDS) {
    using th = pageoutTable(table, { backend })
    t.deepEqual(ipc(th.read()), ipc(table), backend)
    const names = fields.map((x) => x.name).reverse()
    t.deepEqual(tableValues(th.read({ columns: names, batches: [2, 1] })), tableValues(expectedSubset(table, fields.map((_, i) => i).reverse(), [2, 1])))
  }
})

/** A non-null sample value of `type` for row `i`. */
function sample(type: A.DataType, i: number): unknown {
  if (A.DataType.isInt(type)) return type.bitWidth === 64 ? BigInt(i) : i
  if (A.DataType.isFloat(type)) return i / 2
  if (A.DataType.isBool(type)) return i % 2 === 0
  if (A.DataType.isUtf8(type) || A.DataType.isLargeUtf8(type)) return `s${i}`
  if (A.DataType.isDictionary(type)) return `k${i % 2}`
  if (A.DataType.isFixedSizeBinary(type)) return Uint8Array.of(i, i, i)
  if (A.DataType.isBinary(type) || A.DataType.isLargeBinary(type)) return Uint8Array.of(i, 255)
  if (A.DataType.isDate(type) || A.DataType.isTimestamp(type)) return i * 86_400_000
  if (A.DataType.isTime(type) || A.DataType.isDuration(type)) return BigInt(i * 1000)
  if (A.DataType.isInterval(type)) return type.unit === A.IntervalUnit.MONTH_DAY_NANO ? Int32Array.of(i, 2, 3, 4) : Int32Array.of(i, 1)
  if (A.DataType.isDecimal(type)) return Uint32Array.from({ length: type.bitWidth / 32 }, (_, k) => k + i)
  if (A.DataType.isFixedSizeList(type)) return [i, null]
  if (A.DataType.isList(type)) return [i, null, i + 1]
  if (type instanceof A.LargeList) return [`x${i}`, null]
  if (A.DataType.isStruct(type)) return { a: i, b: null }
  if (A.DataType.isMap(type)) return new Map([[`k${i}`, i], ['z', null]])
  return null
}

test('Electron mode (COLDPAGE_NO_EXTERNAL_BUFFERS=1): reads copy once, decoding still copies nothing', async (t) => {
  if (FORCED_COPY) {
    t.false(zeroCopySupported())
    t.pass('this process already runs in the forced copy mode')
    return
  }
  const script = `
    const A = require('apache-arrow')
    const assert = require('node:assert')
    const { zeroCopySupported } = require('coldpage')
    const { pageoutTable } = require('coldpage/arrow')
    assert.strictEqual(zeroCopySupported(), false)
    const base = A.tableFromArrays({
      a: Float64Array.from({ length: 600 }, (_, i) => i),
      s: Array.from({ length: 600 }, (_, i) => (i < 300 ? 'v' + i : null)),
    })
    const t = new A.Table([...base.slice(0, 300).batches, ...base.slice(300).batches])
    for (const backend of ${JSON.stringify(BACKENDS)}) {
      const th = pageoutTable(t, { backend })
      assert.ok(Buffer.from(A.tableToIPC(th.read())).equals(Buffer.from(A.tableToIPC(t))))
      const col = th.read({ columns: ['a'] }).getChild('a')
      assert.strictEqual(col.data[0].values.buffer, col.data[1].values.buffer)
      assert.strictEqual(col.data[1].values.byteOffset % 64, 0)
      const taken = th.take()
      assert.ok(th.disposed)
      assert.ok(Buffer.from(A.tableToIPC(taken)).equals(Buffer.from(A.tableToIPC(t))))
    }
    console.log('ok')
  `
  const r = await node(['-e', script], { COLDPAGE_NO_EXTERNAL_BUFFERS: '1' })
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), 'ok')
})

test('import (ESM) binds the ESM build of apache-arrow: tables go in and come back as the importer\'s own', async (t) => {
  const script = `
    import * as A from 'apache-arrow'
    import { pageoutTable, TableHandle } from 'coldpage/arrow'
    const table = A.tableFromArrays({ a: Int32Array.of(1, 2, 3), s: ['x', null, 'z'] })
    const th = pageoutTable(table, { backend: 'file' })
    const back = th.take()
    if (!(th instanceof TableHandle) || Object.getPrototypeOf(back) !== A.Table.prototype) throw new Error('foreign classes')
    console.log(JSON.stringify(back.getChild('s').toArray()))
  `
  const r = await node(['--input-type=module', '-e', script])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), '["x",null,"z"]')
})
