// The goals of issue 13 against node:fs, side by side in one process: file
// backend, a 256 MiB handle, warm page cache, random 4 KiB-aligned offsets.
// Each row is a ratio (coldpage time / baseline time, lower is better), the
// median over ROUNDS rounds in which the two sides alternate, so that a noisy
// neighbour hits both. readAtMany also reports its spread over the rounds
// (max / min of the per-round medians): the goal asks for steady runs.
//
//   npm run bench:goals            # ~1 min on 2 cores
//   node --expose-gc benches/goals.mjs [--rounds 7] [--only readAtMany] [--json FILE]
//
// Prints one table (op, baseline, ns or ms per op on each side, ratio, goal,
// met) and, with --json, writes the rows.
import { closeSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { getConfig, pageout } from 'coldpage'

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '7' }, json: { type: 'string' }, only: { type: 'string' } },
})
const ROUNDS = Number(args.rounds)
const KiB = 1024
const MiB = KiB * KiB
const SIZE = 256 * MiB
const SMALL = 4 * KiB
const BIG = 64 * MiB
const MANY = 1000
const gc = globalThis.gc ?? (() => {})

// Deterministic bytes that do not compress to nothing, and offsets.
const data = Buffer.allocUnsafe(SIZE)
for (let i = 0, x = 0x9e3779b9; i < SIZE; i += 4) {
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  data.writeInt32LE(x | 0, i)
}
function offsets(count, seed, span = SIZE) {
  const slots = span / SMALL
  const out = new Float64Array(count)
  let x = seed >>> 0
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = (x % slots) * SMALL
  }
  return out
}
const small = offsets(1 << 16, 0xc0ffee)
const manyRanges = Array.from(offsets(MANY, 0x5eed), (o) => [o, SMALL])

const path = join(getConfig().scratchDir, `coldpage-goals-${process.pid}.bin`)
writeFileSync(path, data)
const fd = openSync(path, 'r+')
process.once('exit', () => rmSync(path, { force: true }))
const handle = pageout(data, { backend: 'file' })
const reused = Buffer.allocUnsafe(SMALL)
const heapCopy = Buffer.from(data.subarray(0, BIG))

// Warm the page cache for both sides: every byte once.
handle.readAt(0, SIZE)
readSync(fd, Buffer.allocUnsafe(SIZE), 0, SIZE, 0)

/** Median ns per op of `fn` over `iters` calls, repeated `reps` times. */
function time(fn, iters, reps = 5) {
  const samples = []
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < iters; i++) fn(i)
    samples.push(Number(process.hrtime.bigint() - t0) / iters)
  }
  samples.sort((a, b) => a - b)
  return samples[samples.length >> 1]
}

