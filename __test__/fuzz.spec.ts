// Hostile input: every exported function of `coldpage` and `coldpage/arrow`, and
// every method and getter of what they return, fuzzed with random argument types
// and values (fast-check) in a CHILD process (fixtures/fuzz-child.mjs), so that a
// crash (a signal, an abort) or a hang fails the test instead of the runner. Only
// SPEC's errors may come out. Run longer with COLDPAGE_FUZZ_RUNS=3000.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { runNode } from './fixtures/reliability.js'

const CHILD = path.join(__dirname, 'fixtures', 'fuzz-child.mjs')
const RUNS = process.env.COLDPAGE_FUZZ_RUNS ?? '300'

// The child's cwd and scratch dir: random relative `scratchDir`s land here.
const cwd = mkdtempSync(path.join(tmpdir(), 'coldpage-fuzz-'))
test.after.always(() => rmSync(cwd, { recursive: true, force: true }))

for (const mode of ['zero-copy', 'copy (no external buffers)'] as const) {
  test(`every export, method and getter survives random arguments: ${mode}`, async (t) => {
    const r = await runNode(['--expose-gc', CHILD], {
      cwd,
      timeoutMs: 110_000,
      env: {
        COLDPAGE_FUZZ_RUNS: RUNS,
        COLDPAGE_SCRATCH_DIR: cwd,
        COLDPAGE_CONFIG: '',
        COLDPAGE_NO_EXTERNAL_BUFFERS: mode === 'zero-copy' ? '0' : '1',
      },
    })
    t.false(r.timedOut, `the child hung: ${r.stderr.slice(-2000)}`)
    t.is(r.signal, null, `the child crashed: ${r.stderr.slice(-2000)}`)
    t.is(r.code, 0, r.stderr.slice(-4000))
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
      calls: number
      ok: number
      codes: Record<string, number>
      functions: string[]
      methods: number
      leftHandles: number
    }
    t.true(summary.functions.includes('coldpage.pageout') && summary.functions.includes('coldpage/arrow.pageoutTable'))
    t.is(summary.leftHandles, 0, 'every handle the fuzzer made was freed')
    const codes = Object.entries(summary.codes).map(([c, n]) => `${c} ${n}`).join(', ')
    t.log(`${summary.calls} calls over ${summary.functions.length} functions and ${summary.methods} methods/getters: ${summary.ok} returned, ${codes}`)
  })
}
