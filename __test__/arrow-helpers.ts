// Shared by the arrow suites: random Arrow types (nested to depth 3), random
// values for them, tables built with apache-arrow's builders, and a plain-value
// view of a table for value-for-value comparisons.
import * as A from 'apache-arrow'
import type { BuilderOptions } from 'apache-arrow/builder'
import type { TKeys } from 'apache-arrow/type'
import fc from 'fast-check'

/** The JS shape of a type's values, which tells union children apart. */
type Kind = 'number' | 'bigint' | 'string' | 'boolean' | 'bytes' | 'words' | 'array' | 'object' | 'map' | 'null'

const TIME_ZONES = [null, 'UTC', 'Europe/Paris', '+05:30']

const LEAVES: fc.Arbitrary<A.DataType>[] = [
  fc.constantFrom<() => A.DataType>(
    () => new A.Int8(),
    () => new A.Int16(),
    () => new A.Int32(),
    () => new A.Int64(),
    () => new A.Uint8(),
    () => new A.Uint16(),
    () => new A.Uint32(),
    () => new A.Uint64(),
    () => new A.Float16(),
    () => new A.Float32(),
    () => new A.Float64(),
    () => new A.Bool(),
    () => new A.Utf8(),
    () => new A.LargeUtf8(),
    () => new A.Binary(),
    () => new A.LargeBinary(),
    () => new A.DateDay(),
    () => new A.DateMillisecond(),
    () => new A.TimeSecond(),
    () => new A.TimeMillisecond(),
    () => new A.TimeMicrosecond(),
    () => new A.TimeNanosecond(),
    () => new A.DurationSecond(),
    () => new A.DurationMillisecond(),
    () => new A.DurationMicrosecond(),
    () => new A.DurationNanosecond(),
    () => new A.IntervalYearMonth(),
    () => new A.IntervalDayTime(),
    () => new A.IntervalMonthDayNano(),
    () => new A.Null(),
  ).map((make) => make()),
  fc.integer({ min: 1, max: 6 }).map((n) => new A.FixedSizeBinary(n)),
  fc
    .tuple(
      fc.constantFrom(
        (tz: string | null) => new A.TimestampSecond(tz),
        (tz: string | null) => new A.TimestampMillisecond(tz),
        (tz: string | null) => new A.TimestampMicrosecond(tz),
        (tz: string | null) => new A.TimestampNanosecond(tz),
      ),
      fc.constantFrom(...TIME_ZONES),
    )
    .map(([make, tz]) => make(tz)),
  fc
    .tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 38 }), fc.constantFrom(128, 256))
    .map(([scale, precision, bits]) => new A.Decimal(scale, bits === 256 ? precision + 30 : precision, bits)),
]

const leaf: fc.Arbitrary<A.DataType> = fc.oneof(...LEAVES)

const field = (name: string, type: A.DataType, nullable = true) => new A.Field(name, type, nullable)

function kindOf(type: A.DataType): Kind {
  if (A.DataType.isDictionary(type)) return kindOf(type.dictionary)
  if (A.DataType.isNull(type)) return 'null'
  if (A.DataType.isBool(type)) return 'boolean'
  if (A.DataType.isUtf8(type) || A.DataType.isLargeUtf8(type)) return 'string'
  if (A.DataType.isBinary(type) || A.DataType.isLargeBinary(type) || A.DataType.isFixedSizeBinary(type)) return 'bytes'
  if (A.DataType.isInterval(type) || A.DataType.isDecimal(type)) return 'words'
  if (A.DataType.isList(type) || A.DataType.isFixedSizeList(type) || type instanceof A.LargeList) return 'array'
  if (A.DataType.isStruct(type) || A.DataType.isUnion(type)) return 'object'
  if (A.DataType.isMap(type)) return 'map'
  if (A.DataType.isInt(type)) return type.bitWidth === 64 ? 'bigint' : 'number'
  if (A.DataType.isTime(type)) return type.bitWidth === 64 ? 'bigint' : 'number'
  if (A.DataType.isDuration(type)) return 'bigint'
  return 'number' // floats, dates, timestamps
}