const rows = [
  {
    op: 'readAt 4 KiB',
    baseline: 'fs.readSync into a new Buffer',
    goal: 0.8,
    ours: () => time((i) => handle.readAt(small[i & 0xffff], SMALL), 20_000),
    theirs: () => time((i) => readSync(fd, Buffer.allocUnsafe(SMALL), 0, SMALL, small[i & 0xffff]), 20_000),
  },
  {
    op: 'readInto 4 KiB',
    baseline: 'fs.readSync into the same Buffer',
    goal: 0.8,
    ours: () => time((i) => handle.readInto(small[i & 0xffff], reused), 20_000),
    theirs: () => time((i) => readSync(fd, reused, 0, SMALL, small[i & 0xffff]), 20_000),
  },
  {
    op: `readAtMany ${MANY} × 4 KiB`,
    baseline: `${MANY} fs.readSync`,
    goal: 0.34,
    spread: true,
    ours: () => time(() => handle.readAtMany(manyRanges), 20),
    theirs: () =>
      time(() => {
        const out = new Array(MANY)
        for (let j = 0; j < MANY; j++) {
          out[j] = Buffer.allocUnsafe(SMALL)
          readSync(fd, out[j], 0, SMALL, manyRanges[j][0])
        }
        return out
      }, 20),
  },
  {
    op: 'readAt 64 MiB',
    baseline: 'fs.readSync 64 MiB',
    goal: 1.0,
    big: true,
    ours: () => time((i) => handle.readAt((i % 4) * BIG, BIG), 1, 3),
    theirs: () => time((i) => readSync(fd, Buffer.allocUnsafe(BIG), 0, BIG, (i % 4) * BIG), 1, 3),
  },
  {
    op: 'readAt 64 MiB',
    baseline: 'Buffer.from of an in-heap copy',
    goal: 1.1,
    big: true,
    ours: () => time(() => handle.readAt(0, BIG), 1, 3),
    theirs: () => time(() => Buffer.from(heapCopy), 1, 3),
  },
  {
    op: 'pageout 64 MiB, file',
    baseline: 'fs.writeSync 64 MiB',
    goal: 1.0,
    big: true,
    ours: () => time(() => pageout(heapCopy, { backend: 'file' }).dispose(), 1, 3),
    theirs: () => time(() => writeSync(fd, heapCopy, 0, BIG, 0), 1, 3),
  },
]
if (process.platform === 'linux') {
  // Swap take is O(1) from JS when a 256 MiB take costs about what a 4 KiB one does.
  const takeOf = (bytes, iters) => {
    let total = 0
    for (let i = 0; i < iters; i++) {
      const h = pageout(data.subarray(0, bytes), { backend: 'swap' })
      const t0 = process.hrtime.bigint()
      h.take()
      total += Number(process.hrtime.bigint() - t0)
    }
    return total / iters
  }
  rows.push({
    op: 'swap take 256 MiB',
    baseline: 'swap take 4 KiB',
    goal: 10,
    big: true,
    ours: () => takeOf(SIZE, 3),
    theirs: () => takeOf(SMALL, 200),
  })
}

if (args.only !== undefined) rows.splice(0, rows.length, ...rows.filter((r) => r.op.includes(args.only)))
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
for (const row of rows) {
  row.oursNs = []
  row.theirsNs = []
}
for (let round = 0; round < ROUNDS; round++) {
  for (const row of rows) {
    // Alternate which side goes first, so warm-up and drift favour neither.
    const order = round % 2 === 0 ? ['theirs', 'ours'] : ['ours', 'theirs']
    for (const side of order) {
      if (row.big) gc()
      row[`${side}Ns`].push(row[side]())
    }
  }
  process.stderr.write(`  round ${round + 1}/${ROUNDS}\r`)
}
process.stderr.write('\n')
handle.dispose()
closeSync(fd)

const fmt = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e4 ? `${(ns / 1e3).toFixed(1)} µs` : `${Math.round(ns)} ns`)
const out = rows.map((r) => {
  const ours = median(r.oursNs)
  const theirs = median(r.theirsNs)
  const ratio = ours / theirs
  const spread = r.spread ? Math.max(...r.oursNs) / Math.min(...r.oursNs) : undefined
  return { op: r.op, baseline: r.baseline, oursNs: ours, theirsNs: theirs, ratio, goal: r.goal, met: ratio <= r.goal, spread }
})
const table = [
  ['op', 'baseline', 'coldpage', 'baseline', 'ratio', 'goal', ''],
  ...out.map((r) => [
    r.op,
    r.baseline,
    fmt(r.oursNs),
    fmt(r.theirsNs),
    r.ratio.toFixed(2) + (r.spread === undefined ? '' : ` (spread ${r.spread.toFixed(2)}×)`),
    `≤ ${r.goal}`,
    r.met ? 'met' : 'MISSED',
  ]),
]
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)))
console.log(`issue 13 goals, file backend, ${SIZE / MiB} MiB handle, median of ${ROUNDS} rounds, Node ${process.version}`)
for (const row of table) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  '))
if (args.json) writeFileSync(args.json, `${JSON.stringify(out, null, 2)}\n`)
