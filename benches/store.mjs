#!/usr/bin/env node
// The store benchmark (issue 14): Zipf-distributed gets over 4 GiB of values
// (Buffers of 64 KiB to 16 MiB, log-uniform, and a few Arrow tables) under a
// 512 MiB budget. Each contender runs in a child process of its own, so that
// its peak RssAnon is its own:
//   coldpage-sieve / coldpage-lru  createStore({ residentBytes, policy }) on the file backend
//   lmdb                           the same budget as a JS LRU in front of lmdb-js as the spill store
//   map                            an in-heap Map holding everything (the baseline)
// Prints per contender: hit ratio, latency p50/p99 of a get and a read of one byte of
// every 4 KiB page of the value (mapped values fault in there), peak RssAnon and its
// ratio to the budget and to the Map's peak, set phase time, and peak RssFile (file
// pages mapped: zero-copy values are page cache, which the OS can reclaim).
//
// Usage: npm run bench:store -- [--total-mib 4096] [--budget-mib 512] [--gets 20000]
//          [--zipf 1.0] [--only coldpage-sieve,map] [--gc] [--json]
//   --no-yield  run each phase as one synchronous loop; by default the loops yield to
//          the event loop every 16 ops, as a server or UI does between requests
//          (Node runs Node-API finalizers, which unmap dropped zero-copy views, only then)
//   --gc   collect garbage after every 8 sets and gets (node --expose-gc), which shows the
//          live set apart from dropped Buffers waiting for V8's next collection
import { execFileSync } from 'node:child_process'
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
const totalBytes = Number(flag('total-mib', '4096')) * MIB
const budgetBytes = Number(flag('budget-mib', '512')) * MIB
const gets = Number(flag('gets', '20000'))
const zipfS = Number(flag('zipf', '1.0'))
const child = flag('child', undefined)
const collect = args.includes('--gc')
const yieldEvery = args.includes('--no-yield') ? 0 : 16
const turn = () => new Promise((resolve) => setImmediate(resolve))
const CONTENDERS = ['coldpage-sieve', 'coldpage-lru', 'lmdb', 'map']

/** Uniform in [0, 1), the same sequence for every contender. */
function rng(seed) {
  const next = xorshift32(seed)
  return () => next() / 2 ** 32
}

/** The values: sizes log-uniform in [64 KiB, 16 MiB] up to `total`, every 64th a table of 7–28 MiB. */
function plan(total) {
  const r = rng(42)
  const out = []
  let sum = 0
  for (let i = 0; sum < total; i++) {
    if (i % 64 === 63) {
      const rows = Math.floor((1 + r() * 3) * 262144) // 28 bytes a row: 7–28 MiB
      out.push({ key: `t${i}`, kind: 'table', rows, bytes: rows * 28 })
      sum += rows * 28
    } else {
      const bytes = Math.floor(2 ** (16 + r() * 8)) & ~7
      out.push({ key: `b${i}`, kind: 'buffer', bytes })
      sum += bytes
    }
  }
  return out
}

/** The get sequence: Zipf(s) over a random ranking of the keys. */
function zipfSequence(n, count, s) {
  const r = rng(7)
  const rank = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[rank[i], rank[j]] = [rank[j], rank[i]]
  }
  const cdf = new Float64Array(n)
  let acc = 0
  for (let k = 0; k < n; k++) cdf[k] = acc += 1 / (k + 1) ** s
  const out = new Int32Array(count)
  for (let g = 0; g < count; g++) {
    const u = r() * acc
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    out[g] = rank[lo]
  }
  return out
}

/** RssAnon and RssFile (mapped file pages: the page cache a process maps) in bytes. */
function rss() {
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024
  return { anon: kb('RssAnon'), file: kb('RssFile') }
}
const rssAnon = () => rss().anon

/** Reads one byte of every 4 KiB page of a Buffer value (an app uses what it gets), returns their sum. */
function touch(buf) {
  let sum = 0
  for (let i = 0; i < buf.length; i += 4096) sum += buf[i]
  return sum
}

