/**
 * A schema of another apache-arrow copy in the types of `A`: what `readIPC`
 * writes with when a table of another copy was paged out without its module
 * (then every column is flat: see `./fast.ts`), since an IPC writer knows only
 * its own copy's types.
 */
import type * as Arrow from 'apache-arrow'

import type { Classes } from './assemble.js'
import type { ArrowModule } from './layout.js'

type AnyType = Arrow.DataType & Record<string, unknown>

/** The flat type `t` (of any copy) as a type of `A`. */
function ownType(A: ArrowModule, t: AnyType): Arrow.DataType {
  const n = (k: string) => t[k] as number
  switch (t.typeId as number) {
    case 2:
      return new A.Int(t.isSigned as boolean, n('bitWidth') as 8 | 16 | 32 | 64)
    case 3:
      return new A.Float(n('precision'))
    case 4:
      return new A.Binary()
    case 5:
      return new A.Utf8()
    case 6:
      return new A.Bool()
    case 7:
      return new A.Decimal(n('scale'), n('precision'), n('bitWidth'))
    case 8:
      return new A.Date_(n('unit'))
    case 9:
      return new A.Time(n('unit'), n('bitWidth') as 32 | 64)
    case 10:
      return new A.Timestamp(n('unit'), t.timezone as string | null | undefined)
    case 11:
      return new A.Interval(n('unit'))
    case 15:
      return new A.FixedSizeBinary(n('byteWidth'))
    case 18:
      return new A.Duration(n('unit'))
    case 19:
      return new A.LargeBinary()
    case 20:
      return new A.LargeUtf8()
    default:
      throw new Error(`column type ${String(t)} needs the apache-arrow module of the table`)
  }
}

/** `schema` (of any copy, flat columns) in `A`'s classes and types. */
export function ownSchema(A: ArrowModule, schema: Arrow.Schema): { classes: Classes; schema: Arrow.Schema } {
  const fields = schema.fields.map((f) => new A.Field(f.name, ownType(A, f.type as AnyType), f.nullable, new Map(f.metadata)))
  return {
    classes: { Data: A.Data, Table: A.Table, RecordBatch: A.RecordBatch, Schema: A.Schema, Struct: A.Struct },
    schema: new A.Schema(fields, new Map(schema.metadata)),
  }
}