function kindOfValue(value: unknown): Kind {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'number') return 'number'
  if (typeof value === 'bigint') return 'bigint'
  if (typeof value === 'string') return 'string'
  if (typeof value === 'boolean') return 'boolean'
  if (value instanceof Uint8Array) return 'bytes'
  if (value instanceof Int32Array || value instanceof Uint32Array) return 'words'
  if (Array.isArray(value)) return 'array'
  if (value instanceof Map) return 'map'
  return 'object'
}

/** Random types: leaves, and at `depth` > 0 lists, structs, maps, unions and dictionaries over smaller types. */
export function typeArb(depth: number): fc.Arbitrary<A.DataType> {
  if (depth === 0) return leaf
  const child = typeArb(depth - 1)
  const children = fc.array(child, { minLength: 1, maxLength: 3 })
  const nested: fc.Arbitrary<A.DataType>[] = [
    child.map((t) => new A.List(field('item', t))),
    child.map((t) => new A.LargeList(field('item', t))),
    fc.tuple(fc.integer({ min: 1, max: 3 }), child).map(([n, t]) => new A.FixedSizeList(n, field('item', t))),
    children.map((ts) => new A.Struct(ts.map((t, i) => field(`f${i}`, t)))),
    fc
      .tuple(fc.constantFrom<() => A.DataType>(() => new A.Utf8(), () => new A.Int32()), child, fc.boolean())
      .map(
        ([key, value, sorted]) =>
          new A.Map_(
            field('entries', new A.Struct([field('key', key(), false), field('value', value)]), false) as A.Field<A.Struct>,
            sorted,
          ),
      ),
    fc
      .tuple(
        fc.constantFrom<() => A.DataType>(
          () => new A.Utf8(),
          () => new A.LargeUtf8(),
          () => new A.Int32(),
          () => new A.Float64(),
        ),
        fc.constantFrom<() => TKeys>(
          () => new A.Int8(),
          () => new A.Int16(),
          () => new A.Int32(),
          () => new A.Uint8(),
          () => new A.Uint32(),
        ),
        fc.boolean(),
      )
      .map(([value, key, ordered]) => new A.Dictionary(value(), key(), null, ordered)),
    unionArb(child),
  ]
  return fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, ...nested)
}

/** A union over children of distinct value kinds (the builder picks the child by the value's kind). */
function unionArb(child: fc.Arbitrary<A.DataType>): fc.Arbitrary<A.DataType> {
  const usable = child.filter((t) => !A.DataType.isUnion(t) && kindOf(t) !== 'null')
  return fc
    .tuple(fc.uniqueArray(usable, { minLength: 1, maxLength: 3, selector: kindOf }), fc.boolean(), fc.boolean())
    .map(([types, dense, shuffledIds]) => {
      const ids = types.map((_, i) => (shuffledIds ? 10 - 3 * i : i))
      const fields = types.map((t, i) => field(`u${i}`, t))
      return dense ? new A.DenseUnion(ids, fields) : new A.SparseUnion(ids, fields)
    })
}

const nullable = <T>(arb: fc.Arbitrary<T>, nullRate = 5): fc.Arbitrary<T | null> =>
  fc.option(arb, { nil: null, freq: nullRate })

