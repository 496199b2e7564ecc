// The main job, on defaults: a desktop-analytics session holds a big Arrow
// table, pages it out when it goes cold, then answers a query by paging back
// only the two columns it needs.
//
//   npm run demo                      # builds, then: node --expose-gc examples/demo.mjs
//   node --expose-gc examples/demo.mjs --gib 0.5 --slices 4
//
// No setup: the default config (`backend: 'auto'`, the default scratch dir),
// no root, with or without swap. The table is built batch by batch and paged
// out slice by slice, each slice released as soon as it is out, so the peak is
// about the table plus one slice, never two tables.
import { readFileSync } from 'node:fs'
import { freemem, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

import * as A from 'apache-arrow'
import cliProgress from 'cli-progress'
import { doctor, getConfig, stats } from 'coldpage'
import { pageoutTableAsync } from 'coldpage/arrow'

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string' },
    slices: { type: 'string', default: '6' },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (args.help) {
  console.log('usage: node --expose-gc examples/demo.mjs [--gib 1.5] [--slices 6]')
  process.exit(0)
}

const KiB = 1024
const MiB = KiB * KiB
const GiB = MiB * KiB
const ROWS_PER_BATCH = 1 << 18
const gc = globalThis.gc ?? (() => {})
const now = () => performance.now()
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`
const size = (bytes) => (Math.abs(bytes) >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(0)} MiB`)
const rate = (bytes, ms) => `${(bytes / GiB / (ms / 1000)).toFixed(2)} GiB/s`

// Anonymous resident memory (the heap, malloc, pager swap regions): what paging
// out is meant to shrink. File pages (the page cache) are the kernel's to drop.
function procStatus(field) {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))
    return m === null ? Number.NaN : Number(m[1]) * KiB
  } catch {
    return Number.NaN // no procfs: not Linux
  }
}
const rssAnon = () => {
  const anon = procStatus('RssAnon')
  return Number.isNaN(anon) ? process.memoryUsage().rss : anon
}
const peakRss = () => procStatus('VmHWM')
function settle() {
  // Twice: the first pass finds the dead batches, the second frees what their
  // finalizers released.
  gc()
  gc()
}

