// handle.share() / open(shared): one storage, a Handle per thread, freed with the last one.
// Also run without external buffers (ava.copy-mode.config.mjs); workers inherit that mode.
import { Worker } from 'node:worker_threads'

import test from 'ava'
import { ColdpageError, type SharedHandle, open, pageout, stats, zeroCopySupported } from 'coldpage'

import { BACKENDS, bytes, throwsCode } from './helpers.js'

const live = (): number => stats().swap.handles + stats().file.handles

/** Waits (bounded) until the pager holds no handles and no scratch bytes. */
async function drained(): Promise<{ handles: number; scratch: number }> {
  const end = Date.now() + 10_000
  while ((live() !== 0 || stats().scratchBytesAllocated !== 0) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10))
  }
  return { handles: live(), scratch: stats().scratchBytesAllocated }
}

/** Runs `source` (CommonJS, with `coldpage`, `parentPort`, `workerData` in scope) in a Worker. */
function worker(source: string, workerData: unknown): Worker {
  const prelude = `const { parentPort, workerData } = require('node:worker_threads'); const coldpage = require('coldpage');`
  return new Worker(`${prelude}\n;(async () => {\n${source}\n})().catch((err) => { throw err })`, {
    eval: true,
    workerData,
  })
}

function message<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
}

function exited(w: Worker): Promise<number> {
  return new Promise((resolve) => w.once('exit', resolve))
}

const READER = `
  const data = Buffer.from(workerData.data)
  const h = coldpage.open(workerData.shared)
  const [a, b] = h.readAtMany([[0, 10], [data.length - 10, 10]])
  const v = h.view(100, 1000)
  const async = await h.readAtAsync(0, data.length)
  const into = Buffer.alloc(5000)
  h.readInto(7, into)
  const result = {
    backend: h.backend,
    byteLength: h.byteLength,
    readAt: h.readAt(0, data.length).equals(data),
    readAtMany: a.equals(data.subarray(0, 10)) && b.equals(data.subarray(data.length - 10)),
    view: v.equals(data.subarray(100, 1100)),
    async: async.equals(data),
    readInto: into.equals(data.subarray(7, 5007)),
  }
  h.dispose()
  result.viewAfterDispose = v.length === 0 || v.equals(data.subarray(100, 1100))
  parentPort.postMessage(result)
`

