#!/usr/bin/env node
// The desktop-session benchmark (issue 25): a user's session over 16 Arrow tables of
// 10-300 MiB (seeded, generated once and cached under the tmp dir) against
// `createStore({ residentBytes: 512 MiB })` and a plain Map holding every table.
// Shapes: few big batches of numbers; many small batches (1,024 rows, as parquet-wasm
// reads real files) with strings, a dictionary column and nulls; string-heavy batches.
// The session: ~240 actions, each opens a table (the first time it is viewed: the file
// is read and the table set) and reads 1-3 of its columns (`getTable` / `select`),
// yielding to the event loop between actions as a UI does.
// Tables are opened both ways apps open them:
//   file     tableFromIPC(readFileSync(f)): every column a view of one file buffer
//   columns  each column in a buffer of its own (read from a file per column, as
//            column-wise readers give them)
// Each mode runs in a child process of its own. Printed per mode: RssAnon (from
// /proc/self/status, sampled after every read of a file, set and read) peak and median
// of the second half against the budget + the process's baseline (RssAnon before the
// first table), getTable p50/p99, the slowest set, and correctness (every byte of every
// column read checked against its SHA-1 from generation). Goals (issue 25's "Done when")
// are printed met/missed.
//
// Usage: npm run bench:session -- [--budget-mib 512] [--actions 240] [--seed 25]
//          [--only store-file,map-file] [--gc] [--malloc-compare] [--semi-space MIB] [--json]
//   --gc   collect garbage after every action (node --expose-gc): the live set alone,
//          apart from values the store let go of that wait for V8's next collection
//   --semi-space MIB  runs every mode with V8's young generation capped
//          (`--max-semi-space-size`; Node 20's default is 16 MiB per semi-space): its
//          pages count in RssAnon, beside what the store or the Map holds
//   --malloc-compare  adds store-file with MALLOC_MMAP_THRESHOLD_=33554432 (glibc's
//          ceiling for its dynamic threshold, where it ends up once large blocks were freed),
//          which disables coldpage's own setting (large blocks mapped from 1 MiB)
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { xorshift32 } from './lib/rng.mjs'

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : fallback
}
const MIB = 2 ** 20
const budgetBytes = Number(flag('budget-mib', '512')) * MIB
const actions = Number(flag('actions', '240'))
const seed = Number(flag('seed', '25'))
const child = flag('child', undefined)
const json = args.includes('--json')
const collect = args.includes('--gc')
const semiSpace = flag('semi-space', undefined)
/** Table sizes in MiB (sum 1,482 MiB): the issue's session had 16 tables of 11-271 MiB. */
const SIZES_MIB = [10, 12, 16, 20, 26, 34, 44, 56, 70, 86, 104, 124, 150, 190, 240, 300]
const CACHE = path.join(os.tmpdir(), `coldpage-session-v1-${seed}`)

const require_ = (await import('node:module')).createRequire(import.meta.url)
const arrow = require_('apache-arrow')

// ---------------------------------------------------------------- generation

const SHAPES = ['numbers', 'small-batches', 'strings']

/** Bytes of `n` seeded lowercase words of 3-14 letters: [offsets, values]. */
function words(next, n, vocabulary) {
  const offsets = new Int32Array(n + 1)
  const parts = []
  let at = 0
  for (let i = 0; i < n; i++) {
    const w = vocabulary[next() % vocabulary.length]
    parts.push(w)
    at += w.byteLength
    offsets[i + 1] = at
  }
  return [offsets, Buffer.concat(parts, at)]
}

/** A validity bitmap with about one null in `every`, and its null count. */
function validity(next, n, every) {
  const bits = new Uint8Array(Math.ceil(n / 64) * 8).fill(0xff)
  let nulls = 0
  for (let i = 0; i < n; i++) {
    if (next() % every === 0) {
      bits[i >> 3] &= ~(1 << (i & 7))
      nulls++
    }
  }
  return [bits, nulls]
}

