// Disk full, as JS sees it: a 2 MiB tmpfs mounted as the scratch dir (root only;
// skipped with a message otherwise — the quota path is in config.spec.ts). Pageouts
// fail with ERR_COLDPAGE_NO_SPACE, the caller's bytes and every live handle are
// intact, and pageouts succeed again once space frees. Always unmounted.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import { type Handle, configure, getConfig, pageout, pageoutAsync, stats } from 'coldpage'

import { codeOf, mountTmpfs, unmount } from './fixtures/reliability.js'
import { bytes } from './helpers.js'

const initial = getConfig()
const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-disk-full-'))
const mounted = mountTmpfs(dir, 2 << 20)
test.after.always(() => {
  configure(initial) // lets go of the arena's directory first
  if (mounted === true) unmount(dir)
  rmSync(dir, { recursive: true, force: true })
})

test.serial('a full scratch disk gives ERR_COLDPAGE_NO_SPACE, loses nothing, and recovers', async (t) => {
  if (mounted !== true) {
    t.log(`skipped: ${mounted}`)
    t.pass()
    return
  }
  configure({ scratchDir: dir, backend: 'file' })
  const live: Array<{ h: Handle; data: Buffer }> = []
  let refused = 0
  for (let i = 0; i < 100 && refused < 3; i++) {
    const data = bytes(256 << 10, i + 1)
    const copy = Buffer.from(data)
    try {
      const h = i % 2 === 0 ? pageout([data.subarray(0, 1000), data.subarray(1000)]) : await pageoutAsync(data)
      live.push({ h, data })
    } catch (err) {
      t.is(codeOf(err), 'ERR_COLDPAGE_NO_SPACE', String(err))
      t.true(data.equals(copy), "the caller's bytes are untouched")
      refused++
    }
  }
  t.is(refused, 3, 'the disk filled up')
  t.true(live.length >= 4 && live.length <= 8, `${live.length} handles fit in 2 MiB`)
  for (const { h, data } of live) t.true(h.readAt(0, h.byteLength).equals(data), 'nothing lost')
  const half = live.splice(0, live.length >> 1)
  for (const { h, data } of half) t.true(h.take().equals(data))
  for (let i = 0; i < half.length; i++) {
    const data = bytes(256 << 10, 100 + i)
    live.push({ h: await pageoutAsync(data), data })
  }
  for (const { h, data } of live) t.true(h.readAt(0, h.byteLength).equals(data))
  for (const { h } of live) h.dispose()
  const s = stats()
  t.is(s.file.handles, 0)
  t.is(s.scratchBytesAllocated, 0)
  t.true(s.errors >= 3)
  t.log(`${refused} pageouts refused with ERR_COLDPAGE_NO_SPACE on a 2 MiB tmpfs; ${half.length} succeeded again after freeing`)
})
