// Config from configure(), from the environment (child processes: it is read at
// load) and from a watched JSON file; switching the selector with live handles.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import { ColdpageError, configure, getConfig, pageout, stats, watchConfig } from 'coldpage'

import { BACKENDS, bytes, node, throwsCode } from './helpers.js'

const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-config-test-'))
const initial = getConfig()
test.after.always(() => {
  configure(initial)
  rmSync(dir, { recursive: true, force: true })
})

test.serial('defaults: auto, a disk-backed scratch dir, no quota, verify on, no encryption or compression', (t) => {
  t.deepEqual(Object.keys(initial).sort(), ['backend', 'compress', 'encrypt', 'maxScratchBytes', 'residentBytes', 'scratchDir', 'verify'])
  t.false(initial.encrypt)
  t.is(initial.compress, 'none')
  t.is(initial.backend, 'auto')
  t.is(initial.residentBytes, null, "no budget for stores: each keeps its own")
  t.is(initial.maxScratchBytes, Infinity)
  t.true(initial.verify)
  t.true(path.isAbsolute(initial.scratchDir))
})

test.serial('configure validates everything before applying anything', (t) => {
  const before = getConfig()
  throwsCode(t, () => configure({ backend: 'file', maxScratchBytes: -1 }), 'ERR_OUT_OF_RANGE', RangeError)
  throwsCode(t, () => configure({ backend: 'tape' as 'file' }), 'ERR_INVALID_ARG_VALUE', TypeError)
  throwsCode(t, () => configure({ verify: 'yes' as unknown as boolean }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => configure({ maxScratchBytes: 1.5 }), 'ERR_OUT_OF_RANGE', RangeError)
  throwsCode(t, () => configure({ residentBytes: -1 }), 'ERR_OUT_OF_RANGE', RangeError)
  throwsCode(t, () => configure({ residentBytes: '1' as never }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => configure({ scratchDir: 42 as unknown as string }), 'ERR_INVALID_ARG_TYPE', TypeError)
  throwsCode(t, () => configure({ colour: 'blue' } as never), 'ERR_INVALID_ARG_VALUE', TypeError)
  throwsCode(t, () => configure(null as never), 'ERR_INVALID_ARG_TYPE', TypeError)
  const file = path.join(dir, 'a-file')
  writeFileSync(file, 'x')
  throwsCode(t, () => configure({ backend: 'file', scratchDir: file }), 'ERR_COLDPAGE_CONFIG', ColdpageError)
  const link = path.join(dir, 'a-link')
  symlinkSync(dir, link)
  throwsCode(t, () => configure({ backend: 'file', scratchDir: link }), 'ERR_COLDPAGE_CONFIG', ColdpageError)
  t.deepEqual(getConfig(), before)
})

test.serial('configure applies and returns the config; scratchDir moves new pageouts only', (t) => {
  const scratch = path.join(dir, 'scratch')
  mkdirSync(scratch, { mode: 0o700 })
  const old = pageout(bytes(5_000), { backend: 'file' })
  const c = configure({ backend: 'file', scratchDir: scratch, maxScratchBytes: 1 << 30, verify: false, residentBytes: 4096 })
  t.deepEqual(c, { ...initial, backend: 'file', scratchDir: scratch, maxScratchBytes: 1 << 30, verify: false, residentBytes: 4096 })
  t.deepEqual(getConfig(), c)
  t.is(configure({ residentBytes: null }).residentBytes, null)
  using moved = pageout(bytes(5_000, 2))
  t.is(moved.backend, 'file')
  t.deepEqual(moved.readAt(0, 5_000), bytes(5_000, 2))
  t.deepEqual(old.readAt(0, 5_000), bytes(5_000))
  old.dispose()
  t.is(configure({ maxScratchBytes: Infinity }).maxScratchBytes, Infinity)
  configure(initial)
})

test.serial('switching the backend never disturbs live handles', (t) => {
  const handles = BACKENDS.map((backend, i) => {
    configure({ backend })
    const h = pageout(bytes(50_000, i + 1))
    t.is(h.backend, backend)
    return h
  })
  for (const backend of [...BACKENDS, 'auto' as const]) {
    configure({ backend })
    handles.forEach((h, i) => t.deepEqual(h.readAt(0, 50_000), bytes(50_000, i + 1)))
  }
  for (const h of handles) h.dispose()
  configure(initial)
})

test.serial('the file quota gives ERR_COLDPAGE_NO_SPACE and the pager keeps working', (t) => {
  configure({ maxScratchBytes: 64 * 1024 })
  const data = bytes(200_000)
  const copy = Buffer.from(data)
  throwsCode(t, () => pageout(data, { backend: 'file' }), 'ERR_COLDPAGE_NO_SPACE', ColdpageError)
  t.deepEqual(data, copy)
  using small = pageout(bytes(10_000), { backend: 'file' })
  t.deepEqual(small.readAt(0, 10_000), bytes(10_000))
  configure({ maxScratchBytes: Infinity })
  using big = pageout(data, { backend: 'file' })
  t.is(big.byteLength, 200_000)
  t.true(stats().errors >= 1)
})

const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return cond()
}

test.serial('watchConfig applies the file now and on every change; a bad change is rejected', async (t) => {
  const file = path.join(dir, 'coldpage.json')
  writeFileSync(file, JSON.stringify({ backend: 'file', maxScratchBytes: null }))
  const errors: Error[] = []
  const w = watchConfig(file, (err) => errors.push(err))
  try {
    t.is(getConfig().backend, 'file')
    writeFileSync(file, JSON.stringify({ backend: 'auto', verify: false }))
    t.true(await until(() => getConfig().backend === 'auto' && !getConfig().verify), 'change applied')
    writeFileSync(file, '{ not json')
    t.true(await until(() => errors.length > 0), 'invalid JSON reported')
    t.is((errors[0] as ColdpageError).code, 'ERR_COLDPAGE_CONFIG')
    t.is(getConfig().backend, 'auto')
    writeFileSync(file, JSON.stringify({ backend: 'floppy' }))
    t.true(await until(() => errors.length > 1), 'invalid value reported')
    t.regex(errors[1]!.message, /floppy/)
    t.is(getConfig().backend, 'auto')
    // Replaced by rename, as editors do: still watched.
    writeFileSync(`${file}.new`, JSON.stringify({ backend: 'file', verify: true }))
    const { renameSync } = await import('node:fs')
    renameSync(`${file}.new`, file)
    t.true(await until(() => getConfig().backend === 'file' && getConfig().verify), 'rename applied')
  } finally {
    w.close()
    w.close()
  }
  writeFileSync(file, JSON.stringify({ backend: 'auto' }))
  await new Promise((r) => setTimeout(r, 200))
  t.is(getConfig().backend, 'file', 'closed watchers apply nothing')
  configure(initial)
  throwsCode(t, () => watchConfig(path.join(dir, 'missing.json')), 'ERR_COLDPAGE_CONFIG', ColdpageError)
  throwsCode(t, () => watchConfig(42 as unknown as string), 'ERR_INVALID_ARG_TYPE', TypeError)
})

const PRINT = "const c = require('coldpage'); console.log(JSON.stringify(c.getConfig()))"

test('config from the environment, read once at load', async (t) => {
  const scratch = path.join(dir, 'env-scratch')
  mkdirSync(scratch, { mode: 0o700 }) // a scratch dir must exist (it is never created)
  const r = await node(['-e', PRINT], {
    COLDPAGE_BACKEND: 'file',
    COLDPAGE_SCRATCH_DIR: scratch,
    COLDPAGE_MAX_SCRATCH_BYTES: '1048576',
    COLDPAGE_VERIFY: '0',
    COLDPAGE_RESIDENT_BYTES: '65536',
  })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    backend: 'file',
    scratchDir: scratch,
    maxScratchBytes: 1048576,
    verify: false,
    encrypt: false,
    compress: 'none',
    residentBytes: 65536,
  })
})

