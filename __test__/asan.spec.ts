// No sequence of public calls reads freed memory: pageoutAsync whose input is
// transferred away (and collected) while the call runs, under AddressSanitizer
// (its runtime preloaded into Node: it intercepts free() of V8's backing stores and
// checks every memcpy/pwritev the addon does against them).
import { existsSync } from 'node:fs'
import * as path from 'node:path'

import test from 'ava'

import { runNode } from './fixtures/reliability.js'
import { ROOT } from './helpers.js'

const LIBASAN = ['/usr/lib/x86_64-linux-gnu/libasan.so.8', '/usr/lib/x86_64-linux-gnu/libasan.so.6'].find((p) => existsSync(p))

test('pageoutAsync never reads an input that was transferred and freed while it ran (ASan)', async (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64' || LIBASAN === undefined) {
    t.log('skipped: needs Linux x64 with libasan (gcc) to preload')
    t.pass()
    return
  }
  const r = await runNode(['--expose-gc', path.join(__dirname, 'fixtures', 'uaf-child.mjs'), ROOT], {
    env: { LD_PRELOAD: LIBASAN, ASAN_OPTIONS: 'detect_leaks=0:alloc_dealloc_mismatch=0', COLDPAGE_CONFIG: '' },
  })
  t.false(/AddressSanitizer/.test(r.stderr), r.stderr.split('\n').slice(0, 12).join('\n'))
  t.is(r.stdout.trim(), 'ok', r.stderr.slice(0, 2000))
  t.is(r.code, 0)
})
