// coldpage/arrow benchmarks, two parts:
//
// 1. The goals of issue 13 on a table shaped like what Parquet readers produce:
//    3 M rows in 2,930 record batches of 1,024 rows (the last one shorter), 5
//    columns (timestamp[us], int64 x2, large_utf8 x2), generated from a fixed
//    seed. Each row prints ratio = coldpage time / baseline time (same process,
//    medians of --reps repetitions, warm page cache), its goal and met/missed.
// 2. One column of a wide Float64 table vs `tableFromIPC(fs.readFileSync(ipcFile))`
//    of the whole table, and how much the process's anonymous RSS grows.
//
//   npm run bench:arrow -- [--goals] [--reps 7] [--gib 1] [--columns 16] [--batches 16]
//                          [--backend file|swap] [--runs 5] [--cold]
//
// --goals prints only part 1 (what `npm run bench` runs). --cold drops the page
// cache before every timed read of part 2 (needs root): both sides then read
// from disk. Run with --expose-gc (the npm script does) so that the source
// table is really gone before the RSS is measured.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseArgs } from 'node:util'

import * as A from 'apache-arrow'
import { getConfig, stats } from 'coldpage'
import { pageoutTable } from 'coldpage/arrow'

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string', default: '1' },
    columns: { type: 'string', default: '16' },
    batches: { type: 'string', default: '16' },
    backend: { type: 'string', default: 'file' },
    runs: { type: 'string', default: '5' },
    cold: { type: 'boolean', default: false },
    goals: { type: 'boolean', default: false },
    reps: { type: 'string', default: '7' },
  },
})
const gib = Number(args.gib)
const numColumns = Number(args.columns)
const numBatches = Number(args.batches)
const runs = Number(args.runs)
const backend = args.backend
const reps = Number(args.reps)
if (!(gib > 0) || !(numColumns > 0) || !(numBatches > 0) || !(runs > 0) || !(reps >= 5)) throw new Error('bad arguments (--reps needs >= 5)')

const MiB = 2 ** 20
const rowsPerBatch = Math.ceil((gib * 2 ** 30) / (numColumns * 8 * numBatches))
const numRows = rowsPerBatch * numBatches
const columnBytes = numRows * 8
const pick = `c${Math.floor(numColumns / 2)}`

