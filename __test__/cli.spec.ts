// The `coldpage` command, run as users run it (the built dist/cli.js in a child
// process): --version, --help, doctor [--json], and its exit codes: 0 healthy,
// 1 when the backend in use does not work here, 2 for bad usage or a bad
// environment, reported in one line naming the culprit (never a stack trace).
import { readFileSync } from 'node:fs'
import * as path from 'node:path'

import test from 'ava'

import { ROOT, node } from './helpers.js'

const CLI = path.join(ROOT, 'dist', 'cli.js')
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

function cli(args: string[], env: Record<string, string> = {}) {
  return node([CLI, ...args], env)
}

/** No stack frames: a stack trace has lines like "    at Object.<anonymous> (file:1:2)". */
function noStack(t: { false: (v: boolean, m?: string) => void }, stderr: string): void {
  t.false(/^\s+at /m.test(stderr), stderr)
}

test('--version prints the package version and exits 0', async (t) => {
  const r = await cli(['--version'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), VERSION)
})

test('--help and -h print the usage and exit 0', async (t) => {
  for (const flag of ['--help', '-h']) {
    const r = await cli([flag])
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, /usage: coldpage doctor \[--json\]/)
    t.regex(r.stdout, /--version/)
  }
})

test('--help lists every COLDPAGE_* variable, read from the config table', async (t) => {
  const r = await cli(['--help'])
  t.is(r.code, 0, r.stderr)
  for (const name of [
    'COLDPAGE_BACKEND',
    'COLDPAGE_SCRATCH_DIR',
    'COLDPAGE_MAX_SCRATCH_BYTES',
    'COLDPAGE_VERIFY',
    'COLDPAGE_RESIDENT_BYTES',
    'COLDPAGE_ENCRYPT',
    'COLDPAGE_COMPRESS',
    'COLDPAGE_CONFIG',
  ]) {
    t.regex(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), name)
  }
  t.regex(r.stdout, /COLDPAGE_VERIFY +0 or 1 \(default 1\)/)
})

test('bad usage exits 2 with one line naming it, then the usage', async (t) => {
  for (const [args, culprit] of [
    [['--bogus'], /'--bogus'/],
    [['doctor', '--jsn'], /'--jsn'/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [[], /no command given/],
  ] as const) {
    const r = await cli([...args])
    t.is(r.code, 2, args.join(' '))
    const [first] = r.stderr.split('\n')
    t.regex(first!, /^coldpage: /)
    t.regex(first!, culprit)
    t.regex(r.stderr, /usage: coldpage doctor/)
    noStack(t, r.stderr)
  }
})

test('a bad environment exits 2 with one line naming the variable, never a stack trace', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ COLDPAGE_BACKEND: 'bogus' }, /COLDPAGE_BACKEND="bogus" is invalid/],
    [{ COLDPAGE_MAX_SCRATCH_BYTES: '-3' }, /COLDPAGE_MAX_SCRATCH_BYTES="-3"/],
    [{ COLDPAGE_CONFIG: path.join(ROOT, 'no-such-coldpage.json') }, /COLDPAGE_CONFIG=".*no-such-coldpage\.json"/],
  ]
  for (const [env, culprit] of cases) {
    const r = await cli(['doctor'], env)
    t.is(r.code, 2, JSON.stringify(env))
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
    t.regex(r.stderr, /^coldpage: /)
    t.regex(r.stderr, culprit)
    noStack(t, r.stderr)
    t.is(r.stdout, '')
  }
})

test('doctor names the version, the binary target and the libc; exit 0 when healthy', async (t) => {
  const text = await cli(['doctor'], { COLDPAGE_BACKEND: 'file' })
  t.is(text.code, 0, text.stderr)
  t.regex(text.stdout, new RegExp(`^coldpage +${VERSION.replace(/\./g, '\\.')} \\(`, 'm'))
  t.regex(text.stdout, /^backend in use +file$/m)
  const r = await cli(['doctor', '--json'], { COLDPAGE_BACKEND: 'file' })
  t.is(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as { version: string; target: string; libc: string | null; chosen: { backend: string; usable: boolean } }
  t.is(report.version, VERSION)
  const arch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch as 'x64' | 'arm64']
  t.true(report.target.startsWith(`${arch}-`), report.target)
  if (process.platform === 'linux') {
    t.regex(report.target, /-linux-(gnu|musl)$/)
    t.regex(report.libc!, report.target.endsWith('musl') ? /^musl$/ : /^glibc \d+\.\d+/)
    t.true(text.stdout.includes(report.libc!))
  } else {
    t.is(report.libc, null)
  }
  t.deepEqual(report.chosen, { backend: 'file', usable: true, problem: null })
})

test("doctor exits 1 when the backend in use does not work here (swap without active swap)", async (t) => {
  const probe = JSON.parse((await cli(['doctor', '--json'])).stdout) as { swapPagesOut: boolean; platform: string }
  const r = await cli(['doctor', '--json'], { COLDPAGE_BACKEND: 'swap' })
  const report = JSON.parse(r.stdout) as { chosen: { backend: string; usable: boolean; problem: string | null }; warnings: string[] }
  t.is(report.chosen.backend, 'swap')
  if (probe.swapPagesOut) {
    t.is(r.code, 0, r.stderr)
    t.true(report.chosen.usable)
  } else {
    t.is(r.code, 1, r.stderr)
    t.false(report.chosen.usable)
    t.regex(report.chosen.problem!, /swap/)
    t.true(report.warnings.includes(report.chosen.problem!))
    const text = await cli(['doctor'], { COLDPAGE_BACKEND: 'swap' })
    t.is(text.code, 1)
    t.regex(text.stdout, /^backend in use +swap: /m)
  }
})
