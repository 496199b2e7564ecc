// memoryPressure(): the OS's memory-pressure signal, driven here by fake PSI and cgroup
// files (COLDPAGE_PRESSURE_PSI / COLDPAGE_PRESSURE_CGROUP, read once per process: each
// case runs in a child process).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import { doctor, memoryPressure } from 'coldpage'

import { node } from './helpers.js'

const SOURCES = ['psi', 'cgroup2', 'cgroup1', 'windows', 'macos', 'none']
const LEVELS = ['none', 'moderate', 'critical']

function psi(some: number, full: number): string {
  return (
    `some avg10=${some.toFixed(2)} avg60=0.00 avg300=0.00 total=1000\n` +
    `full avg10=${full.toFixed(2)} avg60=0.00 avg300=0.00 total=100\n`
  )
}

/**
 * Runs `steps` in a child process: each step writes its files (name → text, under
 * `dir`), then samples `memoryPressure()`. Returns the samples.
 */
async function samples(
  env: Record<string, string>,
  dir: string,
  steps: Record<string, string>[],
): Promise<{ level: string; source: string; detail: string }[]> {
  const script = `
    const fs = require('node:fs'), path = require('node:path')
    const { memoryPressure } = require('coldpage')
    const out = []
    for (const files of ${JSON.stringify(steps)}) {
      for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(${JSON.stringify(dir)}, name), text)
      out.push(memoryPressure())
    }
    console.log(JSON.stringify(out))
  `
  const r = await node(['-e', script], env)
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as { level: string; source: string; detail: string }[]
}

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-pressure-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('a fake PSI file drives the level through the thresholds', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'memory')
  writeFileSync(file, psi(0, 0))
  const got = await samples({ COLDPAGE_PRESSURE_PSI: file }, dir, [
    { memory: psi(0, 0) },
    { memory: psi(9.99, 4.99) },
    { memory: psi(10, 0) },
    { memory: psi(80, 4.5) },
    { memory: psi(80, 5) },
    { memory: psi(0, 0) },
  ])
  t.deepEqual(
    got.map((p) => [p.level, p.source]),
    [
      ['none', 'psi'],
      ['none', 'psi'],
      ['moderate', 'psi'],
      ['moderate', 'psi'],
      ['critical', 'psi'],
      ['none', 'psi'],
    ],
  )
  t.regex(got[4]!.detail, /some avg10 80\.00%, full avg10 5\.00%/)
})

test('a fake cgroup v2 directory: working set against memory.max, and new memory.events', async (t) => {
  const dir = tempDir(t)
  const events = (high: number, max: number) => `low 0\nhigh ${high}\nmax ${max}\noom 0\noom_kill 0\n`
  const got = await samples({ COLDPAGE_PRESSURE_CGROUP: dir }, dir, [
    {
      'memory.current': '600\n',
      'memory.max': '1000\n',
      'memory.high': 'max\n',
      'memory.stat': 'anon 500\ninactive_file 100\n',
      'memory.events': events(5, 2),
    },
    { 'memory.current': '1000\n' }, // 900 of 1000
    { 'memory.current': '1070\n' }, // 970 of 1000
    { 'memory.current': '600\n', 'memory.events': events(6, 2) }, // a new high event
    { 'memory.events': events(6, 3) }, // a new max event
  ])
  t.deepEqual(
    got.map((p) => [p.level, p.source]),
    [
      ['none', 'cgroup2'],
      ['moderate', 'cgroup2'],
      ['critical', 'cgroup2'],
      ['moderate', 'cgroup2'],
      ['critical', 'cgroup2'],
    ],
  )
  t.regex(got[0]!.detail, /working set 500 B of max 1000 B \(50\.0%\)/)
})

test('a fake cgroup v1 directory: working set against memory.limit_in_bytes', async (t) => {
  const dir = tempDir(t)
  const got = await samples({ COLDPAGE_PRESSURE_CGROUP: dir }, dir, [
    { 'memory.usage_in_bytes': '500\n', 'memory.limit_in_bytes': '9223372036854771712\n', 'memory.failcnt': '0\n' },
    { 'memory.limit_in_bytes': '520\n' }, // 96%
    { 'memory.usage_in_bytes': '510\n' }, // 98%
  ])
  t.deepEqual(
    got.map((p) => [p.level, p.source]),
    [
      ['none', 'cgroup1'],
      ['moderate', 'cgroup1'],
      ['critical', 'cgroup1'],
    ],
  )
  t.regex(got[0]!.detail, /no limit/)
})

test('an unreadable fake source is level none, source none, and says why', async (t) => {
  const dir = tempDir(t)
  const [p] = await samples({ COLDPAGE_PRESSURE_PSI: path.join(dir, 'missing') }, dir, [{}])
  t.is(p!.level, 'none')
  t.is(p!.source, 'none')
  t.regex(p!.detail, /cannot read .*missing/)
})

test('memoryPressure() and doctor() report this platform\'s signal as plain data', (t) => {
  const p = memoryPressure()
  t.deepEqual(Object.keys(p).sort(), ['detail', 'level', 'source'])
  t.true(LEVELS.includes(p.level), p.level)
  t.true(SOURCES.includes(p.source), p.source)
  t.not(p.detail, '')
  t.deepEqual(JSON.parse(JSON.stringify(p)), p)
  let psiReadable = false
  try {
    psiReadable = readFileSync('/proc/pressure/memory', 'utf8').startsWith('some')
  } catch {
    // no PSI here (not Linux, or a kernel without it)
  }
  if (psiReadable) t.not(p.source, 'none', `PSI is readable here: ${p.detail}`)
  const d = doctor().pressure
  t.true(SOURCES.includes(d.source) && LEVELS.includes(d.level), JSON.stringify(d))
})
