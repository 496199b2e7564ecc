// A handle's life at the seams between the façade, the binding and the core: views
// that cannot write through, takes that give the handle back on failure, results too
// large for memory, inputs transferred while pageoutAsync runs, config that Workers
// leave alone, watchConfig on symlinked (Kubernetes-style) paths, and errors whose
// details are properties.
import { constants as bufferConstants } from 'node:buffer'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import test from 'ava'
import { ColdpageError, type Config, configure, getConfig, pageout, pageoutAsync, stats, watchConfig, zeroCopySupported } from 'coldpage'

import { arenaFdPath, flipByte } from './fixtures/reliability.js'
import { BACKENDS, ROOT, bytes, rejectsCode, throwsCode } from './helpers.js'

const initial = getConfig()
const base = mkdtempSync(path.join(tmpdir(), 'coldpage-lifecycle-'))
test.after.always(() => {
  configure(initial)
  rmSync(base, { recursive: true, force: true })
})
test.afterEach.always(() => configure(initial))

/** Polls `cond` until it holds or `ms` pass (a condition wait, not a timing assertion). */
async function until(cond: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return cond()
}

for (const backend of BACKENDS) {
  test.serial(`${backend}: a write into a view never reaches the handle's bytes, nor another view`, async (t) => {
    const data = bytes(200_000, 3)
    using h = pageout(data, { backend })
    const a = h.view(1000, 5000)
    const b = h.view(0, 10_000)
    const reads = [h.readAtAsync(0, 200_000), h.readAtManyAsync([[1000, 10], [0, 200_000]])]
    a.fill(0xee)
    b[1500] = 1
    t.deepEqual(h.readAt(0, 200_000), data, 'the handle is unchanged')
    t.deepEqual(h.view(1000, 5000), data.subarray(1000, 6000), 'a new view sees the stored bytes')
    t.is(b[1000], data[1000], 'another view does not see the write')
    const [whole, [ten, all]] = (await Promise.all(reads)) as [Buffer, Buffer[]]
    t.deepEqual(whole, data, 'reads racing the writes see the stored bytes')
    t.deepEqual(ten, data.subarray(1000, 1010))
    t.deepEqual(all, data)
    t.deepEqual(h.take(), data, 'take returns the stored bytes')
  })
}

test.serial('file views stay zero-copy where the runtime allows: detached at dispose', (t) => {
  const h = pageout(bytes(100_000, 4), { backend: 'file' })
  const v = h.view(4096, 8192)
  h.dispose()
  t.is(v.length, zeroCopySupported() ? 0 : 8192)
})

test.serial('a take that fails (a corrupt block) throws and leaves the handle live and readable; sync and async', async (t) => {
  if (process.platform !== 'linux') {
    t.log('skipped: flips arena bytes through /proc/self/fd')
    t.pass()
    return
  }
  const scratch = mkdtempSync(path.join(base, 'take-'))
  configure({ scratchDir: scratch, verify: true })
  const BLOCK = 4096
  const data = bytes(8 * BLOCK, 5)
  const h = pageout(data, { backend: 'file' })
  flipByte(arenaFdPath(scratch), 5 * BLOCK + 9)
  throwsCode(t, () => h.take(), 'ERR_COLDPAGE_CORRUPT')
  t.false(h.disposed)
  t.deepEqual(h.readAt(0, 5 * BLOCK), data.subarray(0, 5 * BLOCK), 'live and readable')
  await rejectsCode(t, h.takeAsync(), 'ERR_COLDPAGE_CORRUPT')
  t.false(h.disposed)
  t.deepEqual(h.readAt(6 * BLOCK, 2 * BLOCK), data.subarray(6 * BLOCK), 'still live and readable')
  t.is(stats().file.handles >= 1, true)
  h.dispose()
  t.true(h.disposed)
})

for (const backend of BACKENDS) {
  test.serial(`${backend}: a result too large for memory is ERR_COLDPAGE_NO_MEMORY (or past the Buffer limit ERR_OUT_OF_RANGE), and nothing is lost`, async (t) => {
    const len = 256 * 2 ** 20
    using h = pageout(Buffer.alloc(len, 7), { backend })
    // Ranges may repeat: 2^20 reads of the same 256 MiB make 2^48 bytes, more than
    // any process can address.
    const ranges = Array.from({ length: 2 ** 20 }, () => [0, len] as const)
    await rejectsCode(t, h.readAtManyAsync(ranges), 'ERR_COLDPAGE_NO_MEMORY')
    const syncCode = 2 ** 48 > bufferConstants.MAX_LENGTH ? 'ERR_OUT_OF_RANGE' : 'ERR_COLDPAGE_NO_MEMORY'
    throwsCode(t, () => h.readAtMany(ranges), syncCode)
    t.deepEqual(h.readAt(len - 3, 3), Buffer.from([7, 7, 7]), 'the handle keeps working')
    t.deepEqual(await h.readAtAsync(0, 2), Buffer.from([7, 7]))
    using again = pageout(Buffer.from('and the pager'), { backend })
    t.is(again.readAt(0, 13).toString(), 'and the pager')
  })
}

