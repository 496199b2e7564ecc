// Races: dispose while async reads are in flight, take during readAtManyAsync,
// configure during pageoutAsync, views outliving (or racing) their handle and GC,
// and random interleavings of all of them. Each operation either completes with
// exactly the bytes paged out or rejects with one of SPEC's errors; the process
// never crashes (ava runs this file in its own process: a crash fails it), and a
// view never shows freed memory (it is detached, or its bytes stay valid).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import { fc, testProp } from '@fast-check/ava'
import test from 'ava'
import { type BackendName, type Handle, configure, getConfig, pageout, pageoutAsync, stats } from 'coldpage'

import { SPEC_CODES, codeOf } from './fixtures/reliability.js'
import { BACKENDS, bytes, collectUntil } from './helpers.js'

const initial = getConfig()
const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-races-'))
const dirA = path.join(dir, 'a')
const dirB = path.join(dir, 'b')
mkdirSync(dirA, { mode: 0o700 })
mkdirSync(dirB, { mode: 0o700 })
test.before(() => configure({ scratchDir: dirA }))
test.after.always(() => {
  configure(initial)
  rmSync(dir, { recursive: true, force: true })
})

const live = () => stats().swap.handles + stats().file.handles

/** Collects what earlier tests left to GC (views outliving handles) so counts start at 0. */
async function settled(): Promise<number> {
  await collectUntil(() => live() === 0 && stats().scratchBytesAllocated === 0)
  return live()
}

/** Settles `p`: 'ok' if it resolves and `check` passes, the code if it rejects with a SPEC error. */
async function outcome<T>(p: Promise<T>, check: (v: T) => boolean): Promise<string> {
  try {
    return check(await p) ? 'ok' : 'WRONG BYTES'
  } catch (err) {
    const code = codeOf(err)
    return code !== undefined && SPEC_CODES.has(code) ? code : `NOT A SPEC ERROR: ${String(err)}`
  }
}

const bad = (outcomes: string[]) => outcomes.filter((o) => o === 'WRONG BYTES' || o.startsWith('NOT A SPEC'))

