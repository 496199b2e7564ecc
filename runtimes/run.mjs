#!/usr/bin/env node
// `npm run test:runtimes`: the package as users install it, under every
// runtime they ship. Packs the built package (`npm pack`, with the locally
// built binary), installs the tarball and apache-arrow into a fresh temp
// project, and runs runtimes/suite.mjs there under each runtime:
//
//   system         the Node that runs this script (20.x here)
//   node22/24/26   Node from the npm registry's node-<os>-<arch> packages
//   bun            Bun from the `bun` package's platform package (@oven/bun-<os>-<arch>)
//   bun-min        Bun 1.1.34, the oldest coldpage supports (lib/native.ts refuses older)
//   no-external-buffers   the system Node with COLDPAGE_NO_EXTERNAL_BUFFERS=1 (Electron's mode)
//
// Runtimes are installed into a cache outside the repo ($COLDPAGE_RUNTIMES_CACHE,
// default ~/.cache/coldpage-runtimes) and reused. Prints a table runtime x
// version x result x zero-copy, writes it to runtimes/results.md, and with
// --readme puts it into README.md's "Runtimes" section.
//
// Usage: node runtimes/run.mjs [--only system,node22,bun,...] [--readme] [--keep] [--refresh]
// Needs a build first (`npm run build`, or the CI artifact plus `npm run build:ts`).
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkFacts } from '../scripts/platform-table.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HERE = join(ROOT, 'runtimes')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const SUITE_TIMEOUT_MS = 5 * 60_000

const NODE_MAJORS = [22, 24, 26]
const BUN_MIN = '1.1.34'
const RUNTIMES = ['system', ...NODE_MAJORS.map((m) => `node${m}`), 'bun', 'bun-min', 'no-external-buffers']

function usage(message) {
  console.error(`${message}\nusage: node runtimes/run.mjs [--only ${RUNTIMES.join(',')}] [--readme] [--keep] [--refresh]`)
  process.exit(2)
}

function parseArgs(argv) {
  const opts = { only: RUNTIMES, readme: false, keep: false, refresh: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--readme') opts.readme = true
    else if (a === '--keep') opts.keep = true
    else if (a === '--refresh') opts.refresh = true
    else if (a === '--only' || a.startsWith('--only=')) {
      const list = a === '--only' ? argv[++i] : a.slice('--only='.length)
      if (!list) usage('--only needs a list')
      opts.only = list.split(',').map((s) => s.trim()).filter(Boolean)
      for (const r of opts.only) if (!RUNTIMES.includes(r)) usage(`unknown runtime ${JSON.stringify(r)}`)
    } else usage(`unknown argument ${JSON.stringify(a)}`)
  }
  if (opts.readme && opts.only.length !== RUNTIMES.length) usage('--readme needs every runtime (no --only)')
  return opts
}

function step(text) {
  console.log(`\n== ${text}`)
}

/** Runs npm quietly; throws with its output on failure. */
function npmRun(args, cwd) {
  const r = spawnSync(npm, args, { cwd, encoding: 'utf8', shell: process.platform === 'win32' })
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The packed, built package: the tarball users would install. */
function pack(work) {
  const built = readdirSync(ROOT).filter((f) => /^coldpage\..+\.node$/.test(f))
  if (!existsSync(join(ROOT, 'dist', 'index.js')) || !existsSync(join(ROOT, 'dist', 'arrow.mjs')) || built.length === 0) {
    throw new Error('no build to pack: run `npm run build` first (dist/ and coldpage.<target>.node)')
  }
  const out = npmRun(['pack', '--json', '--pack-destination', work], ROOT)
  const [{ filename }] = JSON.parse(out.slice(out.indexOf('[')))
  console.log(`packed ${filename} with ${built.join(', ')}`)
  return join(work, filename)
}

/** A fresh project with the tarball and apache-arrow (the version the repo tests with). */
function makeProject(work, tarball) {
  const project = join(work, 'app')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'coldpage-runtimes-app', version: '1.0.0', private: true }))
  let arrow = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies['apache-arrow']
  try {
    arrow = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'apache-arrow', 'package.json'), 'utf8')).version
  } catch {
    // No repo install (a bare checkout): the devDependency range will do.
  }
  npmRun(['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', tarball, `apache-arrow@${arrow}`], project)
  copyFileSync(join(HERE, 'suite.mjs'), join(project, 'suite.mjs'))
  console.log(`installed into ${project} with apache-arrow@${arrow}`)
  return project
}

