// Corruption from JS: random bytes of live extents flipped through /proc/self/fd.
// Every read that touches a flipped 4 KiB block (a read of part of a block
// verifies all of it) must fail with ERR_COLDPAGE_CORRUPT, every other read must
// return exactly the bytes paged out: 0 wrong bytes.
//
// Layout facts used: the first extent of a fresh arena starts at file offset 0,
// extents are page-aligned and packed in pageout order while nothing was freed,
// and an arena whose extents are all freed starts again at 0.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import { type Handle, configure, getConfig, pageout, stats } from 'coldpage'

import { arenaFdPath, below, codeOf, flipByte, prng } from './fixtures/reliability.js'
import { bytes } from './helpers.js'

const BLOCK = 4096
const PAGE = 4096
const TRIALS = Number(process.env.COLDPAGE_CORRUPTION_TRIALS ?? 1000)

const initial = getConfig()
const scratch = mkdtempSync(path.join(tmpdir(), 'coldpage-corruption-'))
test.before(() => configure({ scratchDir: scratch, verify: true }))
test.after.always(() => {
  configure(initial)
  rmSync(scratch, { recursive: true, force: true })
})

type Range = [number, number]

/** Whether `[o, o + l)` touches a block in `bad`. */
const touches = (bad: Set<number>, [o, l]: Range) => {
  if (l === 0) return false
  for (let b = Math.floor(o / BLOCK); b <= Math.floor((o + l - 1) / BLOCK); b++) if (bad.has(b)) return true
  return false
}

/** A random range of a handle of `n` bytes: often one byte or one block, sometimes all. */
function randomRange(rand: () => number, n: number): Range {
  if (n === 0) return [0, 0]
  const o = below(rand, n)
  const kind = below(rand, 4)
  const l = kind === 0 ? 1 : kind === 1 ? Math.min(BLOCK, n - o) : kind === 2 ? below(rand, n - o + 1) : n - o
  return kind === 3 && rand() < 0.5 ? [0, n] : [o, l]
}

