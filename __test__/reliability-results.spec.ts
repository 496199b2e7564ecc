// Results are the caller's (SPEC "Resources at scale"): transferring one result's
// ArrayBuffer (postMessage, structuredClone with transfer) never empties another.
// Small results share a pool, as Buffer.allocUnsafe's do; like Node's pool it is
// untransferable, so such a transfer copies (Node 20) or throws DataCloneError.
import { MessageChannel } from 'node:worker_threads'

import test from 'ava'
import * as arrow from 'apache-arrow'
import { pageout } from 'coldpage'
import { pageoutTable } from 'coldpage/arrow'

import { BACKENDS, bytes } from './helpers.js'

/** Transfers `buf`'s ArrayBuffer away both ways a user would; a refusal is fine. */
function transferAway(buf: Buffer): void {
  for (const move of [
    () => structuredClone(buf.buffer, { transfer: [buf.buffer as ArrayBuffer] }),
    () => {
      const { port1, port2 } = new MessageChannel()
      try {
        port1.postMessage(buf.buffer, [buf.buffer as ArrayBuffer])
      } finally {
        port1.close()
        port2.close()
      }
    },
  ]) {
    try {
      move()
    } catch (err) {
      if ((err as Error).name !== 'DataCloneError') throw err
    }
  }
}

for (const backend of BACKENDS) {
  test(`${backend}: transferring one small result leaves the others whole`, (t) => {
    const data = bytes(3 * 4096)
    const h = pageout(data, { backend })
    const earlier = h.readAt(0, 8)
    const many = h.readAtMany([
      [8, 16],
      [100, 4096],
    ])
    const victim = h.readAt(0, 8)
    transferAway(victim)
    t.true(earlier.equals(data.subarray(0, 8)), 'an earlier readAt result')
    t.true(many[0]!.equals(data.subarray(8, 24)), 'a readAtMany result')
    t.true(many[1]!.equals(data.subarray(100, 4196)))
    const later = h.readAt(16, 8)
    transferAway(h.readAtMany([[0, 4]])[0]!)
    t.true(later.equals(data.subarray(16, 24)))
    const small = pageout(data.subarray(0, 100), { backend })
    const taken = small.take()
    transferAway(h.readAt(0, 1))
    t.true(taken.equals(data.subarray(0, 100)), 'a take() result')
    h.dispose()
  })

  test(`${backend}: transferring one large readAtMany result leaves the others whole`, (t) => {
    const data = bytes(64 * 1024)
    const h = pageout(data, { backend })
    const [a, b] = h.readAtMany([
      [0, 20_000],
      [20_000, 20_000],
    ])
    transferAway(a!)
    t.true(b!.equals(data.subarray(20_000, 40_000)))
    // A result alone in its memory is the caller's to transfer.
    const [alone] = h.readAtMany([[0, 10_000]])
    const moved = structuredClone(alone!.buffer, { transfer: [alone!.buffer as ArrayBuffer] })
    t.is(alone!.length, 0, 'transferred for real')
    t.is(moved.byteLength, 10_000)
    h.dispose()
  })

  test(`${backend}: tables from TableHandle.read() survive a transfer of another result`, (t) => {
    const table = arrow.tableFromArrays({ a: Int32Array.from({ length: 10 }, (_, i) => i), b: Float64Array.from({ length: 10 }, (_, i) => i / 2) })
    const th = pageoutTable(table, { backend })
    const read = th.read()
    const h = pageout(bytes(64), { backend })
    transferAway(h.readAt(0, 8))
    t.deepEqual(read.getChild('a')!.toArray(), table.getChild('a')!.toArray())
    t.deepEqual(read.getChild('b')!.toArray(), table.getChild('b')!.toArray())
    th.dispose()
    h.dispose()
  })
}
