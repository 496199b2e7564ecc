// The package as users get it: `npm pack`, install into a fresh directory, and
// both require('coldpage') and import('coldpage') work there; the CLI too.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { ROOT, node } from './helpers.js'

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

test('npm pack installs into a fresh directory; require and import both work', async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'coldpage-pack-'))
  try {
    const out = execFileSync(npm, ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8' })
    const [{ filename, files }] = JSON.parse(out.slice(out.indexOf('['))) as [{ filename: string; files: { path: string }[] }]
    const packed = files.map((f) => f.path)
    t.true(packed.includes('dist/index.js') && packed.includes('dist/index.mjs') && packed.includes('index.js'))
    t.false(packed.some((p) => p.startsWith('lib/') || p.startsWith('__test__/') || p.startsWith('crates/')))
    writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', path.join(work, filename)], {
      cwd: work,
      stdio: 'pipe',
    })
    t.truthy(readdirSync(path.join(work, 'node_modules', 'coldpage')))
    const cjs = await node(
      ['-e', "const c = require('coldpage'); const h = c.pageout(Buffer.from('hello')); console.log(h.readAt(1, 3).toString(), typeof c.Handle)"],
      {},
      work,
    )
    t.is(cjs.stdout.trim(), 'ell function', cjs.stderr)
    const esm = await node(
      [
        '--input-type=module',
        '-e',
        "import { pageout, Handle } from 'coldpage'; import * as ns from 'coldpage'; const c = (await import('coldpage')); const h = pageout(new Uint8Array([1,2,3])); console.log(h.readAt(0, 3).join(','), h instanceof Handle, c.pageout === ns.pageout); h[Symbol.dispose]()",
      ],
      {},
      work,
    )
    t.is(esm.stdout.trim(), '1,2,3 true true', esm.stderr)
    const bin = await node([path.join(work, 'node_modules', 'coldpage', 'dist', 'cli.js'), 'doctor', '--json'], {}, work)
    t.is(bin.code, 0, bin.stderr)
    t.truthy(JSON.parse(bin.stdout).auto.backend)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})

test('ESM and CommonJS share one module instance', async (t) => {
  const r = await node([
    '--input-type=module',
    '-e',
    "import { createRequire } from 'node:module'; import * as esm from 'coldpage'; const cjs = createRequire(import.meta.url)('coldpage'); console.log(esm.Handle === cjs.Handle && esm.configure === cjs.configure)",
  ])
  t.is(r.stdout.trim(), 'true', r.stderr)
})

test('coldpage doctor prints a readable report and --json', async (t) => {
  const text = await node([path.join(ROOT, 'dist', 'cli.js'), 'doctor'])
  t.is(text.code, 0, text.stderr)
  for (const key of ['platform', 'swap', 'page out', 'scratch dir', 'hole punching', 'zero-copy', "'auto' picks"]) {
    t.true(text.stdout.includes(key), key)
  }
  const json = JSON.parse((await node([path.join(ROOT, 'dist', 'cli.js'), 'doctor', '--json'])).stdout)
  for (const key of ['platform', 'kernel', 'swapActive', 'madvCold', 'pageOut', 'pageOutWorks', 'scratchFallback', 'scratchDir', 'scratchFs', 'scratchFreeBytes', 'holePunching', 'zeroCopy', 'auto']) {
    t.true(key in json, key)
  }
  const forced = JSON.parse(
    (await node([path.join(ROOT, 'dist', 'cli.js'), 'doctor', '--json'], { COLDPAGE_NO_EXTERNAL_BUFFERS: '1' })).stdout,
  )
  t.false(forced.zeroCopy)
  const bad = await node([path.join(ROOT, 'dist', 'cli.js'), 'frobnicate'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /usage: coldpage doctor/)
})
