// `encrypt` and `compress`: every read form and coldpage/arrow round-trip with each
// option, no plaintext reaches the scratch file, tampering is ERR_COLDPAGE_CORRUPT,
// the options come from configure, the environment and config files, and they apply
// to new file pageouts only (never to swap handles).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import * as A from 'apache-arrow'
import test from 'ava'
import { type CompressName, type Handle, configure, getConfig, pageout, pageoutAsync, stats, watchConfig } from 'coldpage'
import { pageoutTable, pageoutTableAsync } from 'coldpage/arrow'

import { arenaFdPath, flipByte } from './fixtures/reliability.js'
import { bytes, node, throwsCode } from './helpers.js'

const BLOCK = 4096
const initial = getConfig()
const scratch = mkdtempSync(path.join(tmpdir(), 'coldpage-crypt-'))
test.before(() => configure({ scratchDir: scratch }))
test.after.always(() => {
  configure(initial)
  rmSync(scratch, { recursive: true, force: true })
})

const OPTIONS: { encrypt: boolean; compress: CompressName }[] = [
  { encrypt: true, compress: 'none' },
  { encrypt: false, compress: 'lz4' },
  { encrypt: true, compress: 'lz4' },
]

/** Float column bytes, text and random bytes of length `n`. */
function inputs(n: number): [string, Buffer][] {
  const floats = Buffer.from(Float64Array.from({ length: Math.ceil(n / 8) }, (_, i) => 100 + (i % 977) * 0.25).buffer)
  const words = ['price ', 'volume ', 'close ', 'the ', 'market ']
  let text = ''
  for (let i = 0; text.length < n; i++) text += words[(i * 7919) % words.length]
  return [
    ['floats', floats.subarray(0, n)],
    ['text', Buffer.from(text).subarray(0, n)],
    ['random', bytes(n, n)],
  ]
}

/** Byte equality without ava's deep diff, which is slow on large Buffers. */
function same(t: import('ava').ExecutionContext, got: Uint8Array, want: Uint8Array, what: string) {
  t.true(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want), what)
}

async function checkEveryReadForm(t: import('ava').ExecutionContext, h: Handle, data: Buffer, what: string) {
  const n = data.length
  const cuts = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, n >> 1, n - 1, n].filter((c) => c >= 0 && c <= n)
  for (const a of cuts) {
    for (const b of cuts) {
      if (a > b) continue
      const want = data.subarray(a, b)
      same(t, h.readAt(a, b - a), want, `readAt [${a}, ${b}) ${what}`)
      const into = Buffer.alloc(b - a, 0xee)
      h.readInto(a, into)
      same(t, into, want, `readInto ${what}`)
      same(t, Buffer.from(h.view(a, b - a)), want, `view ${what}`)
    }
  }
  same(t, await h.readAtAsync(1, n - 1), data.subarray(1), `readAtAsync ${what}`)
  const ranges: [number, number][] = cuts.filter((c) => c < n).map((c) => [c, Math.min(n - c, 3 * BLOCK)])
  const want = ranges.map(([o, l]) => data.subarray(o, o + l))
  const many = h.readAtMany(ranges)
  const manyAsync = await h.readAtManyAsync(ranges)
  t.is(many.length, want.length)
  want.forEach((w, i) => {
    same(t, many[i] ?? Buffer.alloc(0), w, `readAtMany ${i} ${what}`)
    same(t, manyAsync[i] ?? Buffer.alloc(0), w, `readAtManyAsync ${i} ${what}`)
  })
}

