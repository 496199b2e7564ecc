// Observability and operations: the diagnostics channels (tracing channels of
// pageouts, reads and takes; store, config and pressure channels), the counters
// since load in stats(), util.inspect of handles and stores, unknown option keys
// refused, and the COLDPAGE_SWAP_INEFFECTIVE warning. Serial: channels and the
// config are process-wide.
import * as dc from 'node:diagnostics_channel'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { inspect } from 'node:util'

import test from 'ava'
import * as arrow from 'apache-arrow'
import {
  type ConfigMessage,
  type StoreMessage,
  type TraceContext,
  configure,
  createStore,
  doctor,
  pageout,
  pageoutAsync,
  stats,
  watchConfig,
} from 'coldpage'
import { pageoutTable } from 'coldpage/arrow'

import { BACKENDS, bytes, node, throwsCode } from './helpers.js'

type Event = [string, TraceContext]

/** Records the events of a tracing channel until the returned stop function is called. */
function record(name: string): { events: Event[]; stop: () => void } {
  const events: Event[] = []
  const on = (kind: string) => (ctx: unknown) => events.push([kind, { ...(ctx as TraceContext) }])
  const handlers = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  }
  const channel = dc.tracingChannel(name)
  channel.subscribe(handlers)
  return { events, stop: () => channel.unsubscribe(handlers) }
}

/** Records the messages of a plain channel until the returned stop function is called. */
function listen<T>(name: string): { messages: T[]; stop: () => void } {
  const messages: T[] = []
  const on = (m: unknown) => messages.push(m as T)
  dc.subscribe(name, on)
  return { messages, stop: () => dc.unsubscribe(name, on) }
}

for (const backend of BACKENDS) {
  test.serial(`coldpage:pageout, :read and :take trace sync and async calls (${backend})`, async (t) => {
    const pageouts = record('coldpage:pageout')
    const reads = record('coldpage:read')
    const takes = record('coldpage:take')
    try {
      const h = pageout([bytes(1000), bytes(24)], { backend })
      t.deepEqual(
        pageouts.events.map(([k, c]) => [k, c.method, c.backend, c.byteLength]),
        [
          ['start', 'pageout', backend, 1024],
          ['end', 'pageout', backend, 1024],
        ],
      )
      h.readAt(10, 100)
      await h.readAtAsync(0, 5)
      h.readAtMany([
        [0, 3],
        [5, 4],
      ])
      h.readInto(0, new Uint8Array(8))
      h.view(0, 16)
      t.deepEqual(
        reads.events.map(([k, c]) => [k, c.method, c.backend, c.byteLength]),
        [
          ['start', 'readAt', backend, 100],
          ['end', 'readAt', backend, 100],
          ['start', 'readAtAsync', backend, 5],
          ['end', 'readAtAsync', backend, 5],
          ['asyncStart', 'readAtAsync', backend, 5],
          ['asyncEnd', 'readAtAsync', backend, 5],
          ['start', 'readAtMany', backend, 7],
          ['end', 'readAtMany', backend, 7],
          ['start', 'readInto', backend, 8],
          ['end', 'readInto', backend, 8],
          ['start', 'view', backend, 16],
          ['end', 'view', backend, 16],
        ],
      )
      const taken = h.take()
      t.is(taken.length, 1024)
      t.deepEqual(takes.events.map(([k, c]) => [k, c.method, c.byteLength]), [
        ['start', 'take', 1024],
        ['end', 'take', 1024],
      ])
      const a = await pageoutAsync(bytes(64), { backend })
      await a.takeAsync()
      t.deepEqual(
        pageouts.events.slice(2).map(([k, c]) => [k, c.method, c.byteLength]),
        [
          ['start', 'pageoutAsync', 64],
          ['end', 'pageoutAsync', 64],
          ['asyncStart', 'pageoutAsync', 64],
          ['asyncEnd', 'pageoutAsync', 64],
        ],
      )
      t.deepEqual(takes.events.slice(2).map(([k, c]) => [k, c.method]), [
        ['start', 'takeAsync'],
        ['end', 'takeAsync'],
        ['asyncStart', 'takeAsync'],
        ['asyncEnd', 'takeAsync'],
      ])
    } finally {
      pageouts.stop()
      reads.stop()
      takes.stop()
    }
  })
}

