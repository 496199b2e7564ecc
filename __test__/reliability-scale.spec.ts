// Resources at scale (SPEC): a SharedArrayBuffer that a Worker writes while a sync
// pageout reads it; a media error under a view (the scratch file truncated, as a
// failing disk does); a sync readAtMany too large for the address space. Each case
// that could kill a process runs in a child (the built package, by its name).
import { once } from 'node:events'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

import test from 'ava'

import { pageout } from 'coldpage'
import { runNode } from './fixtures/reliability.js'

const ROOT = path.join(__dirname, '..')

test('a SharedArrayBuffer written by a Worker during sync pageouts reads back whole', async (t) => {
  const sab = new SharedArrayBuffer(4 << 20)
  const flag = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(
    `const { workerData: { sab, flag }, parentPort } = require('node:worker_threads')
     const bytes = new Uint8Array(sab)
     const stop = new Int32Array(flag)
     let v = 1
     parentPort.postMessage('writing')
     while (Atomics.load(stop, 0) === 0) { for (let i = 0; i < bytes.length; i += 64) bytes[i] = v; v = (v % 250) + 1 }`,
    { eval: true, workerData: { sab, flag: flag.buffer } },
  )
  try {
    await once(worker, 'message') // The pageouts run while the Worker writes.
    for (let i = 0; i < 20; i++) {
      const h = pageout(new Uint8Array(sab), { backend: 'file' })
      t.is(h.readAt(0, h.byteLength).length, 4 << 20, `handle ${i} reads back`)
      t.is(h.take().length, 4 << 20, `handle ${i} is taken`)
    }
  } finally {
    Atomics.store(flag, 0, 1)
    await worker.terminate()
  }
})

const linux = process.platform === 'linux'

test('a media error under a view never kills the process: the handle reports IO and a warning names it', async (t) => {
  if (!linux) return t.pass('the arena is truncated through /proc/self/fd: Linux only')
  const script = `
    const { readdirSync, readlinkSync, truncateSync } = require('node:fs')
    const coldpage = require('coldpage')
    const warnings = []
    process.on('warning', (w) => warnings.push(w.code))
    const h = coldpage.pageout(Buffer.alloc(64 << 10, 5), { backend: 'file' })
    const v = h.view()
    if (v.length !== 64 << 10 || v[10] !== 5) throw new Error('the view is not the bytes')
    const prefix = require('node:path').join(coldpage.getConfig().scratchDir, 'coldpage-' + process.geteuid()) + '/'
    const fd = readdirSync('/proc/self/fd').find((fd) => { try { return readlinkSync('/proc/self/fd/' + fd).startsWith(prefix) } catch { return false } })
    truncateSync('/proc/self/fd/' + fd, 0)
    let sum = 0
    for (let i = 0; i < v.length; i += 4096) sum += v[i]
    let code = 'none'
    try { h.readAt(0, 10) } catch (e) { code = e.code }
    setImmediate(() => console.log(JSON.stringify({ sum, code, warnings })))
  `
  const r = await runNode(['-e', script], { cwd: ROOT, env: { COLDPAGE_CONFIG: '' } })
  t.is(r.signal, null, `the child lives: ${r.stderr}`)
  const out = JSON.parse(r.stdout.trim()) as { sum: number; code: string; warnings: string[] }
  t.is(out.code, 'ERR_COLDPAGE_IO')
  t.true(out.warnings.includes('COLDPAGE_MEDIA_ERROR'), JSON.stringify(out.warnings))
})

test('sync readAtMany too large for the address space is ERR_COLDPAGE_NO_MEMORY, not a crash', async (t) => {
  if (!linux) return t.pass('the address-space limit is set with ulimit -v: Linux only')
  const script = `
    const coldpage = require('coldpage')
    const h = coldpage.pageout(Buffer.alloc(4 << 20, 1), { backend: 'file' })
    const ranges = []
    for (let i = 0; i < 1_000_000; i++) ranges.push([(i % 1024) * 4096, 4096])
    let code = 'none'
    try { h.readAtMany(ranges) } catch (e) { code = e.code }
    h.readAt(0, 4096)
    console.log(code)
  `
  const limitKiB = 3 * 1024 * 1024
  const r = await runShell(`ulimit -v ${limitKiB} && exec "${process.execPath}" -e "$SCRIPT"`, script)
  t.is(r.signal, null, `the child lives: ${r.stderr.slice(0, 2000)}`)
  t.is(r.stdout.trim(), 'ERR_COLDPAGE_NO_MEMORY', r.stderr.slice(0, 2000))
})

function runShell(command: string, script: string): Promise<{ signal: string | null; stdout: string; stderr: string }> {
  return runNode(
    ['-e', `require('node:child_process').spawnSync('sh', ['-c', ${JSON.stringify(command)}], { stdio: 'inherit', env: { ...process.env, SCRIPT: ${JSON.stringify(script)} } }).signal && process.exit(99)`],
    { cwd: ROOT, env: { COLDPAGE_CONFIG: '' } },
  ).then((r) => ({ signal: r.code === 99 ? 'signal' : r.signal, stdout: r.stdout, stderr: r.stderr }))
}