/** One record batch of `rows` rows of `shape`. */
function batchOf(shape, next, rows, dict, vocabulary) {
  const A = arrow
  const columns = {}
  const f64 = () => Float64Array.from({ length: rows }, () => next() / 4096)
  const i32 = () => Int32Array.from({ length: rows }, () => next() | 0)
  if (shape === 'numbers') {
    for (let c = 0; c < 6; c++) columns[`x${c}`] = A.makeData({ type: new A.Float64(), data: f64() })
    columns.id = A.makeData({ type: new A.Int32(), data: i32() })
    columns.ts = A.makeData({ type: new A.TimestampMillisecond(), data: BigInt64Array.from({ length: rows }, () => BigInt(1_700_000_000_000 + next())) })
  } else {
    const [bits, nulls] = validity(next, rows, 11)
    columns.id = A.makeData({ type: new A.Int32(), data: i32() })
    columns.price = A.makeData({ type: new A.Float64(), data: f64(), nullBitmap: bits, nullCount: nulls })
    const [o1, v1] = words(next, rows, vocabulary)
    columns.name = A.makeData({ type: new A.Utf8(), valueOffsets: o1, data: v1 })
    columns.tag = A.makeData({ type: dict.type, data: Int32Array.from({ length: rows }, () => next() % dict.size), dictionary: dict.vector })
    if (shape === 'strings') {
      for (let c = 0; c < 3; c++) {
        const [o, v] = words(next, rows, vocabulary)
        columns[`text${c}`] = A.makeData({ type: new A.Utf8(), valueOffsets: o, data: v })
      }
    } else {
      columns.qty = A.makeData({ type: new A.Int32(), data: i32() })
    }
  }
  return new A.RecordBatch(columns)
}

/** SHA-1 of a column's logical bytes (types, lengths, nulls, offsets, values, dictionaries). */
function columnHash(vector) {
  const h = createHash('sha1')
  const dictionaries = new Set()
  const view = (v, n) => new Uint8Array(v.buffer, v.byteOffset, n)
  const visit = (d) => {
    h.update(`${d.type.typeId}:${d.length}:${d.nullCount};`)
    if (d.nullCount > 0) h.update(view(d.nullBitmap, Math.ceil(d.length / 8)))
    if (d.valueOffsets) {
      h.update(view(d.valueOffsets, (d.length + 1) * d.valueOffsets.BYTES_PER_ELEMENT))
      h.update(view(d.values, Number(d.valueOffsets[d.length])))
    } else if (d.values) {
      h.update(view(d.values, d.length * d.values.BYTES_PER_ELEMENT * (d.stride ?? 1)))
    }
    for (const c of d.children) visit(c)
    if (d.dictionary && !dictionaries.has(d.dictionary)) {
      dictionaries.add(d.dictionary)
      for (const part of d.dictionary.data) visit(part)
    }
  }
  for (const d of vector.data) visit(d)
  return h.digest('hex')
}