function progress(label, total, unit) {
  const bar = new cliProgress.SingleBar(
    {
      format: `  ${label.padEnd(26)} {bar} {percentage}% | {value}/{total} ${unit} | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  )
  bar.start(total, 0)
  return bar
}

// ---------------------------------------------------------------------------
// The table: 20 columns of a product-analytics event log, 128 bytes a row.

const REGIONS = ['EMEA', 'North America', 'LATAM', 'APAC', 'Middle East', 'Africa', 'Oceania', 'Nordics']
const COUNTRIES = 'DE FR GB IT ES NL SE NO DK FI PL CZ AT CH BE PT IE US CA MX BR AR CL CO PE JP KR CN IN SG AU NZ ZA NG EG AE SA IL TR UA'.split(' ')
const DEVICES = ['desktop', 'laptop', 'tablet', 'phone', 'tv']
const OSES = ['Windows', 'macOS', 'Linux', 'iOS', 'Android', 'ChromeOS']
const EVENTS = ['view', 'click', 'search', 'add_to_cart', 'remove_from_cart', 'checkout', 'purchase', 'refund', 'login', 'logout']

const dict = (values) => ({ type: new A.Dictionary(new A.Utf8(), new A.Int32()), values: A.vectorFromArray(values, new A.Utf8()) })
const COLUMNS = [
  ['ts', new A.TimestampMillisecond()],
  ['event_id', new A.Int64()],
  ['session_id', new A.Int64()],
  ['user_id', new A.Int32()],
  ['region', dict(REGIONS)],
  ['country', dict(COUNTRIES)],
  ['device', dict(DEVICES)],
  ['os', dict(OSES)],
  ['event_type', dict(EVENTS)],
  ['amount', new A.Float64()],
  ['price', new A.Float64()],
  ['quantity', new A.Int32()],
  ['discount', new A.Float64()],
  ['latency_ms', new A.Float64()],
  ['cpu_pct', new A.Float32()],
  ['mem_mb', new A.Float64()],
  ['score', new A.Float64()],
  ['lat', new A.Float64()],
  ['lon', new A.Float64()],
  ['duration_ms', new A.Float64()],
].map(([name, t]) => (t instanceof A.DataType ? { name, type: t } : { name, type: t.type, dictionary: t.values }))
const BYTES_PER_ROW = 128
const schema = new A.Schema(COLUMNS.map((c) => new A.Field(c.name, c.type, false)))

// xorshift32: cheap, deterministic, good enough for synthetic data.
let seed = 0x9e3779b9
const rand = () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 4294967296
}

/** One record batch of `n` rows starting at row `row0`; adds its revenue by region to `expected`. */
function makeBatch(row0, n, expected) {
  const T0 = Date.UTC(2026, 0, 1)
  const children = COLUMNS.map((c) => {
    const type = c.type
    if (c.dictionary !== undefined) {
      const k = c.dictionary.length
      const idx = new Int32Array(n)
      // A skewed draw, so that the groups differ in size.
      for (let i = 0; i < n; i++) idx[i] = Math.floor(k * rand() * rand())
      return A.makeData({ type, length: n, nullCount: 0, data: idx, dictionary: c.dictionary })
    }
    if (type.ArrayType === BigInt64Array) {
      const words = new Int32Array(2 * n) // written as lo/hi words: BigInts are slow to make
      for (let i = 0; i < n; i++) {
        const r = row0 + i
        const v = c.name === 'ts' ? T0 + r * 7 + Math.floor(rand() * 5) : c.name === 'event_id' ? 1e12 + r : 5e11 + Math.floor(r / 37)
        words[2 * i] = v % 4294967296
        words[2 * i + 1] = Math.floor(v / 4294967296)
      }
      return A.makeData({ type, length: n, nullCount: 0, data: new BigInt64Array(words.buffer) })
    }
    const values = new type.ArrayType(n)
    for (let i = 0; i < n; i++) values[i] = c.name === 'user_id' ? Math.floor(rand() * 5e6) : c.name === 'quantity' ? 1 + Math.floor(rand() * 8) : rand() * 1000
    return A.makeData({ type, length: n, nullCount: 0, data: values })
  })
  const region = children[COLUMNS.findIndex((c) => c.name === 'region')].values
  const amount = children[COLUMNS.findIndex((c) => c.name === 'amount')].values
  for (let i = 0; i < n; i++) {
    expected.sums[region[i]] += amount[i]
    expected.counts[region[i]]++
  }
  const struct = A.makeData({ type: new A.Struct(schema.fields), length: n, nullCount: 0, children })
  return new A.RecordBatch(schema, struct)
}

// ---------------------------------------------------------------------------

const report = doctor()
const selector = getConfig().backend
const backend = selector === 'auto' ? report.auto.backend : selector
let gib = args.gib === undefined ? 1.5 : Number(args.gib)
if (!(gib > 0) || !Number.isFinite(gib)) throw new RangeError(`--gib must be a positive number of GiB, got ${args.gib}`)
// Keep a default run sane on a small machine: the table plus one slice must fit
// in memory, and a file-backed table on the scratch disk.
const room = Math.min(0.6 * freemem(), backend === 'file' ? 0.8 * report.scratchFreeBytes : Infinity)
if (args.gib === undefined && gib * GiB > room) {
  gib = Math.max(0.1, Math.floor((room / GiB) * 10) / 10)
  console.log(`(only ${size(freemem())} of memory free / ${size(report.scratchFreeBytes)} of scratch: using --gib ${gib})`)
}
const numBatches = Math.max(1, Math.round((gib * GiB) / (BYTES_PER_ROW * ROWS_PER_BATCH)))
const numRows = numBatches * ROWS_PER_BATCH
const numSlices = Math.min(numBatches, Math.max(1, Number(args.slices) | 0))
const tableBytes = numRows * BYTES_PER_ROW

console.log(`coldpage demo: ${COLUMNS.length} columns x ${(numRows / 1e6).toFixed(1)}M rows (${size(tableBytes)}) on ${report.platform}, ${size(totalmem())} RAM, Node ${process.version}`)
console.log(selector === 'auto' ? `  backend 'auto' picks ${backend}: ${report.auto.reason}` : `  backend '${backend}' (set by the environment or a config file)`)
console.log(`  scratch dir ${getConfig().scratchDir} (${report.scratchFs}, ${size(report.scratchFreeBytes)} free)${report.zeroCopy ? '' : '; zero-copy off'}`)
for (const w of report.warnings) console.log(`  note: ${w}`)
settle()
const rss0 = rssAnon()
console.log(`  RssAnon at start: ${size(rss0)}\n`)
const timings = {}

// 1. Build the table, one record batch at a time (as a query result would arrive).
const expected = { sums: new Float64Array(REGIONS.length), counts: new Float64Array(REGIONS.length) }
let batches = []
let t = now()
let bar = progress('1/5 build the table', Math.round(tableBytes / MiB), 'MiB')
for (let b = 0; b < numBatches; b++) {
  batches.push(makeBatch(b * ROWS_PER_BATCH, ROWS_PER_BATCH, expected))
  bar.update(Math.round(((b + 1) * ROWS_PER_BATCH * BYTES_PER_ROW) / MiB))
}
bar.stop()
timings.build = now() - t
let table = new A.Table(schema, batches)
settle()
const rssTable = rssAnon()
console.log(`  built ${table.numRows.toLocaleString('en')} rows in ${secs(timings.build)}; RssAnon with the table in the heap: ${size(rssTable)}`)

// 2. The table goes cold: page it out a slice of record batches at a time,
// letting go of each slice as soon as it is paged out.
const handles = []
const perSlice = Math.ceil(numBatches / numSlices)
timings.pageout = 0 // the pageout calls alone, not the gc between slices
bar = progress(`2/5 pageout (${numSlices} slices)`, Math.round(tableBytes / MiB), 'MiB')
let done = 0
table = undefined
for (let s = 0; s < numBatches; s += perSlice) {
  const n = Math.min(perSlice, numBatches - s)
  t = now()
  handles.push(await pageoutTableAsync(new A.Table(schema, batches.slice(s, s + n))))
  timings.pageout += now() - t
  for (let b = s; b < s + n; b++) batches[b] = undefined
  done += n
  settle()
  bar.update(Math.round((done * ROWS_PER_BATCH * BYTES_PER_ROW) / MiB))
}
bar.stop()
batches = undefined
settle()
const rssOut = rssAnon()
const paged = handles.reduce((sum, h) => sum + h.byteLength, 0)
console.log(`  paged out ${size(paged)} in ${handles.length} table handles in ${secs(timings.pageout)} (${rate(paged, timings.pageout)})`)
console.log(`  RssAnon after pageout and gc: ${size(rssOut)} (${size(rssOut - rssTable)} vs the table in the heap)`)
if (backend === 'swap') console.log('  (swap backend: the pages are MADV_COLD, first in line for swap; RssAnon falls when the kernel needs the memory)')

// 3. A query arrives: page in only the two columns it needs.
t = now()
bar = progress('3/5 read region + amount', handles.length, 'slices')
const parts = []
for (const h of handles) {
  parts.push(h.read({ columns: ['region', 'amount'] }))
  bar.increment()
}
bar.stop()
timings.read = now() - t
const readBytes = stats().bytesRead
console.log(`  read ${size(readBytes)} (${((100 * readBytes) / paged).toFixed(1)}% of the paged-out bytes) in ${secs(timings.read)}; RssAnon ${size(rssAnon())}`)

// 4. SELECT region, count(*), sum(amount) GROUP BY region
t = now()
const sums = new Float64Array(REGIONS.length)
const counts = new Float64Array(REGIONS.length)
for (const part of parts) {
  const regionData = part.getChild('region').data
  const amountData = part.getChild('amount').data
  for (let d = 0; d < regionData.length; d++) {
    const region = regionData[d].values
    const amount = amountData[d].values
    for (let i = 0; i < region.length; i++) {
      sums[region[i]] += amount[i]
      counts[region[i]]++
    }
  }
}
timings.aggregate = now() - t
console.log(`\n  4/5 SELECT region, count(*), sum(amount) GROUP BY region   (${secs(timings.aggregate)})`)
const order = REGIONS.map((_, i) => i).sort((a, b) => sums[b] - sums[a])
for (const i of order) {
  console.log(`      ${REGIONS[i].padEnd(14)} ${counts[i].toLocaleString('en').padStart(11)} rows  ${sums[i].toLocaleString('en', { maximumFractionDigits: 2, minimumFractionDigits: 2 }).padStart(18)}`)
}
const same = sums.every((x, i) => x === expected.sums[i]) && counts.every((x, i) => x === expected.counts[i])
console.log(`      identical to the sums computed while building the table: ${same ? 'yes' : 'NO'}`)

// 5. Done with it: dispose frees the memory and the scratch space at once.
const during = stats()
t = now()
for (const h of handles) h.dispose()
timings.dispose = now() - t
const after = stats()
console.log(`\n  5/5 dispose ${handles.length} handles in ${secs(timings.dispose)}: ${after.swap.handles + after.file.handles} live handles, ${after.scratchBytesOnDisk} scratch bytes on disk`)

console.log('\ntimings')
for (const [k, ms] of Object.entries(timings)) console.log(`  ${k.padEnd(10)} ${secs(ms).padStart(9)}`)
console.log(`RssAnon: start ${size(rss0)}, table in heap ${size(rssTable)}, paged out ${size(rssOut)}; peak RSS (VmHWM) ${size(peakRss())}`)
console.log('stats() while paged out:', JSON.stringify(during))
console.log('stats() after dispose:   ', JSON.stringify(after))
if (!same) process.exitCode = 1
