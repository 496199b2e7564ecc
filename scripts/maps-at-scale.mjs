#!/usr/bin/env node
// What coldpage holds from the OS at scale (SPEC "Resources at scale"): creates
// 100,000 live file handles (each read once), 100,000 views of one handle, 100,000
// entries of a store and 100,000 `store.get`s of a cold entry, all kept alive, and
// prints how many memory maps the process holds (/proc/self/maps lines) before and
// after each. Fails (exit 1) when the maps grow with the count, i.e. by more than
// coldpage's own limit for views (`doctor().mapsLimit`) plus a margin for V8's heap.
// Linux only (the count comes from /proc); elsewhere it says so and exits 0.
//
//   node scripts/maps-at-scale.mjs [count] [steps]     (after `npm run build`)
// steps: a comma-separated subset of handles,views,entries,gets (default: all).
import { Buffer } from 'node:buffer'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'

if (process.platform !== 'linux') {
  console.log(`maps-at-scale: /proc/self/maps is Linux only (this is ${process.platform}); nothing measured`)
  process.exit(0)
}
const require = createRequire(import.meta.url)
const coldpage = require('../dist/index.js')
const count = Number(process.argv[2] ?? 100_000)
const only = new Set((process.argv[3] ?? 'handles,views,entries,gets').split(','))
const scratch = mkdtempSync(join(process.env.COLDPAGE_SCRATCH_DIR ?? tmpdir(), 'coldpage-maps-'))
coldpage.configure({ scratchDir: scratch })

const maps = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length
const report = coldpage.doctor()
// V8 grows its heap by maps of its own while we hold 100,000 objects; a margin for it.
const allowed = (report.mapsLimit ?? 0) + 2_000
const keep = []
let failed = false
// Progress every 20,000, so that a run that dies on the way still shows the growth.
const tick = (i) => {
  if (i > 0 && i % 20_000 === 0) console.log(`  ... ${i}: ${maps()} maps`)
}
const step = (id, name, run) => {
  if (!only.has(id)) return
  const before = maps()
  const t0 = Date.now()
  run()
  const after = maps()
  const grew = after - before
  const ok = grew <= allowed
  failed ||= !ok
  console.log(
    `${name.padEnd(40)} maps before ${String(before).padStart(6)}  after ${String(after).padStart(6)}  ` +
      `(+${grew}; allowed +${allowed})  ${Date.now() - t0} ms  ${ok ? 'ok' : 'FAIL: maps grow with the count'}`,
  )
}

const kib = Buffer.alloc(1024, 7)
try {
  step('handles', `${count} live file handles, each read once`, () => {
    for (let i = 0; i < count; i++) {
      const h = coldpage.pageout(kib, { backend: 'file' })
      h.readAt(0, 8)
      keep.push(h)
      tick(i)
    }
  })
  step('views', `${count} views of one handle`, () => {
    const h = coldpage.pageout(Buffer.alloc(64 << 10, 3), { backend: 'file' })
    keep.push(h)
    for (let i = 0; i < count; i++) {
      keep.push(h.view(0, 1024))
      tick(i)
    }
  })
  step('entries', `${count} store entries of 1 KiB (1 GiB budget)`, () => {
    const store = coldpage.createStore({ residentBytes: 1 << 30, backend: 'file' })
    keep.push(store)
    for (let i = 0; i < count; i++) {
      store.set(`k${i}`, kib)
      tick(i)
    }
  })
  step('gets', `${count} store.get of one cold 1 KiB entry`, () => {
    // A budget smaller than the entry: it stays cold, and every get pages it in.
    const store = coldpage.createStore({ residentBytes: 512, backend: 'file' })
    keep.push(store)
    store.set('k', kib)
    for (let i = 0; i < count; i++) {
      keep.push(store.get('k'))
      tick(i)
    }
  })
  const d = coldpage.doctor()
  console.log(`doctor(): mapsHeld ${d.mapsHeld}, mapsLimit ${d.mapsLimit}; held objects ${keep.length}`)
} finally {
  // The process exits with everything still live: its unnamed arena goes with it.
  rmSync(scratch, { recursive: true, force: true })
}
if (failed) {
  console.error('maps-at-scale: the maps coldpage holds grow with the number of handles, views or entries')
  process.exit(1)
}