for (const backend of BACKENDS) {
  test.serial(`${backend}: dispose while 64 async reads are in flight`, async (t) => {
    const data = bytes(4 << 20, 3)
    const before = await settled()
    const h = pageout(data, { backend })
    const reads: Promise<string>[] = []
    for (let i = 0; i < 32; i++) {
      const o = (i * 131_071) % data.length
      reads.push(outcome(h.readAtAsync(o, data.length - o), (b) => b.equals(data.subarray(o))))
      const ranges: [number, number][] = [[o, 100], [0, data.length], [o, data.length - o]]
      reads.push(
        outcome(h.readAtManyAsync(ranges), (bs) => bs.every((b, k) => b.equals(data.subarray(ranges[k]![0], ranges[k]![0] + ranges[k]![1])))),
      )
    }
    h.dispose()
    t.true(h.disposed)
    await t.throwsAsync(h.readAtAsync(0, 1), { code: 'ERR_COLDPAGE_DISPOSED' })
    const outcomes = await Promise.all(reads)
    t.deepEqual(bad(outcomes), [])
    t.is(live(), before, 'the storage is freed once the last read finishes')
    t.log(`${outcomes.filter((o) => o === 'ok').length}/${outcomes.length} in-flight reads completed with the right bytes, the rest: ${[...new Set(outcomes.filter((o) => o !== 'ok'))].join(', ') || 'none'}`)
  })

  test.serial(`${backend}: take and takeAsync during readAtManyAsync`, async (t) => {
    for (const how of ['take', 'takeAsync'] as const) {
      const data = bytes(3 << 20, 5)
      const h = pageout(data, { backend })
      const ranges: [number, number][] = [[0, data.length], [1 << 20, 1 << 20], [17, 4096]]
      const reads = Array.from({ length: 8 }, () =>
        outcome(h.readAtManyAsync(ranges), (bs) => bs.every((b, k) => b.equals(data.subarray(ranges[k]![0], ranges[k]![0] + ranges[k]![1])))),
      )
      const taken = how === 'take' ? h.take() : await h.takeAsync()
      t.true(taken.equals(data), `${how} returns every byte while reads share the storage`)
      t.deepEqual(bad(await Promise.all(reads)), [])
      t.throws(() => h.readAtMany([[0, 1]]), { code: 'ERR_COLDPAGE_DISPOSED' })
    }
  })

  test.serial(`${backend}: views race dispose, take and GC without ever showing freed memory`, async (t) => {
    const data = bytes(1 << 20, 9)
    const before = await settled()
    // Disposed: every view and subarray is detached.
    let h = pageout(data, { backend })
    const spans: [number, number][] = [[0, data.length], [4096, 8192], [100, 1]]
    const views = spans.map(([o, l]) => h.view(o, l))
    const subs = views.map((v) => v.subarray(0, 1))
    h.dispose()
    t.true(views.every((v, i) => v.length === 0 || v.equals(data.subarray(spans[i]![0], spans[i]![0] + spans[i]![1]))))
    t.true(subs.every((v, i) => v.length === 0 || v[0] === data[spans[i]![0]]))
    // Taken: the same.
    h = pageout(data, { backend })
    const v2 = h.view(0, 65_536)
    t.true(h.take().equals(data))
    t.true(v2.length === 0 || v2.equals(data.subarray(0, 65_536)))
    // Transferred before dispose: the copy that moved keeps valid bytes through dispose and GC.
    h = pageout(data, { backend })
    const v3 = h.view(8192, 100_000)
    const [at, len] = [v3.byteOffset, v3.length] // read before the transfer detaches v3
    const moved = new Uint8Array(structuredClone(v3.buffer, { transfer: [v3.buffer as ArrayBuffer] }), at, len)
    h.dispose()
    t.true(await collectUntil(() => live() === before))
    t.true(Buffer.from(moved).equals(data.subarray(8192, 108_192)), 'a transferred view keeps its bytes')
    // A view whose handle is only collected (never disposed) stays valid.
    const orphan = ((): Buffer => pageout(data, { backend }).view(0, 10_000))()
    t.true(await collectUntil(() => live() === before + 1 || live() === before))
    t.true(orphan.equals(data.subarray(0, 10_000)), 'a view outlives its collected handle')
    // A view posted (copied) to a worker while the handle is disposed.
    h = pageout(data, { backend })
    const v4 = h.view(0, 50_000)
    const echoed = new Promise<Uint8Array>((resolve, reject) => {
      const w = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.once('message', (m) => { parentPort.postMessage(m); parentPort.close() })`, { eval: true })
      w.once('message', resolve)
      w.once('error', reject)
      w.postMessage(v4)
    })
    h.dispose()
    t.true(Buffer.from(await echoed).equals(data.subarray(0, 50_000)) || (await echoed).length === 0)
  })
}

test.serial('configure (selector, scratch dir, quota, verify) during pageoutAsync', async (t) => {
  const before = await settled()
  const pending: Array<{ data: Buffer; p: Promise<Handle> }> = []
  const settings = [
    { backend: 'file' as const, scratchDir: dirB },
    { backend: 'auto' as const, verify: false },
    { scratchDir: dirA, maxScratchBytes: 1 << 20 },
    { backend: BACKENDS[0]!, maxScratchBytes: Infinity, verify: true },
  ]
  for (let i = 0; i < 120; i++) {
    const data = bytes(1 + ((i * 7919) % 400_000), i)
    pending.push({ data, p: pageoutAsync([data.subarray(0, 10), data.subarray(10)]) })
    configure(settings[i % settings.length]!)
  }
  const handles: Array<{ h: Handle; data: Buffer }> = []
  const outcomes = await Promise.all(
    pending.map(({ data, p }) =>
      outcome(
        p.then((h) => (handles.push({ h, data }), h)),
        (h) => h.readAt(0, h.byteLength).equals(data),
      ),
    ),
  )
  t.deepEqual(bad(outcomes), [])
  t.true(outcomes.every((o) => o === 'ok' || o === 'ERR_COLDPAGE_NO_SPACE'), outcomes.join())
  configure({ scratchDir: dirA, maxScratchBytes: Infinity, verify: true, backend: 'auto' })
  for (const { h, data } of handles) t.true(h.readAt(0, h.byteLength).equals(data), 'still readable after the config moved on')
  for (const { h } of handles) h.dispose()
  t.is(live(), before)
  t.is(stats().scratchBytesAllocated, 0)
  t.log(`${outcomes.filter((o) => o === 'ok').length} pageouts completed, ${outcomes.filter((o) => o !== 'ok').length} refused by the quota`)
})

// Random interleavings: operations are started without waiting for each other.
type Op =
  | { kind: 'readAtAsync' | 'readAtManyAsync' | 'view' | 'readAt'; at: number }
  | { kind: 'take' | 'takeAsync' | 'dispose' | 'gc' | 'configure' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('readAtAsync', 'readAtManyAsync', 'view', 'readAt') as fc.Arbitrary<'readAt'>, at: fc.nat() }),
  fc.record({ kind: fc.constantFrom('take', 'takeAsync', 'dispose', 'gc', 'configure') as fc.Arbitrary<'take'> }),
)

testProp.serial(
  'random interleavings of async reads, views, take, dispose, configure and GC',
  [fc.constantFrom<BackendName>(...BACKENDS), fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 300_000 })],
  async (t, backend, ops, size) => {
    const data = bytes(size, size)
    const h = pageout(data, { backend })
    const views: Buffer[] = []
    const results: Promise<string>[] = []
    const sync = (fn: () => boolean) => results.push(outcome(Promise.resolve().then(fn), (ok) => ok))
    for (const op of ops) {
      const o = 'at' in op ? op.at % size : 0
      switch (op.kind) {
        case 'readAt':
          sync(() => h.readAt(o, size - o).equals(data.subarray(o)))
          break
        case 'readAtAsync':
          results.push(outcome(h.readAtAsync(o, size - o), (b) => b.equals(data.subarray(o))))
          break
        case 'readAtManyAsync':
          results.push(outcome(h.readAtManyAsync([[o, size - o], [0, o]]), ([a, b]) => a!.equals(data.subarray(o)) && b!.equals(data.subarray(0, o))))
          break
        case 'view':
          try {
            views.push(h.view(o))
          } catch (err) {
            results.push(Promise.resolve(SPEC_CODES.has(codeOf(err) ?? '') ? codeOf(err)! : `NOT A SPEC ERROR: ${String(err)}`))
          }
          break
        case 'take':
          sync(() => h.take().equals(data))
          break
        case 'takeAsync':
          results.push(outcome(Promise.resolve().then(() => h.takeAsync()), (b) => b.equals(data)))
          break
        case 'dispose':
          h.dispose()
          break
        case 'gc':
          ;(globalThis as { gc?: () => void }).gc?.()
          break
        case 'configure':
          configure({ verify: !getConfig().verify })
          break
      }
    }
    const outcomes = await Promise.all(results)
    h.dispose()
    configure({ verify: true })
    // A view is either detached or shows exactly the bytes it was given.
    const viewsOk = views.every((v) => v.length === 0 || v.equals(data.subarray(size - v.length)))
    t.deepEqual(bad(outcomes), [])
    t.true(viewsOk)
  },
  { numRuns: Number(process.env.COLDPAGE_RACE_RUNS ?? 150) },
)

test.serial('after the races every handle is freed', async (t) => {
  t.true(await collectUntil(() => live() === 0 && stats().scratchBytesAllocated === 0), JSON.stringify(stats()))
})