/** Random non-null values of `type`, in the JS shapes its builder accepts. */
function valueArb(type: A.DataType): fc.Arbitrary<unknown> {
  if (A.DataType.isDictionary(type)) return valueArb(type.dictionary)
  if (A.DataType.isNull(type)) return fc.constant(null)
  if (A.DataType.isBool(type)) return fc.boolean()
  if (A.DataType.isUtf8(type) || A.DataType.isLargeUtf8(type)) return fc.string({ maxLength: 6, unit: 'grapheme' })
  if (A.DataType.isBinary(type) || A.DataType.isLargeBinary(type)) return fc.uint8Array({ maxLength: 6 })
  if (A.DataType.isFixedSizeBinary(type)) {
    return fc.uint8Array({ minLength: type.byteWidth, maxLength: type.byteWidth })
  }
  if (A.DataType.isInterval(type)) {
    const n = type.unit === A.IntervalUnit.MONTH_DAY_NANO ? 4 : 2
    return fc.int32Array({ minLength: n, maxLength: n })
  }
  if (A.DataType.isDecimal(type)) {
    const n = type.bitWidth / 32
    return fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: n, maxLength: n }).map((w) => Uint32Array.from(w))
  }
  if (A.DataType.isFixedSizeList(type)) {
    const item = nullable(valueArb(type.children[0]!.type))
    return fc.array(item, { minLength: type.listSize, maxLength: type.listSize })
  }
  if (A.DataType.isList(type) || type instanceof A.LargeList) {
    return fc.array(nullable(valueArb(type.children[0]!.type)), { maxLength: 4 })
  }
  if (A.DataType.isMap(type)) {
    const [key, value] = type.children[0]!.type.children
    return fc
      .uniqueArray(fc.tuple(valueArb(key!.type), nullable(valueArb(value!.type))), {
        maxLength: 3,
        selector: ([k]) => k,
      })
      .map((entries) => new Map(entries))
  }
  if (A.DataType.isStruct(type)) {
    return fc.record(Object.fromEntries(type.children.map((f) => [f.name, nullable(valueArb(f.type))])))
  }
  if (A.DataType.isUnion(type)) return fc.oneof(...type.children.map((f) => valueArb(f.type)))
  if (A.DataType.isInt(type)) {
    if (type.bitWidth === 64) return type.isSigned ? fc.bigInt64Array({ minLength: 1, maxLength: 1 }).map((a) => a[0]) : fc.bigUint64Array({ minLength: 1, maxLength: 1 }).map((a) => a[0])
    const bits = type.bitWidth
    return type.isSigned
      ? fc.integer({ min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 })
      : fc.integer({ min: 0, max: 2 ** bits - 1 })
  }
  if (A.DataType.isTime(type)) {
    return type.bitWidth === 64 ? fc.bigInt({ min: 0n, max: 86_400_000_000_000n }) : fc.integer({ min: 0, max: 86_399 })
  }
  if (A.DataType.isDuration(type)) return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
  if (A.DataType.isDate(type)) return fc.integer({ min: -1e6, max: 1e6 }).map((d) => d * 86_400_000)
  // Whole seconds in ms: the second-unit builder divides by 1000 into a BigInt.
  if (A.DataType.isTimestamp(type)) return fc.integer({ min: -1e9, max: 1e9 }).map((s) => s * 1000)
  if (A.DataType.isFloat(type)) return fc.double()
  throw new Error(`no values for ${String(type)}`)
}

/** Builder options for `type`, with every union told how to pick its child. */
function builderOptions(type: A.DataType): BuilderOptions {
  const opts: BuilderOptions & { valueToChildTypeId?: unknown } = {
    type,
    nullValues: [null, undefined],
    children: (type.children ?? []).map((f: A.Field) => builderOptions(f.type)),
  }
  if (A.DataType.isUnion(type)) {
    const kinds = type.children.map((f) => kindOf(f.type))
    opts.valueToChildTypeId = (_: unknown, value: unknown) => {
      const i = kinds.indexOf(kindOfValue(value))
      return type.typeIds[Math.max(i, 0)]
    }
  }
  return opts
}

/** Builds one column of one batch. Union columns have no nulls of their own. */
export function buildData(type: A.DataType, values: readonly unknown[]): A.Data {
  const builder = A.makeBuilder(builderOptions(type))
  for (const v of values) builder.append(v)
  return builder.finish().flush()
}

/** A random table description: a schema and, per batch, per column, values. */
export interface TableSpec {
  fields: A.Field[]
  metadata: Map<string, string>
  batches: unknown[][][]
}