for (const opts of OPTIONS) {
  const name = `encrypt: ${opts.encrypt}, compress: '${opts.compress}'`
  test.serial(`every read form round-trips, ${name}`, async (t) => {
    configure(opts)
    try {
      for (const n of [1, BLOCK + 1, 10 * BLOCK + 300, (300 << 10) + 13]) {
        for (const [kind, data] of inputs(n)) {
          const what = `${kind} ${n}`
          const h = pageout([data.subarray(0, n >> 2), data.subarray(n >> 2)], { backend: 'file' })
          await checkEveryReadForm(t, h, data, what)
          same(t, h.take(), data, `take ${what}`)
          const a = await pageoutAsync(data, { backend: 'file' })
          same(t, await a.takeAsync(), data, `pageoutAsync + takeAsync ${what}`)
        }
      }
      const v = pageout(bytes(3 * BLOCK), { backend: 'file' })
      const view = v.view(0, BLOCK)
      view.fill(0)
      same(t, v.readAt(0, BLOCK), bytes(3 * BLOCK).subarray(0, BLOCK), 'a view is a decrypted copy: writes stay there')
      v.dispose()
      t.is(stats().checksumFailures, 0)
    } finally {
      configure({ encrypt: false, compress: 'none' })
    }
  })

  test.serial(`coldpage/arrow round-trips, ${name}`, async (t) => {
    configure(opts)
    try {
      const rows = 5000
      const table = new A.Table({
        price: A.makeVector(Float64Array.from({ length: rows }, (_, i) => 100 + i * 0.5)),
        id: A.makeVector(Int32Array.from({ length: rows }, (_, i) => i)),
        sym: A.vectorFromArray(Array.from({ length: rows }, (_, i) => `s${i % 37}`), new A.Utf8()),
        tag: A.vectorFromArray(
          Array.from({ length: rows }, (_, i) => ['a', 'b', 'c'][i % 3]),
          new A.Dictionary(new A.Utf8(), new A.Int32()),
        ),
      })
      const th = pageoutTable(table, { backend: 'file' })
      t.deepEqual(th.read({ columns: ['price'] }).getChild('price')?.toArray(), table.getChild('price')?.toArray())
      t.deepEqual(th.read().toArray().map(String), table.toArray().map(String))
      const ta = await pageoutTableAsync(table, { backend: 'file' })
      const got = await ta.readAsync({ columns: ['sym', 'tag'] })
      t.deepEqual(got.toArray().map(String), table.select(['sym', 'tag']).toArray().map(String))
      t.deepEqual(ta.take().toArray().map(String), table.toArray().map(String))
      th.dispose()
    } finally {
      configure({ encrypt: false, compress: 'none' })
    }
  })
}

test.serial('no scratch byte holds the plaintext; the control without encryption does', (t) => {
  const marker = Buffer.from('coldpage-js-marker!')
  const data = Buffer.alloc(40 * BLOCK + 100)
  for (let i = 0; i < data.length; i += marker.length) marker.copy(data, i)
  const scan = (encrypt: boolean, compress: CompressName) => {
    configure({ encrypt, compress })
    const h = pageout(data, { backend: 'file' })
    const disk = readFileSync(arenaFdPath(scratch))
    const found = disk.includes(marker)
    t.deepEqual(h.take(), data)
    return found
  }
  if (process.platform !== 'linux') {
    t.pass('the arena is read through /proc/self/fd: Linux only')
    return
  }
  try {
    t.true(scan(false, 'none'), 'the scan finds plaintext where it is')
    t.false(scan(true, 'none'), 'encrypt')
    t.false(scan(true, 'lz4'), 'encrypt + lz4')
  } finally {
    configure({ encrypt: false, compress: 'none' })
  }
})

test.serial('a flipped scratch byte is ERR_COLDPAGE_CORRUPT for every read form', async (t) => {
  if (process.platform !== 'linux') {
    t.pass('the arena is written through /proc/self/fd: Linux only')
    return
  }
  for (const opts of OPTIONS) {
    configure(opts)
    // Nothing else is live: the handle's extent starts at 0 in a fresh arena.
    const h = pageout(bytes(6 * BLOCK, 3), { backend: 'file' })
    flipByte(arenaFdPath(scratch), 2 * BLOCK + 5)
    const what = JSON.stringify(opts)
    throwsCode(t, () => h.readAt(2 * BLOCK, 10), 'ERR_COLDPAGE_CORRUPT')
    throwsCode(t, () => h.readInto(0, Buffer.alloc(6 * BLOCK)), 'ERR_COLDPAGE_CORRUPT')
    throwsCode(t, () => h.view(2 * BLOCK, 1), 'ERR_COLDPAGE_CORRUPT')
    throwsCode(t, () => h.readAtMany([[0, 1], [2 * BLOCK, 1]]), 'ERR_COLDPAGE_CORRUPT')
    await t.throwsAsync(h.readAtAsync(2 * BLOCK, 1), { code: 'ERR_COLDPAGE_CORRUPT' }, what)
    throwsCode(t, () => h.take(), 'ERR_COLDPAGE_CORRUPT')
    t.deepEqual(h.readAt(0, BLOCK), bytes(6 * BLOCK, 3).subarray(0, BLOCK), `other blocks read, ${what}`)
    h.dispose()
  }
  configure({ encrypt: false, compress: 'none' })
})

