/**
 * What a resident value keeps alive, and how the store makes it own exactly its
 * bytes. A table opened the usual way (`tableFromIPC(readFileSync(f))`) has every
 * column as a view of one ArrayBuffer (the file), and a Buffer may be a small
 * view of a large one: keeping such views resident keeps the whole backing
 * memory alive while the budget counts only the view. So a unit whose views reach
 * more than `SLACK` times its own bytes of backing ArrayBuffers is copied, while it
 * stays resident, into one ArrayBuffer of its own; other units are counted by the
 * backing memory they hold. Loads no apache-arrow.
 */
import type * as Arrow from 'apache-arrow'

import type { Column } from './table.js'

/** How much more backing memory than its own bytes a unit may keep alive without a copy. */
export const SLACK = 1.25

/** Bytes are copied on 8-byte boundaries (typed array views need it). */
const ALIGN = 8
const padded = (n: number): number => Math.ceil(n / ALIGN) * ALIGN

/** The buffers of one `Data`, in apache-arrow's slot order: offsets, values, validity, type ids. */
function buffersOf(d: Arrow.Data): (ArrayBufferView | undefined)[] {
  return [d.valueOffsets, d.values, d.nullBitmap, d.typeIds] as (ArrayBufferView | undefined)[]
}

/** Every distinct `Data` of a column: its batches, their children and dictionaries. */
function eachData(column: Column, visit: (d: Arrow.Data) => void): void {
  const seen = new Set<unknown>()
  const walk = (d: Arrow.Data | undefined): void => {
    if (d === undefined || seen.has(d)) return
    seen.add(d)
    visit(d)
    for (const child of d.children) walk(child)
    const dictionary = d.dictionary
    if (dictionary !== undefined && !seen.has(dictionary)) {
      seen.add(dictionary)
      for (const part of dictionary.data) walk(part)
    }
  }
  for (const d of column) walk(d)
}

/** What a column weighs and holds. */
export interface Measure {
  /** The bytes of its buffers (a buffer shared by several batches counts once), each padded to 8 as a copy lays them out. */
  bytes: number
  /** The bytes of the distinct ArrayBuffers its buffers are views of: what it keeps alive. */
  held: number
  /** Whether a copy would own exactly its bytes: it holds much more than it weighs, and every buffer can be copied. */
  copy: boolean
}

/** Measures `column`: its bytes, what it keeps alive, and whether it needs a copy to own its bytes. */
export function measure(column: Column): Measure {
  const views = new Set<ArrayBufferView>()
  const backing = new Set<ArrayBufferLike>()
  let bytes = 0
  let copyable = true
  eachData(column, (d) => {
    if ((d.variadicBuffers?.length ?? 0) > 0) copyable = false
    for (const v of buffersOf(d)) {
      if (v === undefined || v === null || views.has(v)) continue
      views.add(v)
      backing.add(v.buffer)
      bytes += padded(v.byteLength)
    }
  })
  let held = 0
  for (const b of backing) held += b.byteLength
  const copy = copyable && held > SLACK * bytes
  return { bytes, held, copy }
}

/** The bytes a unit of `column` is counted for while resident. */
export function residentCost(m: Measure): number {
  return m.copy ? m.bytes : Math.max(m.bytes, m.held)
}

/** Copies still to make: each `from` into its `to` (of the same length). */
export type Copies = [from: Uint8Array, to: Uint8Array][]

/**
 * `column` with every buffer copied into one new ArrayBuffer (8-byte aligned
 * slots), its `Data` rebuilt with the same classes; buffers shared by several
 * batches, children and dictionaries stay shared in the copy. Dictionaries are
 * rebuilt with `makeVector` (the table's apache-arrow module's; columns with
 * dictionaries always have one), else kept as they are.
 */
export function owned(column: Column, bytes: number, makeVector: ((data: Arrow.Data[]) => Arrow.Vector) | undefined): Column {
  const [copy, copies] = ownedLater(column, bytes, makeVector)
  copyNow(copies)
  return copy
}