test.serial('coldpage:pageout without a backend names the chosen one at end; an error is published', (t) => {
  const pageouts = record('coldpage:pageout')
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-obs-'))
  try {
    pageout(bytes(10)).dispose()
    const [start, end] = pageouts.events
    t.is(start![1].backend, null)
    t.true(end![1].backend === 'swap' || end![1].backend === 'file')
    configure({ maxScratchBytes: 4096, scratchDir: dir })
    throwsCode(t, () => pageout(bytes(1 << 20), { backend: 'file' }), 'ERR_COLDPAGE_NO_SPACE')
    const kinds = pageouts.events.slice(2).map(([k]) => k)
    t.deepEqual(kinds, ['start', 'error', 'end'])
    t.is((pageouts.events[3]![1].error as { code?: string }).code, 'ERR_COLDPAGE_NO_SPACE')
  } finally {
    configure({ maxScratchBytes: Infinity, scratchDir: tmpdir() })
    pageouts.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.serial('nothing is published, and no context made, without subscribers', (t) => {
  // Subscribing to one channel of a tracing channel is enough to be called; with
  // none, the calls run untraced (a context object would be visible as a result).
  t.false(dc.tracingChannel('coldpage:read').hasSubscribers)
  const h = pageout(bytes(100), { backend: 'file' })
  t.deepEqual(h.readAt(0, 4), bytes(100).subarray(0, 4))
  h.dispose()
})

test.serial('coldpage:store:evict and :store:pagein name the store, the key and the bytes', (t) => {
  const evicts = listen<StoreMessage>('coldpage:store:evict')
  const pageins = listen<StoreMessage>('coldpage:store:pagein')
  try {
    const store = createStore({ residentBytes: 100_000, backend: 'file', pressure: false })
    store.set('a', bytes(60_000))
    store.set('b', bytes(60_000, 2))
    t.deepEqual(evicts.messages.map((m) => [m.store === store, m.key, m.bytes]), [[true, 'a', 60_000]])
    t.deepEqual(store.getBuffer('a'), bytes(60_000))
    t.deepEqual(pageins.messages.map((m) => [m.store === store, m.key, m.bytes]), [[true, 'a', 60_000]])
    t.deepEqual(evicts.messages.map((m) => m.key), ['a', 'b'])
    const table = arrow.tableFromArrays({ id: Int32Array.from({ length: 10_000 }, (_, i) => i), price: new Float64Array(10_000) })
    store.set('t', table)
    const columns = evicts.messages.filter((m) => m.key === 't').map((m) => m.column)
    t.true(columns.length > 0 && columns.every((c) => c === 'id' || c === 'price'), String(columns))
    store.dispose()
  } finally {
    evicts.stop()
    pageins.stop()
  }
})

test.serial('a failed eviction is published on coldpage:store:evict, also when nothing throws', (t) => {
  const evicts = listen<StoreMessage>('coldpage:store:evict')
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-obs-'))
  const store = createStore({ residentBytes: 1 << 20, backend: 'file', pressure: false })
  try {
    configure({ maxScratchBytes: 4096, scratchDir: dir })
    store.set('big', bytes(200_000))
    // A budget from the config: applied by a listener, where the failure has no caller to reach.
    configure({ residentBytes: 0 })
    const failed = evicts.messages.filter((m) => m.error !== undefined)
    t.true(failed.length >= 1, `${evicts.messages.length} messages`)
    t.is(failed[0]!.key, 'big')
    t.is((failed[0]!.error as { code?: string }).code, 'ERR_COLDPAGE_NO_SPACE')
  } finally {
    configure({ residentBytes: null, maxScratchBytes: Infinity, scratchDir: tmpdir() })
    evicts.stop()
  }
  t.deepEqual(store.getBuffer('big'), bytes(200_000)) // nothing lost
  store.dispose()
  rmSync(dir, { recursive: true, force: true })
})

test.serial('coldpage:config says configure and file changes, after they apply', (t) => {
  const configs = listen<ConfigMessage>('coldpage:config')
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-obs-'))
  try {
    configure({ verify: false })
    t.deepEqual(configs.messages.map((m) => [m.source, m.config.verify]), [['configure', false]])
    const file = path.join(dir, 'coldpage.json')
    writeFileSync(file, JSON.stringify({ verify: true }))
    const w = watchConfig(file)
    w.close()
    t.deepEqual(configs.messages.map((m) => [m.source, m.config.verify]), [
      ['configure', false],
      ['file', true],
    ])
    t.throws(() => configure({ backend: 'tape' as 'file' }))
    t.is(configs.messages.length, 2) // a refused change is not published
  } finally {
    configure({ verify: true })
    configs.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.serial('coldpage:config says env for the environment applied at load', async (t) => {
  const script = `
    const dc = require('node:diagnostics_channel')
    const seen = []
    dc.subscribe('coldpage:config', (m) => seen.push([m.source, m.config.backend, m.config.verify]))
    require('coldpage')
    console.log(JSON.stringify(seen))
  `
  const r = await node(['-e', script], { COLDPAGE_BACKEND: 'file', COLDPAGE_VERIFY: '0' })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), [['env', 'file', false]])
})

test.serial('coldpage:pressure is published when the level changes', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-obs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'memory')
  const script = `
    const fs = require('node:fs')
    const dc = require('node:diagnostics_channel')
    const seen = []
    dc.subscribe('coldpage:pressure', (m) => seen.push(m))
    const psi = (some) => 'some avg10=' + some.toFixed(2) + ' avg60=0.00 avg300=0.00 total=1\\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\\n'
    fs.writeFileSync(${JSON.stringify(file)}, psi(0))
    const { memoryPressure } = require('coldpage')
    for (const some of [0, 50, 50, 0]) {
      fs.writeFileSync(${JSON.stringify(file)}, psi(some))
      memoryPressure()
    }
    console.log(JSON.stringify(seen))
  `
  const r = await node(['-e', script], { COLDPAGE_PRESSURE_PSI: file })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), [
    { level: 'moderate', source: 'psi' },
    { level: 'none', source: 'psi' },
  ])
})

