#!/usr/bin/env node
// Sanity figures of the file backend (not a benchmark: `npm run bench` is), printed as
// one JSON line so that scripts/test-windows.sh can set the same run under Windows
// Node in Wine beside the Linux one: pageout and readAt of 64 MiB, readAt of 4 KiB.
//
// Usage: node benches/sanity.mjs [module]   (module defaults to 'coldpage')
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const require = createRequire(pathToFileURL(`${process.cwd()}/`))
const { pageout, configure } = require(process.argv[2] ?? 'coldpage')
configure({ backend: 'file' })

const MiB = 2 ** 20
const big = Buffer.alloc(64 * MiB)
for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i)

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
function time(fn, runs) {
  const ms = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    fn()
    ms.push(performance.now() - t)
  }
  return median(ms)
}

const pageoutMs = time(() => pageout(big).dispose(), 7)
const h = pageout(big)
const readMs = time(() => h.readAt(0, big.length), 7)
let seed = 7
const offsets = Array.from({ length: 20000 }, () => {
  seed = (seed * 1103515245 + 12345) >>> 0
  return (seed % (big.length / 4096)) * 4096
})
h.readAt(0, 4096)
const t = performance.now()
for (const o of offsets) h.readAt(o, 4096)
const read4kUs = ((performance.now() - t) * 1000) / offsets.length
h.dispose()
console.log(
  JSON.stringify({
    platform: process.platform,
    node: process.version,
    pageout64MiBMs: +pageoutMs.toFixed(2),
    readAt64MiBMs: +readMs.toFixed(2),
    readAt4KiBUs: +read4kUs.toFixed(2),
  }),
)
