// Soak: a long run of the built package (`npm run soak`; minutes, not hours).
//   1. SOAK_CYCLES (1,000,000) pageout/read/take cycles of mixed sizes (1 B to 1 MiB,
//      both backends, sync and async), with a rolling window of live handles;
//   2. SOAK_LIVE (100,000) handles alive at once, each read back, then disposed;
//   3. SOAK_WORKERS (8) worker threads paging concurrently, SOAK_WORKER_CYCLES each.
// Every read is checked against the bytes paged out. After each phase (handles
// disposed, GC run) RSS, open fds and scratch bytes on disk are compared with the
// baseline; the run fails on any error, any live handle or scratch byte left, an
// fd leaked, or RSS drift above SOAK_RSS_SLACK_MB (64).
import { Buffer } from 'node:buffer'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import process from 'node:process'
import { setImmediate as tick } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'

import { configure, getConfig, pageout, pageoutAsync, stats } from 'coldpage'

const env = (name, dflt) => Number(process.env[name] ?? dflt)
const CYCLES = env('SOAK_CYCLES', 1_000_000)
const LIVE = env('SOAK_LIVE', 100_000)
const WORKERS = env('SOAK_WORKERS', 8)
const WORKER_CYCLES = env('SOAK_WORKER_CYCLES', 50_000)
const RSS_SLACK = env('SOAK_RSS_SLACK_MB', 64) << 20
const WINDOW = 256
const BACKENDS = process.platform === 'linux' ? ['file', 'swap'] : ['file']

const gc = globalThis.gc
if (gc === undefined) throw new Error('run with node --expose-gc (npm run soak)')

const initial = getConfig()
const scratch = mkdtempSync(join(tmpdir(), 'coldpage-soak-'))
configure({ scratchDir: scratch })

// 4 MiB of pseudo-random bytes; pageouts take slices of it (pageout copies).
const source = Buffer.alloc((4 << 20) + 4096)
let seed = 0x9e3779b9
for (let i = 0; i < source.length; i += 4) {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  source.writeUInt32LE(seed >>> 0, i)
}
let r = 1
const rand = (n) => {
  r ^= r << 13
  r ^= r >>> 17
  r ^= r << 5
  return (r >>> 0) % n
}
/** Mixed sizes: 70% up to 4 KiB, 25% up to 64 KiB, 5% up to 1 MiB. */
const size = () => {
  const p = rand(100)
  return 1 + rand(p < 70 ? 4096 : p < 95 ? 65_536 : 1 << 20)
}

