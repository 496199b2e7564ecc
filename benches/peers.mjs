// Throughput and latency of coldpage against what apps use instead, in one
// process, on the same bytes: coldpage (swap and file backends), node:fs (a
// temp file per chunk; one spill file on an open fd), lmdb-js as a spill store,
// and the in-heap copy. Chunk sizes 4 KiB to 64 MiB; ops pageout, readAt of the
// whole chunk, readAt of 4 KiB at a random offset, readAtMany of 1000 random
// 4 KiB ranges, take, and the round trip (pageout + take). Medians (tinybench).
//
//   npm run bench                       # build, then the full run (~2-4 min on 2 cores)
//   npm run bench -- --quick            # shorter budgets; results to a temp dir
//   node --expose-gc benches/peers.mjs [--quick] [--sizes 4k,64m] [--ops readAt,take]
//                                      [--contenders coldpage-file,fs-fd] [--out DIR]
//
// Writes peers.json, peers.md and peers-<op>.svg to benches/results/ (with
// --quick: to a temp dir unless --out says otherwise).
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, release, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import cliProgress from 'cli-progress'
import { doctor, getConfig } from 'coldpage'
import { Bench } from 'tinybench'

import * as peers from './lib/contenders.mjs'
import { OPS, consoleTable, goals, goalsText, markdown, opLabel } from './lib/report.mjs'
import { barChart } from './lib/svg.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    ops: { type: 'string' },
    contenders: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (args.help) {
  console.log('usage: node --expose-gc benches/peers.mjs [--quick] [--sizes 4k,64k,1m,16m,64m] [--ops pageout,...] [--contenders coldpage-file,...] [--out DIR]')
  process.exit(0)
}

const KiB = 1024
const MiB = KiB * KiB
const RANGE = 4 * KiB
const MANY = 1000
const parseSize = (s) => {
  const m = /^(\d+)\s*([km])i?b?$/i.exec(s.trim())
  if (m === null) throw new RangeError(`--sizes: expected sizes like 4k or 64m, got ${s}`)
  return Number(m[1]) * (m[2].toLowerCase() === 'k' ? KiB : MiB)
}
const sizes = (args.sizes ?? '4k,64k,1m,16m,64m').split(',').map(parseSize)
const ops = args.ops === undefined ? OPS.map(([op]) => op) : args.ops.split(',')
for (const op of ops) if (!OPS.some(([id]) => id === op)) throw new RangeError(`--ops: unknown op ${op}`)

// Budgets per task: tinybench runs until both the time and the iteration count
// are reached. Big chunks get few iterations: a median of 6 runs of a 60 ms op
// is steadier than the machine it runs on. `take` needs a fresh pageout before
// every iteration (untimed), which can cost far more than the take itself, so
// it runs a fixed number of iterations instead of filling a time budget.
const budget = (size) => {
  const iterations = size >= 64 * MiB ? 6 : size >= 16 * MiB ? 10 : size >= MiB ? 30 : 50
  return args.quick
    ? { time: 40, iterations: Math.max(3, iterations >> 2), warmupTime: 0, warmupIterations: size >= 16 * MiB ? 1 : 5 }
    : { time: 200, iterations, warmupTime: 40, warmupIterations: size >= 16 * MiB ? 2 : 10 }
}
const takeBudget = (size) => {
  const iterations = size >= 64 * MiB ? 8 : size >= 16 * MiB ? 20 : size >= MiB ? 200 : 2000
  return { time: 0, iterations: args.quick ? Math.max(3, iterations >> 2) : iterations, warmupTime: 0, warmupIterations: size >= 16 * MiB ? 1 : 10 }
}

const gc = globalThis.gc
if (gc === undefined) console.warn('note: run with node --expose-gc (npm run bench does) to collect garbage between big iterations')
const report = doctor()
const work = mkdtempSync(join(getConfig().scratchDir, 'coldpage-peers-'))
const cleanup = () => rmSync(work, { recursive: true, force: true })
process.once('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    cleanup()
    process.exit(130)
  })
}