const metadataArb = fc
  .uniqueArray(fc.tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 })), { maxLength: 2, selector: ([k]) => k })
  .map((entries) => new Map(entries))

/** Random tables: 0-4 columns of random types (depth <= 3), 0-4 batches of 0-6 rows, nulls, metadata. */
export const tableSpecArb: fc.Arbitrary<TableSpec> = fc
  .tuple(
    fc.array(fc.tuple(typeArb(3), metadataArb), { maxLength: 4 }),
    metadataArb,
    fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 4 }),
  )
  .chain(([columns, metadata, rows]) => {
    const fields = columns.map(([type, md], i) => new A.Field(`c${i}`, type, true, md))
    const column = (f: A.Field, n: number) =>
      fc.array(A.DataType.isUnion(f.type) ? valueArb(f.type) : nullable(valueArb(f.type), 3), {
        minLength: n,
        maxLength: n,
      })
    const batches = fc.tuple(...rows.map((n) => fc.tuple(...fields.map((f) => column(f, n)))))
    return batches.map((bs) => ({ fields, metadata, batches: bs as unknown[][][] }))
  })

/** Builds the table a spec describes. */
export function buildTable(spec: TableSpec): A.Table {
  const schema = new A.Schema(spec.fields, spec.metadata)
  const struct = new A.Struct(spec.fields)
  const batches = spec.batches.map((columns, b) => {
    const children = spec.fields.map((f, c) => buildData(f.type, columns[c] ?? []))
    const length = spec.batches[b]?.[0]?.length ?? 0
    return new A.RecordBatch(schema, A.makeData({ type: struct, length, nullCount: 0, children }))
  })
  return new A.Table(schema, batches)
}

/** A value as plain, comparable JS: vectors and rows become arrays and objects, bigints strings. */
export function plain(value: unknown): unknown {
  if (value === null || value === undefined) return null
  if (typeof value === 'bigint') return `${value}n`
  if (value instanceof A.Vector) return [...value].map(plain)
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number | bigint>, plain)
  if (value instanceof Map) return [...value].map(([k, v]) => [plain(k), plain(v)])
  if (typeof value === 'object') {
    const row = value as { toJSON?: () => unknown; [Symbol.iterator]?: unknown }
    if (typeof row[Symbol.iterator] === 'function') {
      // MapRow: [key, value] entries.
      return [...(value as Iterable<[unknown, unknown]>)].map(([k, v]) => [plain(k), plain(v)])
    }
    return Object.fromEntries(Object.entries(typeof row.toJSON === 'function' ? (row.toJSON() as object) : value).map(([k, v]) => [k, plain(v)]))
  }
  return value
}

/** A table as comparable plain data: schema (names, types, nullability, metadata) and per column per batch values. */
export function tableValues(table: A.Table): unknown {
  return {
    schema: {
      metadata: [...table.schema.metadata],
      fields: table.schema.fields.map((f) => [f.name, String(f.type), f.nullable, [...f.metadata]]),
    },
    numRows: table.numRows,
    batches: table.batches.map((batch) => ({
      numRows: batch.numRows,
      columns: table.schema.fields.map((_, c) => {
        const v = batch.getChildAt(c)
        return v === null ? null : [...v].map(plain)
      }),
    })),
  }
}

/** The table that reading `columns` (indexes) and `batches` of `table` should give. */
export function expectedSubset(table: A.Table, columns: readonly number[], batches: readonly number[]): A.Table {
  const fields = columns.map((c) => table.schema.fields[c]!)
  const schema = new A.Schema(fields, new Map(table.schema.metadata))
  const struct = new A.Struct(fields)
  return new A.Table(
    schema,
    batches.map((b) => {
      const batch = table.batches[b]!
      const children = columns.map((c) => batch.data.children[c]!)
      return new A.RecordBatch(schema, A.makeData({ type: struct, length: batch.numRows, nullCount: 0, children }))
    }),
  )
}