test.serial('configure and getConfig: encrypt and compress, validated, for new file pageouts only', (t) => {
  const before = getConfig()
  throwsCode(t, () => configure({ encrypt: 1 as unknown as boolean }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => configure({ compress: 'zstd' as CompressName }), 'ERR_INVALID_ARG_VALUE', TypeError)
  throwsCode(t, () => configure({ compress: 4 as unknown as CompressName }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => configure({ encrypt: true, compress: 'gzip' as CompressName }), 'ERR_INVALID_ARG_VALUE')
  t.deepEqual(getConfig(), before, 'nothing applied')
  const plain = pageout(bytes(3 * BLOCK), { backend: 'file' })
  t.like(configure({ encrypt: true, compress: 'lz4' }), { encrypt: true, compress: 'lz4' })
  t.like(getConfig(), { encrypt: true, compress: 'lz4', verify: before.verify })
  const sealed = pageout(bytes(3 * BLOCK), { backend: 'file' })
  t.like(configure({ encrypt: false }), { encrypt: false, compress: 'lz4' })
  configure({ compress: 'none' })
  t.deepEqual(plain.readAt(0, 3 * BLOCK), bytes(3 * BLOCK), 'a live handle keeps how it was stored')
  t.deepEqual(sealed.readAt(0, 3 * BLOCK), bytes(3 * BLOCK), 'and so does an encrypted one after encrypt is off')
  plain.dispose()
  sealed.dispose()
  if (process.platform === 'linux') {
    configure({ encrypt: true, compress: 'lz4' })
    const swap = pageout(bytes(3 * BLOCK), { backend: 'swap' })
    t.deepEqual(swap.take(), bytes(3 * BLOCK), 'swap handles are unaffected')
    configure({ encrypt: false, compress: 'none' })
  }
})

test.serial('a watched config file sets encrypt and compress; a bad value is reported', async (t) => {
  const file = path.join(scratch, 'crypt-config.json')
  writeFileSync(file, JSON.stringify({ encrypt: true, compress: 'lz4' }))
  const errors: Error[] = []
  const w = watchConfig(file, (e) => errors.push(e))
  try {
    t.like(getConfig(), { encrypt: true, compress: 'lz4' })
    writeFileSync(file, JSON.stringify({ encrypt: true, compress: 'brotli' }))
    const deadline = Date.now() + 10_000
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    t.is((errors[0] as { code?: string } | undefined)?.code, 'ERR_COLDPAGE_CONFIG')
    t.like(getConfig(), { encrypt: true, compress: 'lz4' }, 'the previous config stays')
  } finally {
    w.close()
    configure({ encrypt: false, compress: 'none' })
  }
})

test('doctor reports the AEAD and, once the first encrypted pageout made it, whether the key is locked', async (t) => {
  const script = `
    const c = require('coldpage')
    const before = c.doctor().encryption
    c.configure({ encrypt: true })
    c.pageout(Buffer.alloc(10), { backend: 'file' }).dispose()
    console.log(JSON.stringify([before, c.doctor().encryption]))`
  const r = await node(['-e', script], { COLDPAGE_SCRATCH_DIR: scratch })
  t.is(r.code, 0, r.stderr)
  const [before, after] = JSON.parse(r.stdout) as { aead: string; keyLocked: boolean | null; keyLockError: string | null }[]
  t.regex(before?.aead ?? '', /^(AES-256-GCM|ChaCha20-Poly1305) \((ring|RustCrypto)\)$/)
  t.is(before?.keyLocked, null)
  t.is(after?.aead, before?.aead)
  t.is(typeof after?.keyLocked, 'boolean')
  t.is(after?.keyLocked === false, typeof after?.keyLockError === 'string')
})

const PRINT = "const c = require('coldpage'); console.log(JSON.stringify(c.getConfig()))"

test('COLDPAGE_ENCRYPT and COLDPAGE_COMPRESS are read at load; invalid values throw naming the variable', async (t) => {
  const r = await node(['-e', PRINT], { COLDPAGE_ENCRYPT: '1', COLDPAGE_COMPRESS: 'lz4' })
  t.is(r.code, 0, r.stderr)
  t.like(JSON.parse(r.stdout), { encrypt: true, compress: 'lz4' })
  const off = await node(['-e', PRINT], { COLDPAGE_ENCRYPT: '0', COLDPAGE_COMPRESS: 'none' })
  t.like(JSON.parse(off.stdout), { encrypt: false, compress: 'none' })
  for (const [name, value] of [
    ['COLDPAGE_ENCRYPT', 'yes'],
    ['COLDPAGE_COMPRESS', 'zstd'],
  ] as const) {
    const bad = await node(['-e', PRINT], { [name]: value })
    t.not(bad.code, 0)
    t.true(bad.stderr.includes(name) && bad.stderr.includes('ERR_COLDPAGE_CONFIG'), bad.stderr)
  }
})