const all = [
  ...(process.platform === 'linux' ? [peers.coldpage('swap')] : []),
  peers.coldpage('file'),
  peers.fsFilePerChunk(work),
  peers.fsOneFd(work),
  peers.lmdb(work),
  peers.heap(),
]
const contenders = args.contenders === undefined ? all : all.filter((c) => args.contenders.split(',').includes(c.id))

// Deterministic data and offsets: every store sees the same bytes and ranges.
function offsets(size, count, seed) {
  const slots = Math.max(1, Math.floor((size - RANGE) / RANGE) + 1)
  const out = new Array(count)
  let x = seed >>> 0
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = (x % slots) * RANGE
  }
  return out
}

function check(c, size, data, ranges) {
  const stored = c.store(data)
  const fail = (what) => {
    throw new Error(`${c.label} returned wrong bytes for ${what} at ${size} bytes`)
  }
  if (!c.read(stored).equals(data)) fail('read')
  const [o] = ranges[0]
  if (!c.readRange(stored, o, RANGE).equals(data.subarray(o, o + RANGE))) fail('readRange')
  const many = c.readRanges(stored, ranges)
  if (many.length !== ranges.length || !ranges.every(([a, l], i) => many[i].equals(data.subarray(a, a + l)))) fail('readRanges')
  if (!c.take(stored).equals(data)) fail('take')
}

// The op bodies; `s` holds the state of one (store, size) pair.
const bodies = {
  pageout: (c, s) => ({
    fn: () => {
      s.last = c.store(s.data)
    },
    afterEach: () => c.release(s.last),
  }),
  readAt: (c, s) => ({ fn: () => c.read(s.stored) }),
  readAt4k: (c, s) => ({
    fn: () => c.readRange(s.stored, s.offsets[s.i++ % s.offsets.length], RANGE),
  }),
  readAtMany: (c, s) => ({ fn: () => c.readRanges(s.stored, s.ranges) }),
  take: (c, s) => ({
    beforeEach: () => {
      s.next = c.store(s.data)
    },
    fn: () => c.take(s.next),
  }),
  roundtrip: (c, s) => ({ fn: () => c.take(c.store(s.data)) }),
}
const WHOLE = new Set(['pageout', 'readAt', 'take', 'roundtrip'])
const bytesMoved = (op, size) => (op === 'readAt4k' ? RANGE : op === 'readAtMany' ? MANY * RANGE : size)

const rows = []
const started = performance.now()
const bar = new cliProgress.SingleBar(
  { format: '  {size} {bar} {value}/{total} tasks | {task} | {duration_formatted}', stream: process.stderr, hideCursor: true },
  cliProgress.Presets.shades_classic,
)
bar.start(sizes.length * contenders.reduce((n, c) => n + ops.filter((op) => c.skip?.[op] === undefined).length, 0), 0, { size: '', task: '' })
for (const size of sizes) {
  const data = randomFillSync(Buffer.allocUnsafe(size))
  const ranges = offsets(size, MANY, 0x5eed ^ size).map((o) => [o, RANGE])
  for (const c of contenders) check(c, size, data, ranges)
  const timed = new Bench({ ...budget(size), timestampProvider: 'hrtimeNow', throws: true })
  const counted = new Bench({ ...takeBudget(size), timestampProvider: 'hrtimeNow', throws: true })
  const states = new Map()
  for (const c of contenders) {
    const s = { data, stored: c.store(data), offsets: offsets(size, 4096, 0xc0ffee ^ size), ranges, i: 0 }
    states.set(c.id, s)
    for (const op of ops) {
      if (c.skip?.[op] !== undefined) continue
      const { fn, beforeEach, afterEach } = bodies[op](c, s)
      // Node runs the finalizers of external Buffers (what coldpage returns for
      // take and readAtMany) only when the event loop turns: yield every ~32 MiB
      // produced, or a synchronous loop grows RSS without bound. Collect the
      // garbage of a big chunk before the next iteration, so that its free is
      // not charged to whichever op happens to trigger GC.
      const every = Math.max(1, Math.floor((32 * MiB) / bytesMoved(op, size)))
      const collect = size >= 16 * MiB && WHOLE.has(op) && gc !== undefined
      let n = 0
      ;(op === 'take' ? counted : timed).add(`${op}|${c.id}`, fn, {
        async: false,
        beforeEach,
        afterEach: async () => {
          afterEach?.()
          if (++n % every !== 0) return
          if (collect) gc()
          await new Promise((resolve) => setImmediate(resolve))
        },
      })
    }
  }
  for (const bench of [timed, counted]) {
    bench.addEventListener('cycle', (e) => bar.increment(1, { size: `${(size >= MiB ? `${size / MiB}M` : `${size / KiB}K`).padStart(3)}`, task: e.task?.name ?? '' }))
    await bench.run()
    for (const task of bench.tasks) {
      const [op, contender] = task.name.split('|')
      const r = task.result
      if (r.state !== 'completed') throw new Error(`${task.name} at ${size} bytes: ${r.state} ${r.error?.message ?? ''}`)
      const medianMs = r.latency.p50
      rows.push({
        size,
        op,
        contender,
        medianMs,
        p75Ms: r.latency.p75,
        minMs: r.latency.min,
        samples: r.latency.samplesCount,
        gibPerS: bytesMoved(op, size) / 2 ** 30 / (medianMs / 1000),
      })
    }
  }
  for (const c of contenders) c.release(states.get(c.id).stored)
}
bar.stop()
for (const c of contenders) c.close()
const seconds = (performance.now() - started) / 1000

