// Buffers returned by reads must be freed by V8's GC as soon as they are garbage,
// even in a long synchronous loop that never yields to the event loop (where Node
// would not run the finalizers of external Buffers). Each case runs in a child so
// that its RSS is its own.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import test from 'ava'

const child = fileURLToPath(new URL('./fixtures/sync-loop-child.mjs', import.meta.url))
const PRODUCED_MIB = 1024

for (const op of ['take', 'readAtMany', 'readAt']) {
  test(`file ${op} in a synchronous loop: memory is reclaimed while the loop runs`, (t) => {
    const out = execFileSync(process.execPath, [child, op, String(PRODUCED_MIB)], { encoding: 'utf8' })
    const { growthMib } = JSON.parse(out.trim().split('\n').pop()!) as { growthMib: number }
    t.log(`${op}: ${PRODUCED_MIB} MiB produced, peak RSS growth ${growthMib} MiB`)
    // Before the fix, take and readAtMany held every result until the loop ended
    // (growth about equal to what was produced).
    t.true(growthMib < PRODUCED_MIB / 4, `RSS grew ${growthMib} MiB for ${PRODUCED_MIB} MiB of dropped results`)
  })
}