const fds = () => readdirSync('/proc/self/fd').length
async function settle() {
  for (let i = 0; i < 10; i++) {
    gc()
    await tick()
  }
}
async function measure() {
  await settle()
  const s = stats()
  return { rss: process.memoryUsage().rss, fds: fds(), scratchOnDisk: s.scratchBytesOnDisk, scratchAllocated: s.scratchBytesAllocated, handles: s.swap.handles + s.file.handles, errors: s.errors }
}
const mb = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`

const failures = []
const check = (ok, what) => {
  if (!ok) failures.push(what)
}

/** One handle: paged out from a slice of `source`, checked on every read. */
class Item {
  constructor(h, off, len) {
    this.h = h
    this.off = off
    this.len = len
  }
  want(o, l) {
    return source.subarray(this.off + o, this.off + o + l)
  }
}

async function cycles(n) {
  const window = []
  let bytes = 0
  for (let i = 0; i < n; i++) {
    const len = size()
    const off = rand(source.length - len)
    const backend = BACKENDS[rand(10) < 7 ? 0 : BACKENDS.length - 1]
    const data = source.subarray(off, off + len)
    const h = i % 1000 === 0 ? await pageoutAsync(data, { backend }) : pageout(i % 3 === 0 ? [data.subarray(0, len >> 1), data.subarray(len >> 1)] : data, { backend })
    bytes += len
    const item = new Item(h, off, len)
    const o = rand(len)
    const l = Math.min(len - o, 1 + rand(8192))
    check(h.readAt(o, l).equals(item.want(o, l)), `readAt cycle ${i}`)
    if (i % 10 === 0) {
      const [a, b] = h.readAtMany([[0, Math.min(len, 100)], [o, l]])
      check(a.equals(item.want(0, Math.min(len, 100))) && b.equals(item.want(o, l)), `readAtMany cycle ${i}`)
    }
    if (i % 20 === 0) check(h.view(o, l).equals(item.want(o, l)), `view cycle ${i}`)
    if (i % 1000 === 500) check((await h.readAtAsync(0, len)).equals(data), `readAtAsync cycle ${i}`)
    window.push(item)
    if (window.length > WINDOW) {
      const old = window.splice(rand(window.length), 1)[0]
      if (rand(2) === 0) old.h.dispose()
      else {
        const all = i % 1000 === 1 ? await old.h.takeAsync() : old.h.take()
        if (i % 100 === 0) check(all.equals(old.want(0, old.len)), `take cycle ${i}`)
      }
    }
    if (i % 100_000 === 99_999) process.stdout.write(`  ${i + 1} cycles, ${mb(bytes)} paged out, rss ${mb(process.memoryUsage().rss)}\n`)
  }
  for (const item of window) item.h.dispose()
  return bytes
}

async function manyLive(n) {
  const items = []
  for (let i = 0; i < n; i++) {
    const len = 1 + rand(8192)
    const off = rand(source.length - len)
    items.push(new Item(pageout(source.subarray(off, off + len), { backend: BACKENDS[i % BACKENDS.length] }), off, len))
  }
  const peak = { ...stats(), rss: process.memoryUsage().rss, fds: fds() }
  process.stdout.write(`  ${n} handles paged out\n`)
  for (const it of items) check(it.h.readAt(0, it.len).equals(it.want(0, it.len)), 'read of a live handle')
  // Dispose in random order: the arena's free list gets fragmented, then coalesces.
  for (let i = items.length - 1; i > 0; i--) {
    const j = rand(i + 1)
    ;[items[i], items[j]] = [items[j], items[i]]
  }
  process.stdout.write(`  ${n} handles read back\n`)
  for (const it of items) it.h.dispose()
  process.stdout.write(`  ${n} handles disposed\n`)
  return peak
}

const WORKER_SRC = `
  const { parentPort, workerData } = require('node:worker_threads')
  const c = require('coldpage')
  ;(async () => {
    const src = Buffer.from(workerData.source)
    let bad = 0, x = workerData.seed
    const rnd = (n) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n }
    const live = []
    for (let i = 0; i < workerData.cycles; i++) {
      const len = 1 + rnd(i % 50 === 0 ? 1 << 20 : 8192)
      const off = rnd(src.length - len)
      const data = src.subarray(off, off + len)
      const h = i % 4 === 0 ? await c.pageoutAsync(data, { backend: workerData.backends[i % workerData.backends.length] }) : c.pageout(data, { backend: workerData.backends[i % workerData.backends.length] })
      const o = rnd(len)
      if (!h.readAt(o, len - o).equals(data.subarray(o))) bad++
      if (i % 8 === 0 && !(await h.readAtManyAsync([[0, len], [o, 0]]))[0].equals(data)) bad++
      live.push([h, data])
      if (live.length > 64) {
        const [old, d] = live.splice(rnd(live.length), 1)[0]
        if (rnd(2) === 0) old.dispose()
        else if (!old.take().equals(d)) bad++
      }
    }
    for (const [h] of live) h.dispose()
    parentPort.postMessage({ bad })
  })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }))