test.serial('stats() counts pageouts, bytes paged out, takes and bytes written since load', (t) => {
  const before = stats()
  const f = pageout(bytes(10_000), { backend: 'file' })
  let now = stats()
  t.is(now.pageouts - before.pageouts, 1)
  t.is(now.bytesPagedOut - before.bytesPagedOut, 10_000)
  t.is(now.bytesWritten - before.bytesWritten, 10_000)
  f.take()
  t.is(stats().takes - now.takes, 1)
  for (const backend of BACKENDS) {
    now = stats()
    pageout(bytes(5_000), { backend }).take()
    const after = stats()
    t.is(after.takes - now.takes, 1, backend)
    t.is(after.bytesWritten - now.bytesWritten, backend === 'file' ? 5_000 : 0, backend)
  }
  // Compressed: what reaches scratch is smaller than what was paged out.
  configure({ compress: 'lz4' })
  try {
    now = stats()
    pageout(Buffer.alloc(1 << 20, 7), { backend: 'file' }).dispose()
    const after = stats()
    t.is(after.bytesPagedOut - now.bytesPagedOut, 1 << 20)
    const written = after.bytesWritten - now.bytesWritten
    t.true(written > 0 && written < 1 << 16, String(written))
  } finally {
    configure({ compress: 'none' })
  }
  t.notThrows(() => JSON.stringify(stats()))
})

