// Config sources under bad input: every COLDPAGE_* variable with invalid values
// (the package refuses to load, naming the variable), and config files with bad
// JSON, wrong types, unknown keys and huge numbers, given at load
// (COLDPAGE_CONFIG), to watchConfig, and as a change to a watched file: each is
// rejected with ERR_COLDPAGE_CONFIG and a message naming the field, and the
// previous config stays.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import { configure, getConfig, watchConfig } from 'coldpage'

import { codeOf, pool, runNode } from './fixtures/reliability.js'
import { ROOT } from './helpers.js'

const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-config-bad-'))
const initial = getConfig()
test.after.always(() => {
  configure(initial)
  rmSync(dir, { recursive: true, force: true })
})

const aFile = path.join(dir, 'a-file')
writeFileSync(aFile, 'x')
const aLink = path.join(dir, 'a-link')
symlinkSync(dir, aLink)

const ENV_CASES: Array<[name: string, value: string]> = [
  ['COLDPAGE_BACKEND', 'tape'],
  ['COLDPAGE_BACKEND', 'FILE'],
  ['COLDPAGE_BACKEND', ' file'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '0'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '-1'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '1.5'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '0x10'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '1e400'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '99999999999999999999'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '9007199254740993'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', 'infinity'],
  ['COLDPAGE_MAX_SCRATCH_BYTES', '12 '],
  ['COLDPAGE_MAX_SCRATCH_BYTES', 'NaN'],
  ['COLDPAGE_VERIFY', 'true'],
  ['COLDPAGE_VERIFY', '2'],
  ['COLDPAGE_VERIFY', 'off'],
  ['COLDPAGE_NO_EXTERNAL_BUFFERS', 'yes'],
  ['COLDPAGE_SCRATCH_DIR', aFile],
  ['COLDPAGE_SCRATCH_DIR', aLink],
  ['COLDPAGE_CONFIG', path.join(dir, 'missing.json')],
  ['COLDPAGE_CONFIG', dir],
]

test('every invalid COLDPAGE_* value fails the load with ERR_COLDPAGE_CONFIG naming the variable', async (t) => {
  const results = await pool(
    2,
    ENV_CASES.map(([name, value]) => () => runNode(['-e', "require('coldpage')"], { cwd: ROOT, env: { COLDPAGE_CONFIG: '', [name]: value } })),
  )
  results.forEach((r, i) => {
    const [name, value] = ENV_CASES[i]!
    t.not(r.code, 0, `${name}=${value} was accepted`)
    t.is(r.signal, null)
    t.true(r.stderr.includes('ERR_COLDPAGE_CONFIG') && r.stderr.includes(name), `${name}=${value}: ${r.stderr.slice(0, 400)}`)
  })
  t.log(`${ENV_CASES.length} invalid environment values refused at load`)
})

/** Bad config file contents and the field their error message must name. */
const FILE_CASES: Array<[content: string, names: RegExp]> = [
  ['{ "backend": "file", ', /not valid JSON/],
  ['', /not valid JSON/],
  ['{"backend": "file"} trailing', /not valid JSON/],
  ['[]', /an object/],
  ['null', /an object/],
  ['"file"', /an object/],
  ['{"backend": "tape"}', /`backend`.*tape/],
  ['{"backend": 1}', /`backend`/],
  ['{"backend": null}', /`backend`/],
  ['{"verify": "true"}', /`verify`/],
  ['{"verify": 1}', /`verify`/],
  ['{"scratchDir": 42}', /`scratchDir`/],
  ['{"scratchDir": ""}', /`scratchDir`/],
  ['{"scratchDir": ["/tmp"]}', /`scratchDir`/],
  ['{"maxScratchBytes": "1024"}', /`maxScratchBytes`/],
  ['{"maxScratchBytes": 0}', /`maxScratchBytes`/],
  ['{"maxScratchBytes": -4096}', /`maxScratchBytes`/],
  ['{"maxScratchBytes": 1.5}', /`maxScratchBytes`/],
  ['{"maxScratchBytes": 9007199254740993}', /`maxScratchBytes`/],
  ['{"maxScratchBytes": 1e400}', /`maxScratchBytes`.*null/],
  ['{"maxScratchBytes": -1e400}', /`maxScratchBytes`/],
  ['{"maxScratchBytes": {}}', /`maxScratchBytes`/],
  ['{"backend": "file", "colour": "blue"}', /`colour`.*not a config field/],
  ['{"Backend": "file"}', /`Backend`/],
  ['{"__proto__": {"backend": "file"}}', /`__proto__`/],
  [`{"scratchDir": ${JSON.stringify(aFile)}}`, /not a directory/],
  [`{"scratchDir": ${JSON.stringify(aLink)}}`, /symlink/],
]

test.serial('watchConfig refuses every bad file up front, naming the field; the config stays', (t) => {
  configure({ backend: 'auto', maxScratchBytes: 1 << 30, verify: true })
  const before = getConfig()
  FILE_CASES.forEach(([content, names], i) => {
    const file = path.join(dir, `bad-${i}.json`)
    writeFileSync(file, content)
    const err = t.throws(() => watchConfig(file, () => {}).close(), { any: true }) as Error | undefined
    t.is(codeOf(err), 'ERR_COLDPAGE_CONFIG', `${content}: ${String(err)}`)
    t.regex(err?.message ?? '', names, content)
    t.true(err?.message.includes(file), 'the message names the file')
    t.deepEqual(getConfig(), before, `${content} changed the config`)
  })
  configure(initial)
})

test.serial('a watched file changed to bad content is reported through onError; the config stays', async (t) => {
  const file = path.join(dir, 'watched.json')
  writeFileSync(file, JSON.stringify({ backend: 'file', maxScratchBytes: 1 << 20, verify: true }))
  const errors: Error[] = []
  const w = watchConfig(file, (err) => errors.push(err))
  try {
    const before = getConfig()
    t.is(before.maxScratchBytes, 1 << 20)
    for (const [content, names] of FILE_CASES.filter((_, i) => i % 3 === 0)) {
      const seen = errors.length
      writeFileSync(file, content)
      const end = Date.now() + 5_000
      while (errors.length === seen && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
      const err = errors[seen]
      t.is(codeOf(err), 'ERR_COLDPAGE_CONFIG', `${content}: no error reported`)
      t.regex(err?.message ?? '', names, content)
      t.deepEqual(getConfig(), before, `${content} changed the config`)
    }
    // A good change still applies afterwards.
    writeFileSync(file, JSON.stringify({ backend: 'auto', maxScratchBytes: null }))
    const end = Date.now() + 5_000
    while (getConfig().maxScratchBytes !== Infinity && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    t.is(getConfig().maxScratchBytes, Infinity)
  } finally {
    w.close()
    configure(initial)
  }
})

test('a bad COLDPAGE_CONFIG file fails the load, naming the variable and the field', async (t) => {
  const cases = FILE_CASES.filter((_, i) => i % 2 === 0)
  const results = await pool(
    2,
    cases.map(([content], i) => () => {
      const file = path.join(dir, `env-bad-${i}.json`)
      writeFileSync(file, content)
      return runNode(['-e', "require('coldpage')"], { cwd: ROOT, env: { COLDPAGE_CONFIG: file } })
    }),
  )
  results.forEach((r, i) => {
    const [content, names] = cases[i]!
    t.not(r.code, 0, `${content} was accepted`)
    t.true(r.stderr.includes('COLDPAGE_CONFIG') && r.stderr.includes('ERR_COLDPAGE_CONFIG'), r.stderr.slice(0, 400))
    t.regex(r.stderr, names, content)
  })
})

// ---- Issue 22 items 6, 8, 10 and issue 26's watched-file items ----

/** Polls `done` every 20 ms for at most `ms` (a bounded wait for an event, not a timing assertion). */
async function eventually(done: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return done()
}

test.serial('a field removed from a watched file returns to its value before the file set it', async (t) => {
  const file = path.join(dir, 'whole.json')
  configure({ encrypt: false, verify: true })
  writeFileSync(file, JSON.stringify({ encrypt: true, verify: false }))
  const errors: Error[] = []
  const w = watchConfig(file, (err) => errors.push(err))
  try {
    t.like(getConfig(), { encrypt: true, verify: false })
    writeFileSync(file, JSON.stringify({ verify: false }))
    t.true(await eventually(() => !getConfig().encrypt), 'encrypt returned to false')
    t.false(getConfig().verify, 'a field still named keeps its value')
    configure({ maxScratchBytes: 1 << 30 })
    writeFileSync(file, JSON.stringify({ verify: false, maxScratchBytes: 4096 * 10 }))
    t.true(await eventually(() => getConfig().maxScratchBytes === 40960))
    writeFileSync(file, '{}')
    t.true(await eventually(() => getConfig().verify && getConfig().maxScratchBytes === 1 << 30), 'each field went back')
    t.deepEqual(errors, [])
  } finally {
    w.close()
    configure({ maxScratchBytes: Infinity })
  }
})

test.serial('watchConfig returns a Disposable', (t) => {
  const file = path.join(dir, 'disposable.json')
  writeFileSync(file, '{}')
  const w = watchConfig(file)
  t.is(typeof w[Symbol.dispose], 'function')
  w[Symbol.dispose]()
  w.close() // idempotent after dispose
  t.pass()
})

test.serial('a missing scratchDir is ERR_COLDPAGE_CONFIG and is not created', (t) => {
  const missing = path.join(dir, 'nonexistent', 'x')
  const before = getConfig()
  const err = t.throws(() => configure({ scratchDir: missing })) as Error & { code?: string }
  t.is(err.code, 'ERR_COLDPAGE_CONFIG')
  t.false(existsSync(path.join(dir, 'nonexistent')), 'nothing was created')
  t.deepEqual(getConfig(), before)
})

test('COLDPAGE_CONFIG naming a FIFO or a device is ERR_COLDPAGE_CONFIG at load, never a hang', async (t) => {
  const fifo = path.join(dir, 'config.fifo')
  if (spawnSync('mkfifo', [fifo]).status !== 0) return t.log('skipped FIFO: mkfifo failed')
  for (const source of [fifo, '/dev/zero']) {
    const r = await runNode(['-e', "require('coldpage')"], { cwd: ROOT, env: { COLDPAGE_CONFIG: source }, timeoutMs: 20_000 })
    t.false(r.timedOut, `${source}: hung`)
    t.is(r.signal, null, `${source}: killed by a signal`)
    t.not(r.code, 0)
    t.true(r.stderr.includes('ERR_COLDPAGE_CONFIG') && r.stderr.includes('not a regular file'), r.stderr.slice(0, 400))
  }
  const err = t.throws(() => watchConfig(fifo)) as Error & { code?: string }
  t.is(err.code, 'ERR_COLDPAGE_CONFIG')
})

test('the COLDPAGE_CONFIG watch survives the Worker that loaded coldpage first', async (t) => {
  const file = path.join(dir, 'worker-first.json')
  writeFileSync(file, JSON.stringify({ verify: true }))
  // `early`: the main thread loads coldpage while the worker lives (the watch moves to
  // it when the worker exits); else after the worker exited (the next loader takes it).
  const script = (early: boolean) => `
    const { Worker } = require('node:worker_threads')
    const { writeFileSync } = require('node:fs')
    const w = new Worker("require('coldpage'); require('node:worker_threads').parentPort.postMessage('loaded')", { eval: true })
    w.once('message', () => {
      const coldpage = ${early} ? require('coldpage') : undefined
      w.once('exit', async () => {
        const { getConfig } = coldpage ?? require('coldpage')
        writeFileSync(${JSON.stringify(file)}, JSON.stringify({ verify: false }))
        const end = Date.now() + 15000
        while (getConfig().verify && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
        console.log(getConfig().verify ? 'NOT APPLIED' : 'APPLIED')
      })
      w.terminate()
    })`
  for (const early of [true, false]) {
    writeFileSync(file, JSON.stringify({ verify: true }))
    const r = await runNode(['-e', script(early)], { cwd: ROOT, env: { COLDPAGE_CONFIG: file }, timeoutMs: 40_000 })
    t.is(r.stdout.trim(), 'APPLIED', `early=${early}: ${r.stderr.slice(0, 400)}`)
  }
})
