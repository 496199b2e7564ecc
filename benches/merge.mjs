#!/usr/bin/env node
// The merge workload of crates/coldpage/examples/merge.rs, through the JS API: two
// chains of 2 MiB chunks (sorted u64 runs), each chunk paged out as its own handle;
// take one chunk from each chain, merge (reading every value), page each full output
// chunk back out; then check the output is sorted and holds exactly the input values.
//
// Usage: node benches/merge.mjs [--backend swap|file|none] [--chain-mib N] [--scratch-dir PATH] [--compress none|lz4]
// (needs `npm run build`). Prints one human line and one `JSON: {...}` line with the
// fields of the Rust example; `none` keeps the chunks as plain Buffers (no pager).
import { configure, pageout } from '../dist/index.mjs'

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : fallback
}
const backend = flag('backend', 'file')
if (!['swap', 'file', 'none'].includes(backend)) throw new Error(`--backend must be swap, file or none, got ${backend}`)
const chainMib = Number(flag('chain-mib', '1024'))
if (flag('scratch-dir')) configure({ scratchDir: flag('scratch-dir') })
if (flag('compress')) configure({ compress: flag('compress') })
if (Number(flag('threads', '1')) !== 1) console.error('merge.mjs: --threads is ignored (one JS thread)')

const CHUNK = 2 << 20
const WORDS = CHUNK / 8
const chunks = Math.ceil(chainMib / 2)

// Where chunks rest: the pager, or the heap.
const put = backend === 'none' ? (buf) => Buffer.from(buf) : (buf) => pageout(buf, { backend })
const take = backend === 'none' ? (chunk) => chunk : (handle) => handle.take()
const words = (buf) => new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8)

// A sorted run of `chunks` chunks of 8-byte values. They are doubles (integers below
// 2^53, so exact) rather than the Rust example's u64s: JS reads those without BigInt
// conversions. The seed shifts the gaps so that the two chains interleave finely.
function buildChain (seed) {
  let value = 0
  const chain = []
  const buf = Buffer.alloc(CHUNK)
  const w = words(buf)
  for (let c = 0; c < chunks; c++) {
    for (let i = 0; i < WORDS; i++) {
      value += 1 + ((Math.imul(c * WORDS + i, 2654435761) ^ seed) >>> 22)
      w[i] = value
    }
    chain.push(put(buf))
  }
  return chain
}

const a = buildChain(1)
const b = buildChain(2)
const usage0 = process.resourceUsage()
const t0 = process.hrtime.bigint()

const out = []
const outBuf = Buffer.alloc(CHUNK)
const ow = words(outBuf)
let filled = 0
const flush = () => {
  if (filled === 0) return
  out.push(put(outBuf.subarray(0, filled * 8)))
  filled = 0
}
const cursor = (chain) => ({ chain, next: 0, vals: null, at: 0 })
const ready = (cur) => {
  while (!cur.vals || cur.at === cur.vals.length) {
    if (cur.next === cur.chain.length) return false
    const bytes = take(cur.chain[cur.next])
    takes++
    cur.chain[cur.next++] = null
    cur.vals = words(bytes)
    cur.at = 0
  }
  return true
}
const ca = cursor(a)
const cb = cursor(b)
let takes = 0
for (;;) {
  // A zero-copy Buffer from take() is freed by its finalizer, which Node runs on a
  // later turn of the event loop: a long synchronous loop must yield now and then, or
  // taken swap regions pile up until it ends.
  if (takes >= 16) {
    takes = 0
    await new Promise((resolve) => setImmediate(resolve))
  }
  const ra = ready(ca)
  const rb = ready(cb)
  if (!ra && !rb) break
  while (filled < WORDS) {
    const hasA = ca.at < ca.vals.length && ra
    const hasB = cb.at < cb.vals.length && rb
    if (!hasA && !hasB) break
    if (hasA && (!hasB || ca.vals[ca.at] <= cb.vals[cb.at])) ow[filled++] = ca.vals[ca.at++]
    else ow[filled++] = cb.vals[cb.at++]
    if ((hasA && ca.at === ca.vals.length) || (hasB && cb.at === cb.vals.length)) break
  }
  if (filled === WORDS) flush()
}
flush()

const wall = Number(process.hrtime.bigint() - t0) / 1e9
const usage1 = process.resourceUsage()

// Check (untimed): the output is sorted and holds every input value.
let prev = 0
let seen = 0
for (const [n, chunk] of out.entries()) {
  if (n % 16 === 15) await new Promise((resolve) => setImmediate(resolve))
  const w = words(take(chunk))
  for (let i = 0; i < w.length; i++) {
    if (w[i] < prev) throw new Error(`output not sorted at chunk value ${seen + i}`)
    prev = w[i]
  }
  seen += w.length
}
if (seen !== 2 * chunks * WORDS) throw new Error(`output has ${seen} values, expected ${2 * chunks * WORDS}`)

const bytes = 2 * chunks * CHUNK
const gib = bytes / 2 ** 30 / wall
const user = (usage1.userCPUTime - usage0.userCPUTime) / 1e6
const sys = (usage1.systemCPUTime - usage0.systemCPUTime) / 1e6
const major = usage1.majorPageFault - usage0.majorPageFault
const minor = usage1.minorPageFault - usage0.minorPageFault
const rssMib = usage1.maxRSS / 1024
console.log(`merge.mjs ${backend}: 2 chains x ${chunks * 2} MiB: ${gib.toFixed(2)} GiB/s, wall ${wall.toFixed(2)} s, user ${user.toFixed(2)} s, ` +
  `sys ${sys.toFixed(2)} s, ${major} major / ${minor} minor faults, peak RSS ${rssMib.toFixed(0)} MiB; output verified (sorted, count)`)
console.log('JSON: ' + JSON.stringify({ backend, threads: 1, chain_mib: chunks * 2, chunk_mib: 2, bytes_merged: bytes, gib_per_s: gib, wall_s: wall, user_s: user, sys_s: sys, major_faults: major, minor_faults: minor, max_rss_mib: rssMib, verified: true }))
