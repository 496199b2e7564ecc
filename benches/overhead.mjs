// Per-call overhead of Handle.readAt(4 KiB) against fs.readSync(4 KiB) on an
// open fd, in one run, on the same bytes. Usage: npm run bench:overhead
// (env: BENCH_ITERS, default 200000). Prints a table and one JSON line.
import { closeSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

import { configure, getConfig, pageout } from 'coldpage'

const ITERS = Number(process.env.BENCH_ITERS ?? 200_000)
const SIZE = 64 << 20
const CHUNK = 4096
const data = Buffer.alloc(SIZE)
for (let i = 0; i < SIZE; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i)

// Random 4 KiB-aligned offsets, the same sequence for every contender.
const offsets = new Float64Array(ITERS)
let x = 12345
for (let i = 0; i < ITERS; i++) {
  x = (x * 1103515245 + 12345) >>> 0
  offsets[i] = (x % (SIZE / CHUNK)) * CHUNK
}

function measure(name, fn) {
  for (let i = 0; i < Math.min(20_000, ITERS); i++) fn(offsets[i]) // warm-up
  const t0 = performance.now()
  for (let i = 0; i < ITERS; i++) fn(offsets[i])
  const ns = ((performance.now() - t0) * 1e6) / ITERS
  return { name, nsPerCall: Math.round(ns) }
}

const file = join(getConfig().scratchDir, `coldpage-bench-${process.pid}.bin`)
writeFileSync(file, data)
const fd = openSync(file, 'r')
const file_ = pageout(data, { backend: 'file' })
const swap = process.platform === 'linux' ? pageout(data, { backend: 'swap' }) : undefined
const target = Buffer.allocUnsafe(CHUNK)

const rows = [
  measure('fs.readSync 4 KiB into a new Buffer (open fd)', (o) => {
    const b = Buffer.allocUnsafe(CHUNK)
    readSync(fd, b, 0, CHUNK, o)
  }),
  measure('fs.readSync 4 KiB into a reused Buffer (open fd)', (o) => readSync(fd, target, 0, CHUNK, o)),
  measure('readAt 4 KiB, file backend (verify on)', (o) => file_.readAt(o, CHUNK)),
  measure('readInto 4 KiB, file backend (verify on)', (o) => file_.readInto(o, target)),
]
if (swap) {
  rows.push(measure('readAt 4 KiB, swap backend', (o) => swap.readAt(o, CHUNK)))
  rows.push(measure('readInto 4 KiB, swap backend', (o) => swap.readInto(o, target)))
}
configure({ verify: false })
const unverified = pageout(data, { backend: 'file' })
rows.push(measure('readAt 4 KiB, file backend (verify off)', (o) => unverified.readAt(o, CHUNK)))
rows.push(measure('readInto 4 KiB, file backend (verify off)', (o) => unverified.readInto(o, target)))
unverified.dispose()
closeSync(fd)
rmSync(file)
file_.dispose()
swap?.dispose()

const base = rows[0].nsPerCall
const width = Math.max(...rows.map((r) => r.name.length))
console.log(`${ITERS} calls each, ${process.version}, ${process.platform}-${process.arch}`)
for (const r of rows) console.log(`${r.name.padEnd(width)}  ${String(r.nsPerCall).padStart(6)} ns/call  (${r.nsPerCall - base >= 0 ? '+' : ''}${r.nsPerCall - base} ns vs fs.readSync)`)
console.log(JSON.stringify({ iters: ITERS, rows }))