for (const backend of BACKENDS) {
  test.serial(`${backend}: a token posted to a worker opens the same bytes there`, async (t) => {
    const data = bytes(300_000, 7)
    const h = pageout(data, { backend })
    const shared = h.share()
    t.deepEqual(Object.keys(shared).sort(), ['id', 'process'])
    t.deepEqual(structuredClone(shared), shared, 'plain data survives structured clone')
    const w = worker(READER, { data, shared })
    const exit = exited(w)
    const result = await message(w)
    t.deepEqual(result, {
      backend,
      byteLength: data.length,
      readAt: true,
      readAtMany: true,
      view: true,
      async: true,
      readInto: true,
      viewAfterDispose: true,
    })
    await exit
    t.false(h.disposed, "the worker's dispose leaves this handle live")
    t.deepEqual(h.readAt(1000, 100), data.subarray(1000, 1100))
    h.dispose()
    t.deepEqual(await drained(), { handles: 0, scratch: 0 })
  })

  test.serial(`${backend}: workers keep reading their handles while the owner disposes`, async (t) => {
    const data = bytes(200_000, 11)
    const h = pageout(data, { backend })
    const ownerView = h.view(0, 100)
    const source = `
      const data = Buffer.from(workerData.data)
      const h = coldpage.open(workerData.shared)
      const v = h.view(50, 5000)
      parentPort.postMessage('opened')
      await new Promise((resolve) => parentPort.once('message', resolve)) // the owner has disposed
      let reads = 0
      for (let i = 0; i < 200; i++) {
        const at = (i * 997) % (data.length - 4096)
        if (!h.readAt(at, 4096).equals(data.subarray(at, at + 4096))) throw new Error('wrong bytes at ' + at)
        reads++
      }
      const [all] = await h.readAtManyAsync([[0, data.length]])
      const viewIntact = v.equals(data.subarray(50, 5050))
      h.dispose()
      parentPort.postMessage({ reads, all: all.equals(data), viewIntact })
    `
    const workers = [0, 1, 2].map(() => worker(source, { data, shared: h.share() }))
    const results = workers.map((w) => {
      const out: unknown[] = []
      w.on('message', (m) => out.push(m))
      return out
    })
    const failures = workers.map(
      (w) => new Promise<Error | undefined>((resolve) => w.once('error', resolve).once('exit', () => resolve(undefined))),
    )
    const end = Date.now() + 30_000
    while (results.some((r) => r.length === 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    t.true(
      results.every((r) => r[0] === 'opened'),
      'every worker opened its handle',
    )
    h.dispose()
    if (zeroCopySupported() && backend === 'file') t.is(ownerView.length, 0, "the owner's view is detached")
    t.is(live(), 1, 'the workers keep the storage alive')
    for (const w of workers) w.postMessage('disposed')
    t.deepEqual(await Promise.all(failures), [undefined, undefined, undefined])
    t.deepEqual(
      results.map((r) => r[1]),
      [0, 1, 2].map(() => ({ reads: 200, all: true, viewIntact: true })),
    )
    t.deepEqual(await drained(), { handles: 0, scratch: 0 }, 'the last dispose frees the storage')
  })

  test.serial(`${backend}: a worker opening while the owner disposes gets the bytes or ERR_COLDPAGE_DISPOSED`, async (t) => {
    const data = bytes(100_000, 13)
    const outcomes = new Set<string>()
    for (let round = 0; round < 6; round++) {
      const h = pageout(data, { backend })
      const shared = h.share()
      if (round === 0) h.dispose() // before the worker exists: its open must fail
      const w = worker(
        `
        const data = Buffer.from(workerData.data)
        let h
        try {
          h = coldpage.open(workerData.shared)
        } catch (err) {
          parentPort.postMessage(err.code + (err instanceof coldpage.ColdpageError ? '' : ' (not a ColdpageError)'))
          return
        }
        const ok = h.readAt(0, data.length).equals(data) && h.readAt(0, data.length).equals(data)
        h.dispose()
        parentPort.postMessage(ok ? 'read' : 'wrong bytes')
      `,
        { data, shared },
      )
      const outcome = message<string>(w)
      const exit = exited(w)
      // The others dispose at various points of the worker's start-up.
      if (round > 0) await new Promise((r) => setTimeout(r, round * 15))
      h.dispose()
      const got = await outcome
      t.true(['read', 'ERR_COLDPAGE_DISPOSED'].includes(got), got)
      outcomes.add(got)
      await exit
    }
    t.true(outcomes.has('ERR_COLDPAGE_DISPOSED'), 'a token whose handle was disposed is dead')
    t.deepEqual(await drained(), { handles: 0, scratch: 0 })
  })

  test.serial(`${backend}: take() of a handle that is not the last returns a copy; the other stays readable`, async (t) => {
    const data = bytes(150_000, 17)
    const first = pageout(data, { backend })
    const second = open(first.share())
    t.is(second.backend, backend)
    t.is(second.byteLength, data.length)
    t.is(live(), 1, 'handles over one storage count once in stats()')
    const secondView = second.view(0, 1000)
    const taken = first.take()
    t.deepEqual(taken, data)
    t.true(first.disposed)
    taken.fill(0) // a copy: writing it changes nothing in the other handle
    t.deepEqual(second.readAt(0, data.length), data)
    t.deepEqual(secondView, data.subarray(0, 1000), "the other handle's view is untouched")
    throwsCode(t, () => first.share(), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
    const third = open(second.share())
    t.deepEqual(second.take(), data)
    t.deepEqual(await third.takeAsync(), data)
    t.deepEqual(await drained(), { handles: 0, scratch: 0 })
  })
}

test.serial('a token whose storage was freed is ERR_COLDPAGE_DISPOSED; a token keeps nothing alive', async (t) => {
  const h = pageout(bytes(10_000))
  const shared = h.share()
  t.is(live(), 1)
  h.dispose()
  t.is(live(), 0, 'the token alone does not keep the storage')
  throwsCode(t, () => open(shared), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
  throwsCode(t, () => h.share(), 'ERR_COLDPAGE_DISPOSED', ColdpageError)

  const a = pageout(bytes(10_000))
  const token = a.share()
  const b = open(token)
  a.dispose()
  const c = open(token) // any handle over the storage keeps the token usable
  b.dispose()
  t.deepEqual(c.readAt(0, 10_000), bytes(10_000))
  c.dispose()
  throwsCode(t, () => open(token), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
  t.deepEqual(await drained(), { handles: 0, scratch: 0 })
})

test.serial('malformed tokens and tokens of another process are refused with their codes', (t) => {
  using h = pageout(bytes(100))
  const shared = h.share()
  const flipped = (shared.process[0] === '0' ? '1' : '0') + shared.process.slice(1)
  const cases: [unknown, string][] = [
    [undefined, 'ERR_INVALID_ARG_TYPE'],
    [null, 'ERR_INVALID_ARG_TYPE'],
    [42, 'ERR_INVALID_ARG_TYPE'],
    ['token', 'ERR_INVALID_ARG_TYPE'],
    [{}, 'ERR_INVALID_ARG_TYPE'],
    [{ process: shared.process }, 'ERR_INVALID_ARG_TYPE'],
    [{ process: 1, id: shared.id }, 'ERR_INVALID_ARG_TYPE'],
    [{ process: shared.process, id: String(shared.id) }, 'ERR_INVALID_ARG_TYPE'],
    [{ process: shared.process, id: 1.5 }, 'ERR_INVALID_ARG_VALUE'],
    [{ process: shared.process, id: -1 }, 'ERR_INVALID_ARG_VALUE'],
    [{ process: shared.process, id: 0 }, 'ERR_INVALID_ARG_VALUE'],
    [{ process: shared.process, id: Number.MAX_SAFE_INTEGER }, 'ERR_INVALID_ARG_VALUE'],
    [{ process: 'not hex', id: shared.id }, 'ERR_INVALID_ARG_VALUE'],
    [{ process: `${shared.process}0`, id: shared.id }, 'ERR_INVALID_ARG_VALUE'],
    [{ process: flipped, id: shared.id }, 'ERR_INVALID_ARG_VALUE'],
  ]
  for (const [token, code] of cases) {
    throwsCode(t, () => open(token as SharedHandle), code, TypeError)
  }
  t.false(h.disposed)
  using again = open(shared)
  t.deepEqual(again.readAt(0, 100), bytes(100))
})