/** Generates (or finds in the cache) the tables: files and a manifest with sizes and column hashes. */
function generate() {
  const manifestPath = path.join(CACHE, 'manifest.json')
  if (fs.existsSync(manifestPath)) return JSON.parse(fs.readFileSync(manifestPath, 'utf8'))
  fs.mkdirSync(CACHE, { recursive: true })
  const next = xorshift32(seed)
  const vocabulary = Array.from({ length: 5000 }, () => Buffer.from(Array.from({ length: 3 + (next() % 12) }, () => String.fromCharCode(97 + (next() % 26))).join('')))
  const tables = []
  SIZES_MIB.forEach((mib, n) => {
    const shape = SHAPES[n % SHAPES.length]
    const rowsPerBatch = shape === 'small-batches' ? 1024 : shape === 'numbers' ? 65_536 : 16_384
    const dictValues = Array.from({ length: 200 }, (_, i) => `category-${i}`)
    const dict = { type: new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32(), n), vector: arrow.vectorFromArray(dictValues, new arrow.Utf8()), size: dictValues.length }
    const batches = []
    let bytes = 0
    while (bytes < mib * MIB) {
      const b = batchOf(shape, next, rowsPerBatch, dict, vocabulary)
      batches.push(b)
      bytes += b.data.children.reduce((s, d) => s + (d.values?.byteLength ?? 0) + (d.valueOffsets?.byteLength ?? 0) + (d.nullBitmap?.byteLength ?? 0), 0)
    }
    const table = new arrow.Table(batches)
    const file = path.join(CACHE, `t${String(n).padStart(2, '0')}-${shape}.arrow`)
    fs.writeFileSync(file, arrow.tableToIPC(table, 'file'))
    const columnBytes = (v) => v.data.reduce((sum, d) => sum + (d.values?.byteLength ?? 0) + (d.valueOffsets?.byteLength ?? 0) + (d.nullBitmap?.byteLength ?? 0), 0)
    const columns = table.schema.fields.map((f) => ({ name: f.name, bytes: columnBytes(table.getChild(f.name)), hash: columnHash(table.getChild(f.name)) }))
    tables.push({ file, shape, batches: batches.length, bytes: fs.statSync(file).size, columns })
    process.stderr.write(`generated ${path.basename(file)}: ${(fs.statSync(file).size / MIB).toFixed(0)} MiB, ${batches.length} batches\n`)
  })
  const manifest = { seed, tables }
  fs.writeFileSync(manifestPath, JSON.stringify(manifest))
  return manifest
}

/** The session: per action a table (Zipf-like: a few tables are viewed often) and 1-3 of its columns. */
function session(manifest) {
  const next = xorshift32(seed * 7919)
  const n = manifest.tables.length
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** 0.8)
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1)
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  const total = weights.reduce((s, w) => s + w, 0)
  const out = []
  for (let a = 0; a < actions; a++) {
    let r = (next() / 2 ** 32) * total
    let k = 0
    while (r > weights[k] && k < n - 1) r -= weights[k++]
    const t = order[k]
    const cols = manifest.tables[t].columns.map((c) => c.name)
    const want = 1 + (next() % 3)
    const picked = []
    while (picked.length < want) {
      const c = cols[next() % cols.length]
      if (!picked.includes(c)) picked.push(c)
    }
    out.push({ table: t, columns: picked })
  }
  return out
}

// ---------------------------------------------------------------- one mode (child)