/** Makes every copy of the list at once. */
function copyNow(copies: Copies): void {
  for (const [from, to] of copies) to.set(from)
}

/**
 * `owned` with its bytes not yet copied: the rebuilt column, over new memory that
 * holds its bytes once every copy of the list is made (`copyInTurns`).
 */
export function ownedLater(
  column: Column,
  bytes: number,
  makeVector: ((data: Arrow.Data[]) => Arrow.Vector) | undefined,
): [Column, Copies] {
  const into = new Uint8Array(new ArrayBuffer(bytes))
  const pending: Copies = []
  let at = 0
  const copies = new Map<ArrayBufferView, ArrayBufferView>()
  const copyView = (v: ArrayBufferView | undefined): ArrayBufferView | undefined => {
    if (v === undefined || v === null) return undefined
    let c = copies.get(v)
    if (c === undefined) {
      pending.push([new Uint8Array(v.buffer, v.byteOffset, v.byteLength), into.subarray(at, at + v.byteLength)])
      const Ctor = v.constructor as new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView
      const per = (v as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1
      c = new Ctor(into.buffer, at, v.byteLength / per)
      at += padded(v.byteLength)
      copies.set(v, c)
    }
    return c
  }
  const datas = new Map<Arrow.Data, Arrow.Data>()
  const vectors = new Map<Arrow.Vector, Arrow.Vector>()
  const copyData = (d: Arrow.Data): Arrow.Data => {
    let c = datas.get(d)
    if (c !== undefined) return c
    const DataClass = d.constructor as typeof Arrow.Data
    const children = d.children.map(copyData)
    let dictionary = d.dictionary
    if (dictionary !== undefined) {
      let v = vectors.get(dictionary)
      if (v === undefined) {
        v = makeVector === undefined ? dictionary : makeVector(dictionary.data.map(copyData))
        vectors.set(dictionary, v)
      }
      dictionary = v
    }
    c = new DataClass(d.type, d.offset, d.length, d.nullCount, buffersOf(d).map(copyView) as never, children, dictionary)
    datas.set(d, c)
    return c
  }
  return [column.map(copyData), pending]
}

/** Whether a Buffer keeps much more memory alive than its bytes. */
export function bufferNeedsCopy(b: Buffer): boolean {
  return b.buffer.byteLength > SLACK * b.byteLength
}

/** A copy of `b` in memory of its own (never Node's shared pool). */
export function ownedBuffer(b: Buffer): Buffer {
  const [copy, copies] = ownedBufferLater(b)
  copyNow(copies)
  return copy
}

/** `ownedBuffer` with its bytes not yet copied (`copyInTurns` makes the copy). */
export function ownedBufferLater(b: Buffer): [Buffer, Copies] {
  const copy = Buffer.allocUnsafeSlow(b.byteLength)
  return [copy, [[new Uint8Array(b.buffer, b.byteOffset, b.byteLength), copy]]]
}

/** At most this many bytes are copied per turn of the event loop by `copyInTurns`. */
const TURN_BYTES = 4 << 20

/**
 * Makes `copies` a few MiB per turn of the event loop, so that a large copy never
 * holds the JS thread for long. Before each turn's share, `go()` says whether to go
 * on; false ends it early (and so does a source found detached meanwhile).
 * Returns whether every byte was copied.
 */
export async function copyInTurns(copies: Copies, go: () => boolean, nextTurn: () => Promise<unknown>): Promise<boolean> {
  let budget = TURN_BYTES
  for (const [from, to] of copies) {
    const length = to.byteLength
    for (let at = 0; at < length; ) {
      if (budget === 0) {
        await nextTurn()
        if (!go()) return false
        budget = TURN_BYTES
      }
      // A view of a detached or transferred buffer reads as empty.
      if (from.byteLength !== length) return false
      const n = Math.min(budget, length - at)
      to.set(from.subarray(at, at + n), at)
      at += n
      budget -= n
    }
  }
  return true
}