async function runChild(name) {
  const arrow = await import('apache-arrow')
  const coldpage = await import('coldpage')
  const values = plan(totalBytes)
  const make = (v, i) => {
    if (v.kind === 'buffer') return Buffer.allocUnsafe(v.bytes).fill(i & 255)
    const n = v.rows
    return arrow.tableFromArrays({
      ts: BigInt64Array.from({ length: n }, (_, k) => BigInt(k)),
      a: Float64Array.from({ length: n }, (_, k) => k * 0.5 + i),
      b: new Float64Array(n).fill(i),
      c: new Int32Array(n).fill(i),
    })
  }
  const check = (v, i, got) => {
    if (got === undefined) throw new Error(`${name}: ${v.key} missing`)
    if (v.kind === 'buffer') {
      if (got.length !== v.bytes || got[0] !== (i & 255) || got[got.length - 1] !== (i & 255)) throw new Error(`${name}: ${v.key} differs`)
    } else if (got.numRows !== v.rows || got.getChild('b').get(0) !== i) {
      throw new Error(`${name}: table ${v.key} differs`)
    }
  }
  let peak = rssAnon()
  let peakFile = 0
  const sample = () => {
    const now = rss()
    if (now.anon > peak) peak = now.anon
    if (now.file > peakFile) peakFile = now.file
  }
  const scratch = fs.mkdtempSync(path.join('/var/tmp', 'coldpage-bench-store-'))
  let store
  let hits = () => null
  if (name.startsWith('coldpage')) {
    coldpage.configure({ scratchDir: scratch })
    store = coldpage.createStore({ residentBytes: budgetBytes, backend: 'file', policy: name.slice('coldpage-'.length), pressure: false })
    hits = () => store.stats()
  } else if (name === 'map') {
    store = new Map()
  } else {
    store = lmdbSpill(await import('lmdb'), arrow, scratch, budgetBytes)
    hits = () => store.stats()
  }
  const t0 = performance.now()
  for (const [i, v] of values.entries()) {
    store.set(v.key, make(v, i))
    if (collect && i % 8 === 0) globalThis.gc()
    if (i % 16 === 0) sample()
    if (yieldEvery && i % yieldEvery === 0) await turn()
  }
  const setMs = performance.now() - t0
  sample()
  const peakSet = peak
  const seq = zipfSequence(values.length, gets, zipfS)
  const lat = new Float64Array(gets)
  const before = hits()
  for (let g = 0; g < gets; g++) {
    const i = seq[g]
    const v = values[i]
    const s = performance.now()
    const got = store.get(v.key)
    if (v.kind === 'buffer') touch(got)
    lat[g] = performance.now() - s
    check(v, i, got)
    if (collect && g % 8 === 0) globalThis.gc()
    if (g % 64 === 0) sample()
    if (yieldEvery && g % yieldEvery === 0) await turn()
  }
  sample()
  const after = hits()
  lat.sort()
  const q = (p) => lat[Math.min(gets - 1, Math.floor(p * gets))]
  const hitRatio = after === null ? 1 : (after.hits - before.hits) / (after.hits + after.misses - before.hits - before.misses)
  const result = { name, values: values.length, totalBytes, budgetBytes, gets, setMs, hitRatio, p50Ms: q(0.5), p99Ms: q(0.99), peakRssAnon: peak, peakSet, peakRssFile: peakFile }
  store.dispose?.()
  store.close?.()
  fs.rmSync(scratch, { recursive: true, force: true })
  process.stdout.write(JSON.stringify(result) + '\n')
}

