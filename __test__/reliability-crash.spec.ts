// Crash: child processes (the built package, fixtures/crash-child.mjs) killed with
// SIGKILL at random points of pageout, reads and take. Afterwards no scratch bytes
// remain (no file below the scratch dir, and, on a tmpfs mounted for the test when
// root, every byte of it free again: the arena is an O_TMPFILE that dies with its
// process) and a new process starts clean in the same scratch dir.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { arenaDir, below, filesBelow, mountTmpfs, pool, prng, runNode, unmount } from './fixtures/reliability.js'

const KILLS = Number(process.env.COLDPAGE_CRASH_KILLS ?? 100)
const CHILD = path.join(__dirname, 'fixtures', 'crash-child.mjs')
const MODES = ['pageout', 'read', 'take'] as const

const scratch = mkdtempSync(path.join(tmpdir(), 'coldpage-crash-'))
const mounted = mountTmpfs(scratch, 1 << 30)
test.after.always(() => {
  if (mounted === true) unmount(scratch)
  rmSync(scratch, { recursive: true, force: true })
})

const freeBytes = () => {
  const s = statfsSync(scratch)
  return s.bfree * s.bsize
}

interface Kill {
  mode: (typeof MODES)[number]
  signal: NodeJS.Signals | null
  code: number | null
  stderr: string
  ranMs: number
}

/** Starts a child, waits for "ready", lets it run `delayMs`, then kills it with SIGKILL. */
function killOne(seed: number, mode: Kill['mode'], delayMs: number, backend: string): Promise<Kill> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, String(seed), mode], {
      env: { ...process.env, COLDPAGE_SCRATCH_DIR: scratch, COLDPAGE_BACKEND: backend, COLDPAGE_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    let readyAt = 0
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (readyAt === 0 && s.includes('ready')) {
        readyAt = Date.now()
        setTimeout(() => child.kill('SIGKILL'), delayMs)
      }
    })
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      resolve({ mode, signal, code, stderr, ranMs: readyAt === 0 ? -1 : Date.now() - readyAt })
    })
  })
}

test.serial(`${KILLS} children killed with SIGKILL mid-pageout, mid-read and mid-take leave no scratch bytes`, async (t) => {
  if (mounted !== true) t.log(`scratch on ${scratch} (no tmpfs: ${mounted}); checking files only`)
  const free = freeBytes()
  const rand = prng(20_240_607)
  const plan = Array.from({ length: KILLS }, (_, i) => ({
    seed: i + 1,
    mode: MODES[i % MODES.length]!,
    delayMs: below(rand, 80),
    backend: rand() < 0.8 ? 'file' : 'auto',
  }))
  const started = Date.now()
  const kills = await pool(3, plan.map((p) => () => killOne(p.seed, p.mode, p.delayMs, p.backend)))
  const elapsed = Date.now() - started

  const notKilled = kills.filter((k) => k.signal !== 'SIGKILL' || k.ranMs < 0)
  t.deepEqual(
    notKilled.map((k) => `${k.mode}: code ${k.code}, signal ${k.signal}: ${k.stderr.slice(0, 500)}`),
    [],
    'every child ran until SIGKILL',
  )
  t.deepEqual(filesBelow(scratch), [], 'no scratch file remains')
  t.is(statSync(arenaDir(scratch)).mode & 0o777, 0o700)
  if (mounted === true) t.is(freeBytes(), free, 'every scratch byte of the tmpfs is free again')

  const perMode = MODES.map((m) => `${kills.filter((k) => k.mode === m && k.signal === 'SIGKILL').length} ${m}-heavy`)
  t.log(`${kills.length - notKilled.length}/${KILLS} children killed with SIGKILL (${perMode.join(', ')}) in ${elapsed} ms`)
})

test.serial('a new process starts clean in the same scratch dir', async (t) => {
  const script = `
    const c = require('coldpage')
    const hs = [1, 5000, 1 << 20].map((n) => c.pageout(Buffer.alloc(n, 7)))
    const ok = hs.every((h) => h.readAt(0, h.byteLength).every((b) => b === 7))
    console.log(JSON.stringify({ ok, stats: c.stats() }))
  `
  const r = await runNode(['-e', script], {
    env: { COLDPAGE_SCRATCH_DIR: scratch, COLDPAGE_BACKEND: 'file', COLDPAGE_CONFIG: '' },
    cwd: path.resolve(__dirname, '..'),
  })
  t.is(r.code, 0, r.stderr)
  const { ok, stats } = JSON.parse(r.stdout) as { ok: boolean; stats: { file: { handles: number }; scratchBytesAllocated: number } }
  t.true(ok)
  t.is(stats.file.handles, 3)
  t.is(stats.scratchBytesAllocated, 4096 + 8192 + (1 << 20))
  t.deepEqual(filesBelow(scratch), [])
})
