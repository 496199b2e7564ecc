// A worker thread loads the package and uses the (process-wide) pager on its own.
import { Worker } from 'node:worker_threads'

import test from 'ava'
import { pageout, stats } from 'coldpage'

import { BACKENDS, bytes } from './helpers.js'

const WORKER = `
  const { parentPort, workerData } = require('node:worker_threads')
  const coldpage = require('coldpage')
  ;(async () => {
    const data = Buffer.from(workerData.data)
    const out = []
    for (const backend of workerData.backends) {
      const h = await coldpage.pageoutAsync(data, { backend })
      const a = h.readAt(10, 100)
      const [b] = await h.readAtManyAsync([[0, data.length]])
      const v = h.view(5, 5)
      h.dispose()
      out.push({ backend, a: a.equals(data.subarray(10, 110)), b: b.equals(data), detachedOrCopy: v.length === 0 || v.equals(data.subarray(5, 10)) })
    }
    parentPort.postMessage(out)
  })().catch((err) => { throw err })
`

test.serial('a worker thread pages out and reads back on its own', async (t) => {
  const data = bytes(300_000)
  using mine = pageout(data)
  const result = await new Promise<unknown>((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { data, backends: BACKENDS } })
    w.once('message', resolve)
    w.once('error', reject)
  })
  t.deepEqual(
    result,
    BACKENDS.map((backend) => ({ backend, a: true, b: true, detachedOrCopy: true })),
  )
  t.deepEqual(mine.readAt(0, 300_000), data)
  t.is(stats().swap.handles + stats().file.handles, 1)
})

test.serial('workers terminated with live handles do not crash the process and free them', async (t) => {
  const live = () => stats().swap.handles + stats().file.handles
  const before = live()
  const w = new Worker(
    `const c = require('coldpage'); const hs = []; for (let i = 0; i < 20; i++) { const h = c.pageout(Buffer.alloc(100000, i)); hs.push(h, h.view(0, 10)) } require('node:worker_threads').parentPort.postMessage('ready'); setInterval(() => {}, 1000)`,
    { eval: true },
  )
  await new Promise((resolve) => w.once('message', resolve))
  t.is(live(), before + 20)
  t.is(await w.terminate(), 1)
  const end = Date.now() + 5_000
  while (live() !== before && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  t.is(live(), before)
})