const git = (...a) => {
  try {
    return execFileSync('git', a, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}
const version = (pkg) => JSON.parse(readFileSync(join(here, '..', 'node_modules', pkg, 'package.json'), 'utf8')).version
const results = {
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  tinybench: version('tinybench'),
  lmdb: version('lmdb'),
  plan: args.quick ? 'quick budgets (≥ 40 ms and ≥ 3-12 iterations per task; take 3-500 iterations)' : '≥ 200 ms and ≥ 6-50 iterations per task after warm-up (take: 8-2000 iterations, each after an untimed fresh pageout); gc() between iterations of whole-chunk ops on chunks ≥ 16 MiB',
  seconds: Math.round(seconds),
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  machine: {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    swap: report.swapActive ? `${(report.swapTotalBytes / 2 ** 30).toFixed(1)} GiB` : 'off',
    kernel: release(),
    node: process.version,
    scratchDir: report.scratchDir,
    scratchFs: report.scratchFs,
    auto: report.auto.backend,
    commit: git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', '../crates', '../lib') === '' ? '' : '+dirty'),
  },
  sizes,
  ops,
  contenders: contenders.map((c) => ({ id: c.id, label: c.label, notes: { ...c.notes, ...c.skip } })),
  rows,
}

const verdicts = goals(results)
console.log(`\n${consoleTable(results)}\n`)
for (const c of results.contenders) for (const [op, note] of Object.entries(c.notes)) console.log(`  ${c.label}, ${opLabel(op)}: ${note}`)
console.log(`\n${goalsText(verdicts)}`)
console.log(`\n${rows.length} tasks in ${Math.round(seconds)} s on ${results.machine.cpu} (${results.machine.cores} cores), swap ${results.machine.swap}, scratch ${results.machine.scratchFs}`)

const outDir = args.out ?? (args.quick ? join(tmpdir(), 'coldpage-bench-quick') : join(here, 'results'))
mkdirSync(outDir, { recursive: true })
const charts = []
for (const op of ops) {
  const file = `peers-${op}.svg`
  const svg = barChart({
    title: `${opLabel(op)}: throughput by chunk size`,
    subtitle: `${op === 'readAt4k' ? '4 KiB per op' : op === 'readAtMany' ? '1000 × 4 KiB per op' : 'the whole chunk per op'}; medians, ${results.machine.cores} cores, Node ${process.version}, ${results.machine.date}`,
    sizes,
    series: results.contenders,
    value: (size, id) => rows.find((r) => r.size === size && r.op === op && r.contender === id),
  })
  writeFileSync(join(outDir, file), svg)
  charts.push(file)
}
writeFileSync(join(outDir, 'peers.json'), `${JSON.stringify({ ...results, goals: verdicts }, null, 2)}\n`)
writeFileSync(join(outDir, 'peers.md'), markdown(results, verdicts, charts))
console.log(`wrote peers.json, peers.md and ${charts.length} charts to ${relative(process.cwd(), outDir) || '.'}`)