test.serial('util.inspect shows the state of a Handle, a TableHandle and a Store', (t) => {
  const h = pageout(Buffer.from('hello'), { backend: 'file' })
  t.is(inspect(h), "Handle { byteLength: 5, backend: 'file', disposed: false }")
  h.dispose()
  t.is(inspect(h), "Handle { byteLength: 5, backend: 'file', disposed: true }")
  const th = pageoutTable(arrow.tableFromArrays({ id: Int32Array.of(1, 2, 3) }), { backend: 'file' })
  t.regex(inspect(th, { breakLength: Infinity }), /^TableHandle \{ numRows: 3, numBatches: 1, columns: \[ 'id' \], byteLength: \d+, backend: 'file', disposed: false \}$/)
  th.dispose()
  t.regex(inspect(th), /disposed: true/)
  const store = createStore({ residentBytes: 10, pressure: false, backend: 'file' })
  store.set('k', Buffer.alloc(100))
  t.is(inspect(store, { breakLength: Infinity }), 'Store { size: 1, residentBytes: 0, coldBytes: 100, budgetBytes: 10, disposed: false }')
  store.dispose()
  t.regex(inspect(store), /disposed: true/)
  t.is(inspect({ nested: { deeper: { h } } }, { depth: 1 }), '{ nested: { deeper: [Object] } }')
  t.is(inspect([h], { depth: -1 }), '[Array]')
  // Called directly with anything (as a fuzzer does), it still answers.
  const custom = (h as unknown as Record<symbol, (...args: unknown[]) => string>)[inspect.custom]!
  t.is(custom.call(h, Symbol('x'), { __proto__: null }), "Handle { byteLength: 5, backend: 'file', disposed: true }")
  t.is(custom.call(h, -1), '[Handle]')
})

test.serial('an unknown option key is ERR_INVALID_ARG_VALUE naming it, in every options object', async (t) => {
  const table = arrow.tableFromArrays({ id: Int32Array.of(1, 2), price: Float64Array.of(1.5, 2.5) })
  const named = (fn: () => unknown, name: string) => {
    const err = t.throws(fn, { code: 'ERR_INVALID_ARG_VALUE', instanceOf: TypeError })
    t.true(err!.message.includes(`\`${name}\``), err!.message)
  }
  named(() => pageout(Buffer.alloc(1), { backnd: 'file' } as never), 'opts.backnd')
  await t.throwsAsync(() => pageoutAsync(Buffer.alloc(1), { backnd: 'file' } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /opts\.backnd/ })
  const h = pageout(Buffer.alloc(8), { backend: 'file' })
  await t.throwsAsync(() => h.readAtAsync(0, 1, { signl: undefined } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /opts\.signl/ })
  await t.throwsAsync(() => h.readAtManyAsync([[0, 1]], { sigal: 1 } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /opts\.sigal/ })
  h.dispose()
  const th = pageoutTable(table)
  named(() => th.read({ column: ['price'] } as never), 'opts.column')
  await t.throwsAsync(() => th.readAsync({ column: ['price'] } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /opts\.column/ })
  th.dispose()
  named(() => pageoutTable(table, { backnd: 'file' } as never), 'opts.backnd')
  named(() => createStore({ residentBytes: 10, polcy: 'lru' } as never), 'opts.polcy')
  const store = createStore({ residentBytes: 1 << 20, pressure: false })
  store.set('t', table)
  named(() => store.getTable('t', { column: ['price'] } as never), 'opts.column')
  t.is(store.getTable('t', { columns: ['price'] })!.schema.fields.length, 1)
  store.dispose()
  // Known keys with undefined values stay fine, as does no options object.
  t.notThrows(() => pageout(Buffer.alloc(1), { backend: undefined } as object).dispose())
})

test.serial("backend 'swap' where swap pages out nothing warns once per process (COLDPAGE_SWAP_INEFFECTIVE)", async (t) => {
  if (process.platform !== 'linux') {
    t.pass('the swap backend is Linux-only here')
    return
  }
  // A worker pages out to swap first, then the main thread twice: one warning in all
  // (Node prints each as "(node:pid) [code] Warning: ...", from either thread).
  const script = `
    const { Worker } = require('node:worker_threads')
    const w = new Worker("require('coldpage').pageout(Buffer.alloc(10), { backend: 'swap' }).dispose()", { eval: true })
    w.on('exit', () => {
      const { pageout } = require('coldpage')
      pageout(Buffer.alloc(10), { backend: 'swap' }).dispose()
      pageout(Buffer.alloc(10), { backend: 'swap' }).dispose()
    })
  `
  const r = await node(['-e', script])
  t.is(r.code, 0, r.stderr)
  const warnings = r.stderr.split('[COLDPAGE_SWAP_INEFFECTIVE]').length - 1
  if (doctor().swapPagesOut) {
    t.is(warnings, 0, r.stderr)
  } else {
    t.is(warnings, 1, r.stderr)
    t.regex(r.stderr, /backend 'swap' pages out nothing: there is no active swap/)
  }
})