/** The same byte budget as a JS LRU (a Map in recency order) spilling to lmdb-js. */
function lmdbSpill(lmdb, arrow, dir, budget) {
  const db = lmdb.open({ path: path.join(dir, 'lmdb'), encoding: 'binary', compression: false, noSync: true, noMemInit: true, overlappingSync: false })
  const resident = new Map()
  const tables = new Set()
  let bytes = 0
  let hitCount = 0
  let missCount = 0
  const sizeOf = (value) => (Buffer.isBuffer(value) ? value.length : value.batches.reduce((s, b) => s + b.data.children.reduce((t, c) => t + c.values.byteLength, 0), 0))
  const encode = (key, value) => (tables.has(key) ? arrow.tableToIPC(value, 'stream') : value)
  const decode = (key, raw) => (tables.has(key) ? arrow.tableFromIPC(raw) : raw)
  const fit = () => {
    for (const [key, value] of resident) {
      if (bytes <= budget) break
      db.putSync(key, encode(key, value))
      resident.delete(key)
      bytes -= sizeOf(value)
    }
  }
  return {
    set(key, value) {
      if (!Buffer.isBuffer(value)) tables.add(key)
      resident.set(key, value)
      bytes += sizeOf(value)
      fit()
    },
    get(key) {
      let value = resident.get(key)
      if (value !== undefined) {
        hitCount++
        resident.delete(key)
        resident.set(key, value)
        return value
      }
      missCount++
      value = decode(key, db.getBinary(key))
      resident.set(key, value)
      bytes += sizeOf(value)
      fit()
      return value
    },
    stats: () => ({ hits: hitCount, misses: missCount }),
    close: () => db.close(),
  }
}

function report(results) {
  const base = results.find((r) => r.name === 'map')
  const gib = (b) => (b / 2 ** 30).toFixed(2)
  console.log(`store benchmark: ${results[0]?.values} values, ${gib(totalBytes)} GiB, budget ${gib(budgetBytes)} GiB, ${gets} Zipf(${zipfS}) gets, ${os.cpus().length} cores${collect ? ', gc() every 8 ops' : ''}`)
  console.log('contender        hit ratio   get p50 ms   get p99 ms   peak RssAnon GiB   (set phase)   / budget   / Map peak   set phase s   peak RssFile GiB')
  for (const r of results) {
    console.log(
      `${r.name.padEnd(16)} ${r.hitRatio.toFixed(3).padStart(9)} ${r.p50Ms.toFixed(3).padStart(12)} ${r.p99Ms.toFixed(3).padStart(12)} ` +
        `${gib(r.peakRssAnon).padStart(18)} ${gib(r.peakSet).padStart(13)} ${(r.peakRssAnon / budgetBytes).toFixed(2).padStart(10)} ` +
        `${base ? (r.peakRssAnon / base.peakRssAnon).toFixed(2).padStart(12) : '           -'} ${(r.setMs / 1000).toFixed(1).padStart(13)} ${gib(r.peakRssFile).padStart(18)}`,
    )
  }
  for (const r of results.filter((x) => x.name.startsWith('coldpage'))) {
    const ok = r.peakRssAnon <= budgetBytes * 1.1 + baseline()
    console.log(`goal ${r.name}: peak RssAnon <= budget + 10% (+ the runtime's own ${gib(baseline())} GiB): ${ok ? 'met' : 'MISSED'}`)
  }
}

/** RssAnon of a Node process that loaded coldpage and apache-arrow and holds nothing. */
let runtimeRss
function baseline() {
  runtimeRss ??= Number(
    execFileSync(process.execPath, ['--input-type=module', '-e', "await import('apache-arrow'); await import('coldpage'); const fs = await import('node:fs'); process.stdout.write(String(/RssAnon:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status','utf8'))?.[1] ?? 0))"], {
      encoding: 'utf8',
    }),
  ) * 1024
  return runtimeRss
}

if (child !== undefined) {
  await runChild(child)
} else {
  const only = flag('only', undefined)?.split(',') ?? CONTENDERS
  const results = []
  for (const name of only) {
    const out = execFileSync(process.execPath, [...(collect ? ['--expose-gc'] : []), fileURLToPath(import.meta.url), ...args, '--child', name], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    results.push(JSON.parse(out.trim().split('\n').pop()))
  }
  if (args.includes('--json')) console.log(JSON.stringify(results))
  report(results)
}
