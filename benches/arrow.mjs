// coldpage/arrow benchmark: read one column of a paged-out table vs
// `tableFromIPC(fs.readFileSync(ipcFile))` of the whole table, and how much the
// process's anonymous RSS grows for the column read.
//
//   npm run bench:arrow -- [--gib 1] [--columns 16] [--batches 16] [--backend file|swap] [--runs 5] [--cold]
//
// --cold drops the page cache before every timed read (needs root): both sides
// then read from disk. Run with --expose-gc (the npm script does) so that the
// source table is really gone before the RSS is measured.
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
  },
})
const gib = Number(args.gib)
const numColumns = Number(args.columns)
const numBatches = Number(args.batches)
const runs = Number(args.runs)
const backend = args.backend
if (!(gib > 0) || !(numColumns > 0) || !(numBatches > 0) || !(runs > 0)) throw new Error('bad arguments')

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