test.serial('random flips in live extents: every read of a flipped block is ERR_COLDPAGE_CORRUPT, 0 wrong bytes', async (t) => {
  const rand = prng(0xc0ffee)
  const tally = { flips: 0, reads: 0, touching: 0, detected: 0, clean: 0, wrongBytes: 0, other: [] as string[] }
  const failuresBefore = stats().checksumFailures

  /** Checks one read: `run` returns the Buffers it read for `ranges`, or throws. */
  async function check(what: string, bad: Set<number>, data: Buffer, ranges: Range[], run: () => Buffer[] | Promise<Buffer[]>) {
    tally.reads++
    const hit = ranges.some((r) => touches(bad, r))
    if (hit) tally.touching++
    try {
      const got = await run()
      if (hit) tally.other.push(`${what} ${JSON.stringify(ranges)} touched a flipped block and succeeded`)
      ranges.forEach(([o, l], i) => {
        const want = data.subarray(o, o + l)
        if (!want.equals(got[i]!)) {
          tally.wrongBytes += want.length
          tally.other.push(`${what} ${JSON.stringify(ranges)} returned wrong bytes`)
        }
      })
      if (!hit) tally.clean++
    } catch (err) {
      if (hit && codeOf(err) === 'ERR_COLDPAGE_CORRUPT') tally.detected++
      else tally.other.push(`${what} ${JSON.stringify(ranges)}: ${String(err)}`)
    }
  }

  const views: Buffer[] = []
  for (let trial = 0; trial < TRIALS; trial++) {
    // One to three handles, packed from offset 0 of the (empty) arena.
    const handles: Array<{ h: Handle; data: Buffer; at: number; bad: Set<number> }> = []
    let at = 0
    for (let i = below(rand, 3) + 1; i > 0; i--) {
      const n = 1 + below(rand, rand() < 0.3 ? 300_000 : 3 * BLOCK)
      const data = bytes(n, trial * 7 + i)
      handles.push({ h: pageout(data, { backend: 'file' }), data, at, bad: new Set() })
      at += Math.ceil(n / PAGE) * PAGE
    }
    t.is(stats().scratchBytesAllocated, at, `trial ${trial}: extents are packed as assumed`)
    const fdPath = arenaFdPath(scratch)
    const victim = handles[below(rand, handles.length)]!
    const flipped = new Set<number>()
    for (let f = below(rand, 3) + 1; f > 0; f--) {
      const pos = below(rand, victim.data.length)
      if (flipped.has(pos)) continue // a second flip of a byte would undo the first
      flipped.add(pos)
      flipByte(fdPath, victim.at + pos)
      victim.bad.add(Math.floor(pos / BLOCK))
      tally.flips++
    }
    for (const { h, data, bad } of handles) {
      const n = data.length
      for (let k = 0; k < 6; k++) {
        const r = randomRange(rand, n)
        // A read that surely touches a flipped block, and random ones.
        const b = [...bad][0]
        const sure: Range | undefined = b === undefined ? undefined : [b * BLOCK + below(rand, Math.min(BLOCK, n - b * BLOCK)), 1]
        const range = k === 0 && sure !== undefined ? sure : r
        switch (k % 6) {
          case 0:
            await check('readAt', bad, data, [range], () => [h.readAt(...range)])
            break
          case 1: {
            const target = new Uint8Array(range[1])
            await check('readInto', bad, data, [range], () => {
              h.readInto(range[0], target)
              return [Buffer.from(target)]
            })
            if (touches(bad, range) && target.some((x, i) => x !== 0 && x !== data[range[0] + i])) {
              tally.other.push('a failed readInto left flipped bytes in the target')
            }
            break
          }
          case 2: {
            const ranges = [range, randomRange(rand, n), randomRange(rand, n)]
            await check('readAtMany', bad, data, ranges, () => h.readAtMany(ranges))
            break
          }
          case 3:
            await check('view', bad, data, [range], () => {
              // Kept alive, so that take() detaches it and frees its lease at once
              // (a collected view keeps its extent until its late finalizer runs).
              const v = h.view(...range)
              views.push(v)
              return [Buffer.from(v)]
            })
            break
          case 4:
            await check('readAtAsync', bad, data, [range], async () => [await h.readAtAsync(...range)])
            break
          case 5: {
            const ranges = [range, randomRange(rand, n)]
            await check('readAtManyAsync', bad, data, ranges, () => h.readAtManyAsync(ranges))
            break
          }
        }
      }
    }
    // take reads everything: it fails exactly for the corrupted handle, which then
    // stays live and readable (nothing is lost); a successful take disposes.
    for (const { h, data, bad } of handles) {
      await check('take', bad, data, [[0, data.length]], () => [h.take()])
      t.is(h.disposed, bad.size === 0, 'disposed after a take exactly when it succeeded')
      if (!h.disposed) {
        const clean = [...Array(Math.ceil(data.length / BLOCK)).keys()].find((b) => !bad.has(b))
        if (clean !== undefined) {
          const end = Math.min((clean + 1) * BLOCK, data.length)
          t.deepEqual(h.readAt(clean * BLOCK, end - clean * BLOCK), data.subarray(clean * BLOCK, end), 'still readable after a failed take')
        }
        h.dispose()
      }
    }
    t.true(views.every((v) => v.length === 0), 'views are detached by take')
    views.length = 0
    t.is(stats().scratchBytesAllocated, 0, 'every extent is free again')
  }
  const s = stats()
  t.deepEqual(tally.other, [], 'no read misbehaved')
  t.is(tally.wrongBytes, 0)
  t.is(tally.detected, tally.touching, 'every read touching a flipped block was detected')
  t.is(s.checksumFailures - failuresBefore, tally.detected)
  t.is(s.file.handles, 0)
  t.true(tally.touching > TRIALS, `enough reads hit flipped blocks (${tally.touching})`)
  t.log(
    `${TRIALS} trials, ${tally.flips} bytes flipped; ${tally.reads} reads: ${tally.touching} touched a flipped block, ` +
      `${tally.detected} detected (ERR_COLDPAGE_CORRUPT), ${tally.clean} clean reads exact, ${tally.wrongBytes} wrong bytes`,
  )
})

test.serial('a flip is reported on every read of its block, and the handle keeps serving the other blocks', (t) => {
  const data = bytes(10 * BLOCK + 123, 99)
  using h = pageout(data, { backend: 'file' })
  flipByte(arenaFdPath(scratch), 4 * BLOCK + 17)
  for (let i = 0; i < 5; i++) {
    t.is(codeOf(t.throws(() => h.readAt(4 * BLOCK + 4095, 1))), 'ERR_COLDPAGE_CORRUPT')
    t.deepEqual(h.readAt(3 * BLOCK, BLOCK), data.subarray(3 * BLOCK, 4 * BLOCK))
    t.deepEqual(h.readAt(5 * BLOCK, 5 * BLOCK + 123), data.subarray(5 * BLOCK))
  }
  const err = t.throws(() => h.view(0)) as Error
  t.regex(err.message, /checksum mismatch in block 4 of handle \d+/)
})
