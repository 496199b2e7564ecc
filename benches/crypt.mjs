// What `encrypt` and `compress: 'lz4'` cost (or gain) against the plain file backend,
// side by side in one process: pageout of 64 MiB, readAt of the whole 64 MiB, and
// readAt of 4 KiB at random 4 KiB-aligned offsets, on float columns, text and random
// bytes. Warm page cache. Each cell is the median over ROUNDS rounds in which the
// four variants alternate (so a noisy neighbour hits all of them); ratios are to the
// plain file backend measured in the same round set (lower is faster).
//
//   npm run bench:crypt                  # ~1-2 min on 2 cores
//   node --expose-gc benches/crypt.mjs [--rounds 5] [--only floats] [--json FILE]
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

import { configure, getConfig, pageout, stats } from 'coldpage'

import { xorshift32 } from './lib/rng.mjs'

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, json: { type: 'string' }, only: { type: 'string' } },
})
const ROUNDS = Number(args.rounds)
const MiB = 1 << 20
const BIG = 64 * MiB
const SMALL = 4096
const SMALL_OPS = 4000
const gc = globalThis.gc ?? (() => {})

const VARIANTS = [
  { name: 'plain', encrypt: false, compress: 'none' },
  { name: 'encrypt', encrypt: true, compress: 'none' },
  { name: 'lz4', encrypt: false, compress: 'lz4' },
  { name: 'encrypt+lz4', encrypt: true, compress: 'lz4' },
]

/** A price column: a random walk in cents, as Float64 (what analytics tables hold). */
function floats() {
  const next = xorshift32(0xf10a7)
  const out = new Float64Array(BIG / 8)
  let cents = 10_000
  for (let i = 0; i < out.length; i++) {
    cents += (next() % 21) - 10
    out[i] = cents / 100
  }
  return Buffer.from(out.buffer)
}

/** Log-like text from a small vocabulary. */
function text() {
  const next = xorshift32(0x7e47)
  const words = ['GET', '/api/v1/orders', 'status=200', 'user', 'price', 'volume', 'the', 'of', 'market', 'close',
    'error', 'timeout', 'ms', 'ok', 'session', 'cache', 'hit', 'miss']
  const out = Buffer.allocUnsafe(BIG)
  let at = 0
  while (at < BIG) {
    const w = at % 97 === 0 ? String(next() % 100000) : words[next() % words.length]
    at += out.write(`${w} `, at)
  }
  return out
}

function random() {
  const next = xorshift32(0x5eed)
  const out = Buffer.allocUnsafe(BIG)
  for (let i = 0; i < BIG; i += 4) out.writeUInt32LE(next(), i)
  return out
}

const INPUTS = [
  ['floats', floats],
  ['text', text],
  ['random', random],
].filter(([name]) => args.only === undefined || args.only.split(',').includes(name))

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const ms = (ns) => ns / 1e6
const now = () => process.hrtime.bigint()

const initial = getConfig()
const offsets = (() => {
  const next = xorshift32(0xc0ffee)
  return Float64Array.from({ length: SMALL_OPS }, () => (next() % (BIG / SMALL)) * SMALL)
})()

const results = []
for (const [input, make] of INPUTS) {
  const data = make()
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.name, { pageout: [], readAll: [], read4k: [], stored: 0 }]))
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round.
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(k + round) % VARIANTS.length]
      const s = samples[v.name]
      configure({ backend: 'file', encrypt: v.encrypt, compress: v.compress })
      gc()
      const before = stats().scratchBytesAllocated
      let t0 = now()
      const h = pageout(data)
      s.pageout.push(Number(now() - t0))
      s.stored = stats().scratchBytesAllocated - before
      h.readAt(0, BIG) // warm the page cache for this handle
      for (let i = 0; i < SMALL_OPS; i++) h.readAt(offsets[i], SMALL) // and its map (plain handles)
      t0 = now()
      const all = h.readAt(0, BIG)
      s.readAll.push(Number(now() - t0))
      if (round === 0 && !all.equals(data)) throw new Error(`${v.name} ${input}: bytes differ`)
      t0 = now()
      for (let i = 0; i < SMALL_OPS; i++) h.readAt(offsets[i], SMALL)
      s.read4k.push(Number(now() - t0) / SMALL_OPS)
      h.dispose()
    }
  }
  const plain = samples.plain
  for (const v of VARIANTS) {
    const s = samples[v.name]
    results.push({
      input,
      variant: v.name,
      storedRatio: s.stored / BIG,
      pageoutMs: ms(median(s.pageout)),
      readAllMs: ms(median(s.readAll)),
      read4kNs: median(s.read4k),
      pageoutRatio: median(s.pageout) / median(plain.pageout),
      readAllRatio: median(s.readAll) / median(plain.readAll),
      read4kRatio: median(s.read4k) / median(plain.read4k),
    })
  }
}
configure(initial)

const f = (x, d = 2) => x.toFixed(d)
const lines = [
  `64 MiB handles, file backend, warm page cache, medians of ${ROUNDS} rounds; ratio = variant / plain (lower is faster)`,
  '',
  '| input | variant | stored | pageout 64 MiB | ratio | readAt 64 MiB | ratio | readAt 4 KiB | ratio |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map(
    (r) =>
      `| ${r.input} | ${r.variant} | ${f(r.storedRatio)} | ${f(r.pageoutMs, 1)} ms | ${f(r.pageoutRatio)} | ` +
      `${f(r.readAllMs, 1)} ms | ${f(r.readAllRatio)} | ${f(r.read4kNs / 1000)} µs | ${f(r.read4kRatio)} |`,
  ),
]
console.log(lines.join('\n'))
if (args.json) writeFileSync(args.json, JSON.stringify({ rounds: ROUNDS, results }, null, 2))
