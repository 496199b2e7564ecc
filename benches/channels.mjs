// What the diagnostics channels cost when nobody subscribes: `readAt` 4 KiB (file
// backend, warm page cache, random 4 KiB-aligned offsets in a 64 MiB handle) through
// the façade as built now against the façade from just before the channels were
// added (compiled from git into a temp dir, loaded in this same process over the same
// native addon), alternating in rounds; then the same read with a subscriber on
// `coldpage:read`, for scale. Prints medians (ns per read) and ratios to the baseline.
//
// Usage: npm run bench:channels [-- --rounds 9 --reads 20000 --before <git rev>]
import { execFileSync } from 'node:child_process'
import * as dc from 'node:diagnostics_channel'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { xorshift32 } from './lib/rng.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const ts = require('typescript')

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    reads: { type: 'string', default: '20000' },
    before: { type: 'string' },
  },
})
const ROUNDS = Number(values.rounds)
const READS = Number(values.reads)

const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()

/** The commit just before lib/channels.ts was added (the façade without channels). */
function baselineRev() {
  if (values.before !== undefined) return values.before
  const added = git('log', '--diff-filter=A', '--format=%H', '--', 'lib/channels.ts').split('\n').filter(Boolean).pop()
  if (added === undefined) throw new Error('lib/channels.ts is not in git history: pass --before <rev>')
  return `${added}^`
}

/** Compiles the façade of `rev` to CommonJS in a temp dir whose `index.js` is this checkout's native loader. */
function buildBaseline(rev) {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-channels-bench-'))
  writeFileSync(path.join(dir, 'index.js'), `module.exports = require(${JSON.stringify(path.join(ROOT, 'index.js'))})\n`)
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ version: '0.0.0-baseline' }))
  const files = git('ls-tree', '-r', '--name-only', rev, 'lib').split('\n').filter((f) => f.endsWith('.ts'))
  for (const file of files) {
    const source = git('show', `${rev}:${file}`)
    const out = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: false },
    }).outputText
    const target = path.join(dir, 'dist', path.relative('lib', file).replace(/\.ts$/, '.js'))
    mkdirSync(path.dirname(target), { recursive: true })
    writeFileSync(target, out)
  }
  return dir
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** ns per `readAt(offset, 4096)` over `READS` random aligned offsets. */
function time(handle, offsets) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < offsets.length; i++) handle.readAt(offsets[i], 4096)
  return Number(process.hrtime.bigint() - start) / offsets.length
}

const rev = baselineRev()
const baseDir = buildBaseline(rev)
try {
  const after = require(path.join(ROOT, 'dist', 'index.js'))
  const before = require(path.join(baseDir, 'dist', 'index.js'))
  const SIZE = 64 << 20
  const bytes = Buffer.alloc(SIZE, 7)
  const hAfter = after.pageout(bytes, { backend: 'file' })
  const hBefore = before.pageout(bytes, { backend: 'file' })
  const rand = xorshift32(42)
  const offsets = Array.from({ length: READS }, () => (rand() % (SIZE / 4096)) * 4096)
  // Warm both paths (maps made, page cache hot, JIT settled).
  for (let i = 0; i < 3; i++) {
    time(hBefore, offsets)
    time(hAfter, offsets)
  }
  const tBefore = []
  const tAfter = []
  const tSubscribed = []
  const onEnd = () => {}
  const read = dc.tracingChannel('coldpage:read')
  for (let r = 0; r < ROUNDS; r++) {
    tBefore.push(time(hBefore, offsets))
    tAfter.push(time(hAfter, offsets))
    read.subscribe({ end: onEnd })
    tSubscribed.push(time(hAfter, offsets))
    read.unsubscribe({ end: onEnd })
  }
  const mb = median(tBefore)
  const ma = median(tAfter)
  const ms = median(tSubscribed)
  const ratios = tAfter.map((a, i) => a / tBefore[i])
  console.log(`readAt 4 KiB, file backend, ${READS} reads x ${ROUNDS} rounds, node ${process.version}; baseline: façade at ${git('rev-parse', '--short', rev)}`)
  const best = (xs) => Math.min(...xs)
  console.log('  (median ns per read; best round in brackets, less sensitive to other load on the machine)')
  console.log(`  before the channels (baseline)     ${mb.toFixed(0)} ns [${best(tBefore).toFixed(0)}]`)
  console.log(
    `  now, no subscriber                 ${ma.toFixed(0)} ns [${best(tAfter).toFixed(0)}]   ratio ${(ma / mb).toFixed(3)} [${(best(tAfter) / best(tBefore)).toFixed(3)}], per round ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}`,
  )
  console.log(`  now, a subscriber on coldpage:read ${ms.toFixed(0)} ns [${best(tSubscribed).toFixed(0)}]   ratio ${(ms / mb).toFixed(3)} [${(best(tSubscribed) / best(tBefore)).toFixed(3)}]`)
  // The check itself, apart from the read's noise: the unsubscribed tracing channel's
  // `hasSubscribers` against an empty loop, 10^7 times each, best of 5.
  const N = 1e7
  let sink = 0
  const loop = (fn) => {
    let bestNs = Infinity
    for (let r = 0; r < 5; r++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < N; i++) if (fn()) sink++
      bestNs = Math.min(bestNs, Number(process.hrtime.bigint() - start) / N)
    }
    return bestNs
  }
  const empty = loop(() => false)
  const check = loop(() => read.hasSubscribers)
  console.log(`  the check alone: ${(check - empty).toFixed(2)} ns per call (loop ${empty.toFixed(2)} ns, with the check ${check.toFixed(2)} ns)${sink ? '' : ''}`)
  hAfter.dispose()
  hBefore.dispose()
} finally {
  rmSync(baseDir, { recursive: true, force: true })
}