test('an invalid environment variable throws at load, naming the variable', async (t) => {
  for (const [name, value] of [
    ['COLDPAGE_BACKEND', 'tape'],
    ['COLDPAGE_MAX_SCRATCH_BYTES', '-5'],
    ['COLDPAGE_MAX_SCRATCH_BYTES', '1e3'],
    ['COLDPAGE_VERIFY', 'yes'],
    ['COLDPAGE_RESIDENT_BYTES', '-1'],
    ['COLDPAGE_ENCRYPT', 'true'],
    ['COLDPAGE_COMPRESS', 'zstd'],
    ['COLDPAGE_NO_EXTERNAL_BUFFERS', 'true'],
    ['COLDPAGE_SCRATCH_DIR', path.join(dir, 'a-file')],
    ['COLDPAGE_CONFIG', path.join(dir, 'nope.json')],
  ] as const) {
    writeFileSync(path.join(dir, 'a-file'), 'x')
    const r = await node(['-e', PRINT], { [name]: value })
    t.not(r.code, 0, `${name}=${value} loads`)
    t.true(r.stderr.includes(name), `${name}=${value}: ${r.stderr}`)
    t.true(r.stderr.includes('ERR_COLDPAGE_CONFIG'), r.stderr)
  }
  const esm = await node(['--input-type=module', '-e', "import 'coldpage'"], { COLDPAGE_BACKEND: 'tape' })
  t.true(esm.stderr.includes('COLDPAGE_BACKEND'), esm.stderr)
})

test('COLDPAGE_CONFIG is applied at load and watched', async (t) => {
  const file = path.join(dir, 'env-config.json')
  writeFileSync(file, JSON.stringify({ backend: 'file' }))
  const script = `
    const fs = require('node:fs')
    const c = require('coldpage')
    const seen = [c.getConfig().backend]
    fs.writeFileSync(${JSON.stringify(file)}, JSON.stringify({ backend: 'auto' }))
    const t0 = Date.now()
    const poll = setInterval(() => {
      if (c.getConfig().backend === 'auto' || Date.now() - t0 > 5000) {
        clearInterval(poll)
        seen.push(c.getConfig().backend)
        console.log(JSON.stringify(seen))
      }
    }, 20)`
  const r = await node(['-e', script], { COLDPAGE_CONFIG: file, COLDPAGE_BACKEND: 'swap' })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), ['file', 'auto'])
})