test.serial('pageoutAsync of an input transferred and freed before it was read rejects with ERR_INVALID_STATE and stores nothing', async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc
  for (const backend of BACKENDS) {
    const before = stats()
    const data = bytes(4 * 2 ** 20, 6)
    const input = Buffer.from(data) // its own ArrayBuffer (not the pool)
    const pending = pageoutAsync(input, { backend })
    // Transfer the memory away and drop it: the pool must not be reading it.
    let moved: ArrayBuffer | undefined = structuredClone(input.buffer, { transfer: [input.buffer as ArrayBuffer] })
    t.is(input.length, 0, 'the input is detached')
    moved = undefined
    void moved
    gc?.()
    await rejectsCode(t, pending, 'ERR_INVALID_STATE')
    const after = stats()
    t.deepEqual([after.file, after.swap, after.scratchBytesAllocated], [before.file, before.swap, before.scratchBytesAllocated], backend)
  }
})

test.serial('a Worker loading coldpage never reverts configure(), and configure changes only the fields it is given', async (t) => {
  const dir = mkdtempSync(path.join(base, 'worker-'))
  configure({ verify: false, maxScratchBytes: 123 * 4096 })
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const c = require(workerData.root)
    const seen = c.getConfig()
    c.configure({ scratchDir: workerData.dir })
    parentPort.postMessage(seen)
  `
  // The Worker's environment asks for verify=1 and another quota: the process-wide
  // config was set up already, so loading the package there must not apply it.
  const seen = await new Promise<Config>((resolve, reject) => {
    const w = new Worker(code, {
      eval: true,
      workerData: { root: ROOT, dir },
      env: { ...process.env, COLDPAGE_VERIFY: '1', COLDPAGE_MAX_SCRATCH_BYTES: '4096' },
    })
    w.once('message', resolve)
    w.once('error', reject)
  })
  t.is(seen.verify, false, 'the worker sees the process-wide config')
  t.is(seen.maxScratchBytes, 123 * 4096)
  const now = getConfig()
  t.is(now.verify, false, 'the worker did not revert verify')
  t.is(now.maxScratchBytes, 123 * 4096, 'nor the quota')
  t.is(now.scratchDir, dir, "the worker's own change applied")
})

test.serial('watchConfig follows a Kubernetes-style symlinked config (..data swapped by rename) and editors\' rename-saves', async (t) => {
  const mount = mkdtempSync(path.join(base, 'k8s-'))
  const scratchA = mkdtempSync(path.join(base, 'scratch-a-'))
  const scratchB = mkdtempSync(path.join(base, 'scratch-b-'))
  let version = 0
  // /mount/..<ts>/config.json, /mount/..data -> ..<ts>, /mount/config.json -> ..data/config.json
  const publish = (content: object) => {
    const dir = `..v${++version}`
    mkdirSync(path.join(mount, dir))
    writeFileSync(path.join(mount, dir, 'config.json'), JSON.stringify(content))
    symlinkSync(dir, path.join(mount, '..data_tmp'))
    renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'))
  }
  publish({ verify: true, scratchDir: scratchA })
  symlinkSync('..data/config.json', path.join(mount, 'config.json'))
  const errors: Error[] = []
  const w = watchConfig(path.join(mount, 'config.json'), (e) => errors.push(e))
  try {
    t.is(getConfig().scratchDir, scratchA)
    publish({ verify: false, scratchDir: scratchB })
    t.true(await until(() => getConfig().scratchDir === scratchB && !getConfig().verify), 'the ..data swap applied')
    publish({ verify: true, scratchDir: scratchA, maxScratchBytes: 1 << 30 })
    t.true(await until(() => getConfig().maxScratchBytes === 1 << 30), 'and the next one')

    // An editor's save: write a temp file, rename it over the real one (here: the symlink's target).
    const real = path.join(mount, `..v${version}`, 'config.json')
    writeFileSync(`${real}.tmp`, JSON.stringify({ verify: false, scratchDir: scratchB, maxScratchBytes: null }))
    renameSync(`${real}.tmp`, real)
    t.true(await until(() => getConfig().maxScratchBytes === Infinity && getConfig().scratchDir === scratchB), 'a rename-save applied')
    t.deepEqual(errors, [])
  } finally {
    w.close()
  }
})

test.serial('errors carry code, errno, syscall and path as properties; the message is plain', (t) => {
  const ro = mkdtempSync(path.join(base, 'ro-'))
  // A file where the pager's subdirectory would go, under a dir we then make
  // unwritable, is not needed: a missing parent that cannot be created is enough.
  const file = path.join(ro, 'plain-file')
  writeFileSync(file, 'x')
  const err = t.throws(() => configure({ scratchDir: path.join(file, 'below') }), { any: true }) as Error & Record<string, unknown>
  t.true(err instanceof ColdpageError, String(err))
  t.is(err.code, 'ERR_COLDPAGE_IO')
  t.is(typeof err.errno, 'number')
  t.is(typeof err.syscall, 'string')
  t.is(err.path, path.join(file, 'below'))
  t.false(/\|/.test(err.message), err.message)
  t.true(Object.hasOwn(err, 'code') && Object.hasOwn(err, 'errno') && Object.hasOwn(err, 'syscall') && Object.hasOwn(err, 'path'))
  const range = t.throws(() => pageout(Buffer.alloc(10)).readAt(5, 10), { any: true }) as RangeError & { code?: string }
  t.true(range instanceof RangeError)
  t.is(range.code, 'ERR_OUT_OF_RANGE')
})