function cacheDir() {
  const base = process.env.COLDPAGE_RUNTIMES_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'coldpage-runtimes')
  mkdirSync(base, { recursive: true })
  return base
}

/** Installs `spec` into its own directory of the cache (once; again with --refresh). */
function cachedInstall(name, spec, refresh) {
  const dir = join(cacheDir(), name)
  const marker = join(dir, '.installed')
  if (refresh || !existsSync(marker)) {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `cache-${name}`, private: true }))
    // --ignore-scripts: the binaries ship inside the packages; no install
    // script (bun's postinstall only relinks its binary) is needed or run.
    npmRun(['install', '--no-audit', '--no-fund', '--ignore-scripts', spec], dir)
    writeFileSync(marker, `${spec}\n`)
  }
  return dir
}

/** Runs `bin --version`; the trimmed output, or undefined if it does not run. */
function versionOf(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** Node `major` from the npm registry's node-<os>-<arch> package (the binary is inside). */
function provisionNode(major, refresh) {
  const pkg = `node-${process.platform}-${process.arch}`
  const dir = cachedInstall(`node${major}`, `${pkg}@${major}`, refresh)
  const bin = join(dir, 'node_modules', pkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node')
  const v = versionOf(bin)
  if (v === undefined || !v.startsWith(`v${major}.`)) throw new Error(`${bin} does not run as Node ${major} (got ${v})`)
  return bin
}

/**
 * Bun from the npm registry. The `bun` package's bin is a placeholder that its
 * postinstall script replaces; installed without scripts, the real binary is in
 * the optional platform package it pulls (@oven/bun-<os>-<arch>), used here.
 * Falls back to running the postinstall by hand if that binary does not run.
 */
function provisionBun(name, spec, refresh) {
  const dir = cachedInstall(name, spec, refresh)
  const arch = process.arch === 'arm64' ? 'aarch64' : process.arch
  const exe = process.platform === 'win32' ? 'bun.exe' : 'bun'
  const candidates = [
    join(dir, 'node_modules', '@oven', `bun-${process.platform}-${arch}`, 'bin', exe),
    join(dir, 'node_modules', '@oven', `bun-${process.platform}-${arch}-baseline`, 'bin', exe),
    join(dir, 'node_modules', 'bun', 'bin', 'bun.exe'),
  ]
  for (const bin of candidates) if (existsSync(bin) && versionOf(bin) !== undefined) return bin
  execFileSync(process.execPath, ['install.js'], { cwd: join(dir, 'node_modules', 'bun'), stdio: 'inherit' })
  const bin = join(dir, 'node_modules', 'bun', 'bin', 'bun.exe')
  if (versionOf(bin) === undefined) throw new Error(`no working bun binary in ${dir}`)
  return bin
}

/** Command, arguments and environment of each runtime. */
function plan(id, refresh) {
  const gc = ['--expose-gc']
  switch (id) {
    case 'system':
      return { label: 'Node (system)', bin: process.execPath, args: gc, env: { COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY: '1' } }
    case 'no-external-buffers':
      return {
        label: 'Node (system), COLDPAGE_NO_EXTERNAL_BUFFERS=1',
        bin: process.execPath,
        args: gc,
        env: { COLDPAGE_NO_EXTERNAL_BUFFERS: '1', COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY: '0' },
      }
    case 'bun':
      // No zero-copy expectation: whatever Bun's Node-API lacks must degrade
      // to copies, and the suite reports it.
      return { label: 'Bun', bin: provisionBun('bun', 'bun@1', refresh), args: [], env: {} }
    case 'bun-min':
      return { label: 'Bun (oldest supported)', bin: provisionBun(`bun${BUN_MIN}`, `bun@${BUN_MIN}`, refresh), args: [], env: {} }
    default: {
      const major = Number(id.slice('node'.length))
      return { label: `Node ${major}`, bin: provisionNode(major, refresh), args: gc, env: { COLDPAGE_RUNTIMES_EXPECT_ZERO_COPY: '1' } }
    }
  }
}

/** The environment for a suite run: no COLDPAGE_* settings leak in from ours. */
function childEnv(extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COLDPAGE_')) env[k] = v
  return { ...env, ...extra }
}

function runOne(id, project, work, refresh) {
  step(`runtime ${id}`)
  let p
  try {
    p = plan(id, refresh)
  } catch (err) {
    console.log(`could not provision ${id}: ${err.message}`)
    return { id, label: id, version: '?', result: 'not installed', ok: false, zeroCopy: '?', degraded: [], notes: [] }
  }
  const reportFile = join(work, `report-${id}.json`)
  const started = Date.now()
  const r = spawnSync(p.bin, [...p.args, 'suite.mjs', '--report', reportFile], {
    cwd: project,
    env: childEnv(p.env),
    stdio: 'inherit',
    timeout: SUITE_TIMEOUT_MS,
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  let report
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8'))
  } catch {
    report = undefined
  }
  const version = report?.version ?? versionOf(p.bin) ?? '?'
  if (r.error !== undefined || r.signal !== null || report === undefined) {
    const why = r.error?.code === 'ETIMEDOUT' ? 'timed out' : r.signal ? `crashed (${r.signal})` : r.error ? r.error.message : `exit ${r.status}, no report`
    return { id, label: p.label, version, result: `FAIL: ${why}`, ok: false, zeroCopy: '?', degraded: [], notes: [] }
  }
  const tableProblems = checkFacts(report.platform, report)
  for (const problem of tableProblems) console.log(`README Platforms table: ${problem}`)
  const ok = report.failed === 0 && r.status === 0 && tableProblems.length === 0
  const total = report.passed + report.failed
  return {
    id,
    label: p.label,
    version: report.runtime === 'bun' ? `${report.version} (node-api ${report.napi})` : `v${report.version}`,
    result: ok
      ? `pass (${report.passed}/${total}, ${seconds} s)`
      : tableProblems.length > 0 && report.failed === 0
        ? `FAIL (contradicts the README's Platforms table: ${tableProblems.join('; ')})`
        : `FAIL (${report.failed} of ${total} failed)`,
    ok,
    zeroCopy: report.zeroCopy ? 'on' : `off: ${report.zeroCopyReason}`,
    degraded: report.degraded,
    notes: report.notes,
  }
}

function table(rows) {
  const lines = ['| runtime | version | result | zero-copy |', '| --- | --- | --- | --- |']
  for (const r of rows) lines.push(`| ${r.label} | ${r.version} | ${r.result} | ${r.zeroCopy} |`)
  const remarks = []
  for (const r of rows) {
    for (const d of r.degraded) remarks.push(`- ${r.label}: degraded: ${d.capability}: ${d.reason}`)
    for (const n of r.notes) remarks.push(`- ${r.label}: ${n}`)
  }
  return [...lines, ...(remarks.length > 0 ? ['', ...remarks] : [])].join('\n')
}

function updateReadme(markdown) {
  const readme = join(ROOT, 'README.md')
  const text = readFileSync(readme, 'utf8')
  const start = '<!-- runtimes:start (generated by `npm run test:runtimes -- --readme`) -->'
  const end = '<!-- runtimes:end -->'
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} ... ${end} block`)
  writeFileSync(readme, `${text.slice(0, a + start.length)}\n${markdown}\n${text.slice(b)}`)
  console.log('README.md: Runtimes table updated')
}

function main() {
  const opts = parseArgs(process.argv.slice(2))
  const work = mkdtempSync(join(tmpdir(), 'coldpage-runtimes-'))
  const rows = []
  try {
    step('packing and installing the package into a fresh project')
    const project = makeProject(work, pack(work))
    for (const id of opts.only) rows.push(runOne(id, project, work, opts.refresh))
  } finally {
    if (opts.keep) console.log(`kept ${work}`)
    else rmSync(work, { recursive: true, force: true })
  }
  const when = new Date().toISOString().slice(0, 10)
  const markdown = `${table(rows)}\n\n_${process.platform}-${process.arch}, ${when}: \`npm run test:runtimes\` (runtimes/run.mjs)._`
  step('runtimes')
  console.log(markdown)
  writeFileSync(join(HERE, 'results.md'), `${markdown}\n`)
  if (opts.readme) updateReadme(markdown)
  const failed = rows.filter((r) => !r.ok).length
  console.log(`\nruntimes: ${rows.length - failed} passed, ${failed} failed`)
  process.exitCode = failed === 0 ? 0 : 1
}

main()