const gc = globalThis.gc ?? (() => {})
const rssAnon = () => {
  const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m === null ? Number.NaN : Number(m[1]) * 1024
}
const dropCaches = () => {
  if (!args.cold) return
  execFileSync('sync')
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
}
const ms = (ns) => Number(ns) / 1e6
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`

function buildTable() {
  const fields = Array.from({ length: numColumns }, (_, c) => new A.Field(`c${c}`, new A.Float64(), false))
  const schema = new A.Schema(fields)
  const struct = new A.Struct(fields)
  const batches = []
  for (let b = 0; b < numBatches; b++) {
    const children = fields.map((f, c) => {
      const values = new Float64Array(rowsPerBatch)
      for (let i = 0; i < rowsPerBatch; i++) values[i] = c * 1e9 + b * rowsPerBatch + i
      return A.makeData({ type: f.type, length: rowsPerBatch, nullCount: 0, data: values })
    })
    batches.push(new A.RecordBatch(schema, A.makeData({ type: struct, length: rowsPerBatch, nullCount: 0, children })))
  }
  return new A.Table(schema, batches)
}

// ---- Part 1: the Parquet-shaped table and the goals of issue 13. ----

const PARQUET_ROWS = 3_000_000
const PARQUET_BATCH = 1024

/** A small seeded PRNG (mulberry32): the same table on every run. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The Parquet-shaped table: batches built from raw buffers, as Parquet readers hand them over. */
function parquetTable() {
  const rand = prng(13)
  const fields = [
    new A.Field('ts', new A.TimestampMicrosecond(), false),
    new A.Field('id', new A.Int64(), false),
    new A.Field('qty', new A.Int64(), false),
    new A.Field('sym', new A.LargeUtf8(), false),
    new A.Field('venue', new A.LargeUtf8(), false),
  ]
  const schema = new A.Schema(fields)
  const struct = new A.Struct(fields)
  const letters = (n) => {
    const offsets = new BigInt64Array(n + 1)
    const bytes = new Uint8Array(n * 5)
    let at = 0
    for (let i = 0; i < n; i++) {
      const len = 1 + Math.floor(rand() * 5)
      for (let k = 0; k < len; k++) bytes[at++] = 65 + Math.floor(rand() * 26)
      offsets[i + 1] = BigInt(at)
    }
    return { valueOffsets: offsets, data: bytes.subarray(0, at) }
  }
  const batches = []
  let t = 1_700_000_000_000_000n
  for (let start = 0; start < PARQUET_ROWS; start += PARQUET_BATCH) {
    const n = Math.min(PARQUET_BATCH, PARQUET_ROWS - start)
    const ts = new BigInt64Array(n)
    const id = new BigInt64Array(n)
    const qty = new BigInt64Array(n)
    for (let i = 0; i < n; i++) {
      t += BigInt(1 + Math.floor(rand() * 1000))
      ts[i] = t
      id[i] = BigInt(start + i)
      qty[i] = BigInt(Math.floor(rand() * 1e6))
    }
    const children = [
      A.makeData({ type: fields[0].type, length: n, nullCount: 0, data: ts }),
      A.makeData({ type: fields[1].type, length: n, nullCount: 0, data: id }),
      A.makeData({ type: fields[2].type, length: n, nullCount: 0, data: qty }),
      A.makeData({ type: fields[3].type, length: n, nullCount: 0, ...letters(n) }),
      A.makeData({ type: fields[4].type, length: n, nullCount: 0, ...letters(n) }),
    ]
    batches.push(new A.RecordBatch(schema, A.makeData({ type: struct, length: n, nullCount: 0, children })))
  }
  return new A.Table(schema, batches)
}

/** Median milliseconds of `reps` calls of `fn` (after one untimed warm-up call); `after` runs untimed. */
function timeIt(fn, after = () => {}) {
  const times = []
  for (let r = -1; r < reps; r++) {
    gc()
    const start = process.hrtime.bigint()
    const out = fn()
    const elapsed = ms(process.hrtime.bigint() - start)
    after(out)
    if (r >= 0) times.push(elapsed)
  }
  return median(times)
}

function parquetGoals() {
  const table = parquetTable()
  const file = path.join(getConfig().scratchDir, `coldpage-bench-parquet-${process.pid}.arrow`)
  const tableBytes = table.batches.reduce((sum, b) => sum + b.data.children.reduce((s, d) => s + d.byteLength, 0), 0)
  console.log(`Parquet-shaped table: ${table.numRows} rows in ${table.batches.length} batches, 5 columns` +
    ` (timestamp[us], int64 x2, large_utf8 x2), ${fmt(tableBytes)}; backend ${backend}; medians of ${reps}`)
  const rows = []
  let th
  try {
    const write = timeIt(() => fs.writeFileSync(file, A.tableToIPC(table, 'file')))
    const pageoutMs = timeIt(() => pageoutTable(table, { backend }), (h) => h.dispose())
    rows.push(['pageoutTable', 'writeFileSync(path, tableToIPC(t, \'file\'))', pageoutMs, write, 0.7])
    th = pageoutTable(table, { backend })
    const check = (t) => {
      if (t.numRows !== table.numRows) throw new Error('wrong table read back')
    }
    const base = timeIt(() => A.tableFromIPC(fs.readFileSync(file)), check)
    const all = timeIt(() => th.read(), check)
    rows.push(['read() all columns', 'tableFromIPC(readFileSync(path))', all, base, 1.0])
    const one = timeIt(() => th.read({ columns: ['sym'] }), check)
    rows.push(["read({ columns: ['sym'] })", 'tableFromIPC(readFileSync(path)), all columns', one, base, 0.15])
  } finally {
    th?.dispose()
    fs.rmSync(file, { force: true })
  }
  for (const [op, baseline, cold, base, goal] of rows) {
    const ratio = cold / base
    console.log(`  ${op.padEnd(27)} ${cold.toFixed(1).padStart(7)} ms vs ${baseline} ${base.toFixed(1)} ms:` +
      ` ratio ${ratio.toFixed(2)} (goal <= ${goal}) ${ratio <= goal ? 'met' : 'MISSED'}`)
  }
}

parquetGoals()
if (args.goals) process.exit(0)

// ---- Part 2: one column of a wide table, with RSS. ----

console.log(
  `table: ${numColumns} Float64 columns x ${numRows} rows in ${numBatches} batches = ${fmt(numColumns * columnBytes)}` +
    ` (one column ${fmt(columnBytes)}); backend ${backend}; ${runs} runs${args.cold ? '; page cache dropped before each read' : ''}`,
)

const scratch = getConfig().scratchDir
const ipcFile = path.join(scratch, `coldpage-bench-arrow-${process.pid}.arrow`)
let th
try {
  let table = buildTable()
  let t0 = process.hrtime.bigint()
  fs.writeFileSync(ipcFile, A.tableToIPC(table, 'file'))
  const writeMs = ms(process.hrtime.bigint() - t0)
  t0 = process.hrtime.bigint()
  th = pageoutTable(table, { backend })
  const pageoutMs = ms(process.hrtime.bigint() - t0)
  console.log(`setup: IPC file ${fmt(fs.statSync(ipcFile).size)} at ${ipcFile} in ${writeMs.toFixed(0)} ms;` +
    ` pageoutTable ${fmt(th.byteLength)} in ${pageoutMs.toFixed(0)} ms`)
  table = undefined
  for (let i = 0; i < 3; i++) gc()

  // coldpage: one column, one vectored read.
  const coldMs = []
  let rssGrowth = Number.NaN
  let bytesRead = 0
  for (let r = 0; r < runs; r++) {
    dropCaches()
    gc()
    const rss0 = rssAnon()
    const read0 = stats().bytesRead
    const start = process.hrtime.bigint()
    const one = th.read({ columns: [pick] })
    const sum = one.getChild(pick).data.reduce((s, d) => s + d.values[d.length - 1], 0)
    coldMs.push(ms(process.hrtime.bigint() - start))
    if (r === 0) {
      rssGrowth = rssAnon() - rss0
      bytesRead = stats().bytesRead - read0
    }
    if (!(sum > 0) || one.numRows !== numRows) throw new Error('wrong column read back')
  }

  // Baseline: the whole IPC file into memory and decoded, then the column taken.
  const baseMs = []
  let baseRssGrowth = Number.NaN
  for (let r = 0; r < runs; r++) {
    dropCaches()
    gc()
    const rss0 = rssAnon()
    const start = process.hrtime.bigint()
    const whole = A.tableFromIPC(fs.readFileSync(ipcFile))
    const col = whole.getChild(pick)
    const sum = col.data.reduce((s, d) => s + d.values[d.length - 1], 0)
    baseMs.push(ms(process.hrtime.bigint() - start))
    if (r === 0) baseRssGrowth = rssAnon() - rss0
    if (!(sum > 0)) throw new Error('wrong baseline column')
  }

  const cold = median(coldMs)
  const base = median(baseMs)
  console.log(`coldpage  read({ columns: ['${pick}'] }): median ${cold.toFixed(1)} ms (runs: ${coldMs.map((x) => x.toFixed(1)).join(', ')});` +
    ` paged in ${fmt(bytesRead)}; RssAnon +${fmt(rssGrowth)}`)
  console.log(`baseline  tableFromIPC(readFileSync): median ${base.toFixed(1)} ms (runs: ${baseMs.map((x) => x.toFixed(1)).join(', ')});` +
    ` RssAnon +${fmt(baseRssGrowth)}`)
  console.log(`ratio: ${(base / cold).toFixed(1)}x faster (goal >= 8x); RssAnon growth ${(rssGrowth / columnBytes).toFixed(2)}x the column (goal < 2x);` +
    ` bytes paged in ${(bytesRead / th.byteLength * 100).toFixed(2)}% of the handle (1/${numColumns} = ${(100 / numColumns).toFixed(2)}%)`)
} finally {
  th?.dispose()
  fs.rmSync(ipcFile, { force: true })
}
