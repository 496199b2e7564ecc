// SPEC Workers: a posted token stays openable after the sharer's handle is collected
// without dispose() ("share, post, forget"), for a grace period (60 s, README Workers);
// an explicit dispose() of every handle frees the storage at once.
import { Worker } from 'node:worker_threads'

import test from 'ava'
import { ColdpageError, type SharedHandle, open, pageout, stats } from 'coldpage'

import { BACKENDS, bytes, collectUntil, throwsCode } from './helpers.js'

/** Pages out `data`, shares it and drops the handle without dispose(). */
function shareAndForget(data: Buffer, backend: (typeof BACKENDS)[number]): SharedHandle {
  return pageout(data, { backend }).share()
}

function openInWorker(shared: SharedHandle, length: number): Promise<Uint8Array | string> {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { open } = require('coldpage')
    try {
      const h = open(workerData.shared)
      parentPort.postMessage(h.readAt(0, workerData.length))
      h.dispose()
    } catch (err) {
      parentPort.postMessage(String(err.code))
    }`
  const w = new Worker(source, { eval: true, workerData: { shared, length } })
  return new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
}

for (const backend of BACKENDS) {
  test.serial(`${backend}: a token opens after its sharer was collected without dispose`, async (t) => {
    const data = bytes(100_000, 3)
    const shared = shareAndForget(data, backend)
    await collectUntil(() => false, 5) // the sharer's finalizer has run
    const got = await openInWorker(shared, data.length)
    t.not(typeof got, 'string', `open failed: ${String(got)}`)
    t.true(Buffer.from(got as Uint8Array).equals(data))
    const again = open(shared)
    t.true(again.readAt(0, 10).equals(data.subarray(0, 10)), 'and in this thread')
    again.dispose()
  })

  test.serial(`${backend}: an explicit dispose of every handle frees the storage at once`, async (t) => {
    const before = stats()[backend].handles
    const h = pageout(bytes(10_000), { backend })
    const shared = h.share()
    const other = open(shared)
    h.dispose()
    t.is(stats()[backend].handles, before + 1, 'the opened handle keeps it')
    other.dispose()
    t.is(stats()[backend].handles, before, 'freed with the last dispose')
    throwsCode(t, () => open(shared), 'ERR_COLDPAGE_DISPOSED', ColdpageError)
    t.is(await openInWorker(shared, 1), 'ERR_COLDPAGE_DISPOSED')
  })
}