`

async function workers(n, each) {
  const started = Date.now()
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise((resolve, reject) => {
        const w = new Worker(WORKER_SRC, { eval: true, workerData: { source: source.subarray(0, 2 << 20), seed: i + 1, cycles: each, backends: BACKENDS } })
        w.once('message', (m) => w.terminate().then(() => resolve(m)))
        w.once('error', reject)
      }),
    ),
  )
  for (const m of results) {
    check(m.error === undefined, `worker: ${m.error}`)
    check(m.bad === 0, `worker read ${m.bad} wrong results`)
  }
  return Date.now() - started
}

function drift(name, base, now, ms, extra = '') {
  const d = { rss: now.rss - base.rss, fds: now.fds - base.fds, scratch: now.scratchOnDisk - base.scratchOnDisk }
  process.stdout.write(
    `${name}: ${(ms / 1000).toFixed(1)} s${extra}\n` +
      `  drift after dispose + GC: RSS ${mb(base.rss)} -> ${mb(now.rss)} (${d.rss >= 0 ? '+' : ''}${mb(d.rss)}), ` +
      `fds ${base.fds} -> ${now.fds}, scratch on disk ${base.scratchOnDisk} -> ${now.scratchOnDisk} B, ` +
      `live handles ${now.handles}, scratch allocated ${now.scratchAllocated} B, errors ${now.errors - base.errors}\n`,
  )
  check(now.handles === 0, `${name}: ${now.handles} handles left`)
  check(now.scratchAllocated === 0 && now.scratchOnDisk <= base.scratchOnDisk, `${name}: scratch left`)
  check(now.fds <= base.fds, `${name}: ${d.fds} fds leaked`)
  check(d.rss <= RSS_SLACK, `${name}: RSS grew by ${mb(d.rss)}`)
  check(now.errors === base.errors, `${name}: ${now.errors - base.errors} errors`)
}

try {
  await cycles(2000) // warm-up: JIT, allocator arenas, the scratch arena
  const base = await measure()
  process.stdout.write(`baseline: RSS ${mb(base.rss)}, ${base.fds} fds, scratch on disk ${base.scratchOnDisk} B (scratch dir ${scratch})\n`)

  let t0 = Date.now()
  const bytes = await cycles(CYCLES)
  drift(`${CYCLES} pageout/read/take cycles`, base, await measure(), Date.now() - t0, `, ${mb(bytes)} paged out`)

  // Swap handles under 64 KiB live on the malloc heap, and glibc keeps freed heap
  // memory for reuse rather than returning it: so this phase also runs twice, the
  // second round held to the state after the first (reuse, not growth).
  let before = base
  for (const round of [1, 2]) {
    t0 = Date.now()
    const peak = await manyLive(LIVE)
    const after = await measure()
    const name = `${LIVE} live handles, round ${round}${round === 1 ? '' : ' (against the state after round 1)'}`
    const atPeak = ` (at peak: ${peak.swap.handles + peak.file.handles} handles, RSS ${mb(peak.rss)}, ${peak.fds} fds, scratch on disk ${mb(peak.scratchBytesOnDisk)})`
    if (round === 1) {
      const slack = after.rss - base.rss
      process.stdout.write(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s${atPeak}\n  RSS ${mb(base.rss)} -> ${mb(after.rss)} (+${mb(slack)} kept by the allocator)\n`)
      check(after.handles === 0 && after.scratchAllocated === 0 && after.scratchOnDisk === 0 && after.fds <= base.fds, `${name}: leftovers`)
    } else {
      drift(name, before, after, Date.now() - t0, atPeak)
    }
    before = after
  }

  // Each worker is a V8 isolate whose freed heap the allocator keeps (glibc does
  // not give per-thread arenas back): so the worker phase runs twice, and the
  // second round is held to the state after the first, which must not grow.
  if (WORKERS > 0) {
    t0 = Date.now()
    let ms = await workers(WORKERS, WORKER_CYCLES)
    const afterFirst = await measure()
    process.stdout.write(`${WORKERS} worker threads x ${WORKER_CYCLES} cycles, round 1: ${(ms / 1000).toFixed(1)} s, RSS ${mb(base.rss)} -> ${mb(afterFirst.rss)}\n`)
    t0 = Date.now()
    ms = await workers(WORKERS, WORKER_CYCLES)
    drift(`${WORKERS} worker threads x ${WORKER_CYCLES} cycles, round 2 (against the state after round 1)`, afterFirst, await measure(), ms)
  }
} catch (err) {
  failures.push(String(err?.stack ?? err))
} finally {
  configure(initial)
  rmSync(scratch, { recursive: true, force: true })
}

if (failures.length > 0) {
  process.stdout.write(`soak FAILED:\n  ${[...new Set(failures)].slice(0, 20).join('\n  ')}\n`)
  process.exitCode = 1
} else {
  process.stdout.write('soak passed\n')
}