function rssAnon() {
  const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

/** The file of column `c` of table file `file` (an IPC file holding that column alone). */
const columnFile = (file, c) => file.replace(/\.arrow$/, `.c${c}.arrow`)

/** Writes each table's columns to files of their own (once; cached with the tables). */
function splitColumns(manifest) {
  for (const t of manifest.tables) {
    if (t.columns.every((_, c) => fs.existsSync(columnFile(t.file, c)))) continue
    const table = arrow.tableFromIPC(fs.readFileSync(t.file))
    t.columns.forEach((col, c) => fs.writeFileSync(columnFile(t.file, c), arrow.tableToIPC(table.select([col.name]), 'file')))
    process.stderr.write(`split ${path.basename(t.file)} into ${t.columns.length} column files\n`)
  }
}

/** A table opened column by column: each column read from its own file, so each is a buffer of its own. */
function openColumns(t) {
  const A = arrow
  const parts = t.columns.map((_, c) => A.tableFromIPC(fs.readFileSync(columnFile(t.file, c))))
  const fields = parts.map((p) => p.schema.fields[0])
  const schema = new A.Schema(fields)
  const struct = new A.Struct(fields)
  const batches = parts[0].batches.map((b, i) => new A.RecordBatch(schema, new A.Data(struct, 0, b.numRows, 0, {}, parts.map((p) => p.batches[i].data.children[0]))))
  return new A.Table(schema, batches)
}

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

async function runMode(mode) {
  const manifest = JSON.parse(fs.readFileSync(path.join(CACHE, 'manifest.json'), 'utf8'))
  const plan = session(manifest)
  const [holder, opening] = mode.split('-')
  const { createStore, pageout } = holder === 'store' ? require_('..') : {}
  const tick = () => new Promise((r) => setImmediate(r))
  await tick()
  const baseline = rssAnon()
  const store = holder === 'store' ? createStore({ residentBytes: budgetBytes, pressure: false }) : null
  const map = new Map()
  const samples = []
  const getMs = []
  const pageInBytes = []
  const setMs = []
  let largestSet = 0
  let checked = 0
  let wrong = 0
  for (const action of plan) {
    const t = manifest.tables[action.table]
    const key = `t${action.table}`
    if (!(store ? store.has(key) : map.has(key))) {
      let table = opening === 'columns' ? openColumns(t) : arrow.tableFromIPC(fs.readFileSync(t.file))
      samples.push(rssAnon())
      const t0 = performance.now()
      if (store) store.set(key, table)
      else map.set(key, table)
      setMs.push(performance.now() - t0)
      largestSet = Math.max(largestSet, t.bytes)
      table = null
      samples.push(rssAnon())
    }
    const misses = store?.stats().misses
    const t0 = performance.now()
    const got = store ? store.getTable(key, { columns: action.columns }) : map.get(key).select(action.columns)
    getMs.push(performance.now() - t0)
    if (store && store.stats().misses > misses) {
      const bytes = action.columns.reduce((sum, name) => sum + t.columns.find((c) => c.name === name).bytes, 0)
      pageInBytes.push(bytes)
    } else {
      pageInBytes.push(0)
    }
    for (const name of action.columns) {
      const want = t.columns.find((c) => c.name === name).hash
      checked++
      if (columnHash(got.getChild(name)) !== want) wrong++
    }
    if (collect) globalThis.gc()
    samples.push(rssAnon())
    await tick()
  }
  const second = samples.slice(Math.floor(samples.length / 2))
  const result = {
    mode,
    baseline,
    peak: Math.max(...samples),
    median: percentile(second, 50),
    getP50: percentile(getMs, 50),
    getP99: percentile(getMs, 99),
    allowanceP99: 0,
    slowestSet: Math.max(...setMs),
    largestSet,
    checked,
    wrong,
    readMiBs: null,
    stats: store?.stats(),
  }
  store?.dispose()
  // Cold page-in throughput of this process's backend (for the getTable goal): 64 MiB
  // paged out and read back, measured after the session so its buffers stay out of it.
  if (holder === 'store') {
    const h = pageout(Buffer.alloc(64 * MIB, 1))
    h.readAt(0, MIB)
    const t1 = performance.now()
    h.readAt(0, 64 * MIB)
    const perMs = (64 * MIB) / (performance.now() - t1)
    h.dispose()
    result.readMiBs = (perMs * 1000) / MIB
    result.allowanceP99 = percentile(pageInBytes.map((b) => b / perMs), 99)
  }
  return result
}

// ---------------------------------------------------------------- driver

if (child !== undefined) {
  console.log(JSON.stringify(await runMode(child)))
  process.exit(0)
}

if (process.platform !== 'linux') {
  console.log('bench:session reads RssAnon from /proc/self/status: Linux only')
  process.exit(0)
}

const t0 = performance.now()
const manifest = generate()
splitColumns(manifest)
const genS = (performance.now() - t0) / 1000
const modes = (flag('only', undefined)?.split(',') ?? ['map-file', 'store-file', 'map-columns', 'store-columns'])
const runs = modes.map((m) => ({ mode: m, env: {} }))
if (args.includes('--malloc-compare')) runs.push({ mode: 'store-file', env: { MALLOC_MMAP_THRESHOLD_: String(32 * MIB) }, label: 'store-file (glibc threshold 32 MiB)' })
const here = path.dirname(fileURLToPath(import.meta.url))
const results = []
for (const r of runs) {
  const v8Flags = [...(collect ? ['--expose-gc'] : []), ...(semiSpace === undefined ? [] : [`--max-semi-space-size=${Number(semiSpace)}`])]
  const out = execFileSync(process.execPath, [...v8Flags, path.join(here, 'session.mjs'), ...args.filter((a) => a !== '--json'), '--child', r.mode], {
    env: { ...process.env, ...r.env },
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  })
  const res = JSON.parse(out.trim().split('\n').pop())
  res.label = r.label ?? r.mode
  results.push(res)
  process.stderr.write(`${res.label}: done\n`)
}

const mib = (b) => (b / MIB).toFixed(0)
const largest = Math.max(...manifest.tables.map((t) => t.bytes))
if (json) {
  console.log(JSON.stringify({ budgetBytes, actions, seed, tables: manifest.tables.map((t) => ({ shape: t.shape, bytes: t.bytes, batches: t.batches })), results }, null, 2))
} else {
  if (semiSpace !== undefined) console.log(`(every mode with --max-semi-space-size=${Number(semiSpace)})`)
  console.log(`bench:session — ${manifest.tables.length} tables (${mib(manifest.tables.reduce((s, t) => s + t.bytes, 0))} MiB, ${mib(Math.min(...manifest.tables.map((t) => t.bytes)))}-${mib(largest)} MiB), ${actions} actions, budget ${mib(budgetBytes)} MiB, seed ${seed} (tables ${genS < 1 ? 'cached' : `generated in ${genS.toFixed(0)} s`} under ${CACHE})`)
  console.log('| mode | baseline | RssAnon peak | median, 2nd half | getTable p50 / p99 | slowest set | bytes right |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of results) {
    console.log(`| ${r.label} | ${mib(r.baseline)} MiB | ${mib(r.peak)} MiB | ${mib(r.median)} MiB | ${r.getP50.toFixed(1)} / ${r.getP99.toFixed(1)} ms | ${r.slowestSet.toFixed(0)} ms | ${r.checked - r.wrong}/${r.checked} columns |`)
  }
  console.log('\nGoals (issue 25), per store mode against the Map of the same opening:')
  for (const r of results.filter((x) => x.mode.startsWith('store'))) {
    const map = results.find((x) => x.mode === r.mode.replace('store', 'map'))
    const steady = 1.15 * budgetBytes + r.baseline
    const peakGoal = budgetBytes + 1.1 * r.largestSet + r.baseline
    const goals = [
      [`steady RssAnon ${mib(r.median)} MiB <= 1.15 x budget + baseline = ${mib(steady)} MiB`, r.median <= steady],
      [`peak RssAnon ${mib(r.peak)} MiB <= budget + 1.1 x largest table set (${mib(r.largestSet)} MiB) + baseline = ${mib(peakGoal)} MiB`, r.peak <= peakGoal],
      map === undefined
        ? ['getTable p99: no Map run of this opening to compare with', null]
        : [`getTable p99 ${r.getP99.toFixed(1)} ms <= Map's ${map.getP99.toFixed(1)} ms + cold page-in p99 ${r.allowanceP99.toFixed(1)} ms (selected columns at ${r.readMiBs.toFixed(0)} MiB/s)`, r.getP99 <= map.getP99 + r.allowanceP99],
      [`every byte right: ${r.checked - r.wrong}/${r.checked} columns`, r.wrong === 0],
    ]
    console.log(`${r.label}:`)
    for (const [text, met] of goals) console.log(`  ${met === null ? 'n/a   ' : met ? 'met   ' : 'MISSED'} ${text}`)
  }
  for (const r of results.filter((x) => x.mode.startsWith('map'))) if (r.wrong > 0) console.log(`${r.label}: ${r.wrong} columns wrong`)
}
