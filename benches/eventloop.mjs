// How long each async call holds the JS thread (issue 24, SPEC "Async never
// holds the JS thread"), side by side with Node's own fs.promises for the same
// bytes, in both buffer modes: with external buffers, and in Electron's mode
// (COLDPAGE_NO_EXTERNAL_BUFFERS=1, each mode in its own child process because
// the mode is read at load).
//
// The stall is the longest gap between ticks of a 1 ms interval timer while the
// call runs (what a UI thread or a request loop feels); the wall is the call's
// time to settle. Medians over --rounds rounds in which coldpage and Node
// alternate, so a noisy neighbour hits both. Goals:
//   stall  <= max(Node's stall for the same bytes, 15 ms)       (every row)
//   pageoutAsync wall            <= 1.25 x fs.promises.writeFile
//   readAtManyAsync 256 x 4 MiB  <= 1.25 x one readAtAsync of the same bytes
//   TableHandle.readAsync        <= 1.25 x readAtAsync of its bytes
//   store.setAsync               <= 1.25 x fs.promises.writeFile of the same bytes
//   store.get*Async of a cold value <= 1.25 x readAtAsync of the same bytes
// Calls that return many buffers (readAtManyAsync, TableHandle.readAsync) are also
// shown beside Node's own in their shape: a filehandle.read per result buffer, all
// at once (V8 starts GC work for every ~64 MiB of new ArrayBuffers, so many
// buffers cost the loop more than one buffer of the same bytes). The verdicts stay
// against Node's one read of the same bytes.
//
//   npm run bench:eventloop                       # 1 GiB, 3 rounds, both modes
//   node --expose-gc benches/eventloop.mjs [--gib 1] [--rounds 3] [--mode default|electron] [--only TEXT] [--json FILE]
//   (--only keeps the rows whose call contains TEXT, and the readAtAsync row other rows compare with)
//
// Exit code 0 whatever the verdicts: this measures, it does not gate.
import { spawnSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    mode: { type: 'string' },
    child: { type: 'boolean', default: false },
    json: { type: 'string' },
    only: { type: 'string' },
  },
})
const MiB = 1 << 20
const GiB = 1 << 30
const BYTES = Math.round(Number(args.gib) * GiB / (64 * MiB)) * 64 * MiB
const ROUNDS = Number(args.rounds)
const FLOOR_MS = 15
if (!(BYTES >= 64 * MiB) || !(ROUNDS >= 1)) throw new Error('--gib must be >= 0.0625 and --rounds >= 1')

const MODES = {
  default: {},
  electron: { COLDPAGE_NO_EXTERNAL_BUFFERS: '1' },
}

// ---------------------------------------------------------------------------
// Parent: one child per mode, then the table.

function parent() {
  const modes = args.mode === undefined ? Object.keys(MODES) : [args.mode]
  const results = {}
  for (const mode of modes) {
    if (!(mode in MODES)) throw new Error(`unknown --mode ${mode}`)
    console.error(`== ${mode} mode: ${BYTES / GiB} GiB, ${ROUNDS} rounds`)
    const self = fileURLToPath(import.meta.url)
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', '--max-old-space-size=8192', self, '--child', '--gib', args.gib, '--rounds', args.rounds, ...(args.only === undefined ? [] : ['--only', args.only])],
      { env: { ...process.env, ...MODES[mode] }, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * MiB },
    )
    if (r.status !== 0) throw new Error(`the ${mode} child failed (status ${r.status}, signal ${r.signal})`)
    results[mode] = JSON.parse(r.stdout.toString())
  }
  print(results)
  if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ bytes: BYTES, rounds: ROUNDS, results }, null, 2) + '\n')
}

const ms = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '—')

function print(results) {
  const header = ['mode', 'call', 'stall ms', 'Node stall ms', 'stall goal', 'wall ms', 'baseline', 'wall ms', 'ratio', 'wall goal']
  const rows = [header]
  for (const [mode, res] of Object.entries(results)) {
    for (const row of res.rows) {
      if (row.missing !== undefined) {
        rows.push([mode, row.name, '—', '—', 'missed (not built)', '—', '', '', '', row.missing])
        continue
      }
      const stallGoal = Math.max(row.nodeStall, FLOOR_MS)
      const stallMet = row.stall <= stallGoal
      let wallCells = ['', '', '', '']
      if (row.wallBase !== undefined) {
        const ratio = row.wall / row.wallBase.wall
        wallCells = [row.wallBase.name, ms(row.wallBase.wall), ratio.toFixed(2), `<= 1.25: ${ratio <= 1.25 ? 'met' : 'missed'}`]
      }
      rows.push([
        mode,
        row.name,
        ms(row.stall),
        `${ms(row.nodeStall)} (${row.nodeName})`,
        `<= ${ms(stallGoal)}: ${stallMet ? 'met' : 'missed'}`,
        ms(row.wall),
        ...wallCells,
      ])
    }
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd())
  console.log(`\nmedians of ${ROUNDS} rounds, ${BYTES / GiB} GiB on the file backend; stall = longest gap between 1 ms timer ticks`)
  const shaped = Object.entries(results).flatMap(([mode, res]) => res.rows.filter((r) => r.shapeName !== undefined).map((r) => [mode, r]))
  if (shaped.length > 0) {
    // The goal above is judged against Node's one read of the same bytes. A call that
    // returns many buffers is also shown beside Node's own in the same shape.
    console.log('\nNode in the shape of the call (a buffer per result, read at once), same rounds:')
    for (const [mode, r] of shaped) {
      console.log(`${mode.padEnd(8)} ${r.name}: stall ${ms(r.stall)} ms against ${r.shapeName} ${ms(r.shapeStall)} ms (wall ${ms(r.wall)} / ${ms(r.shapeWall)} ms)`)
    }
  }
}

// ---------------------------------------------------------------------------
// Child: every row in one mode.

async function child() {
  const coldpage = await import('coldpage')
  const { pageoutTableAsync } = await import('coldpage/arrow')
  const A = await import('apache-arrow')
  const gc = globalThis.gc ?? (() => {})
  const backend = 'file'
  const dir = coldpage.getConfig().scratchDir
  const nodeFile = join(dir, `coldpage-eventloop-${process.pid}.bin`)

  const data = Buffer.allocUnsafe(BYTES)
  for (let i = 0, x = 0x9e3779b9; i < BYTES; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    data.writeInt32LE(x | 0, i)
  }
  // The same bytes as a table of 8 float64 columns, one batch.
  const cols = {}
  const perCol = BYTES / 8 / 8
  for (let c = 0; c < 8; c++) cols[`c${c}`] = new Float64Array(data.buffer, data.byteOffset + c * perCol * 8, perCol)
  const table = A.makeTable(cols)

  // Node's side: a warm file with the same bytes, read back with filehandle.read.
  await writeFile(nodeFile, data)
  const nodeRead = async () => {
    const fh = await open(nodeFile, 'r')
    try {
      const out = Buffer.allocUnsafe(BYTES)
      let done = 0
      while (done < BYTES) {
        const { bytesRead } = await fh.read(out, done, Math.min(BYTES - done, GiB), done)
        if (bytesRead === 0) throw new Error('short read')
        done += bytesRead
      }
      return out
    } finally {
      await fh.close()
    }
  }
  /**
   * Node's own read in the shape of a call that returns `count` buffers: one
   * `filehandle.read` into a buffer of its own per range, all at once, as an app
   * would write it. V8 starts GC work for every ~64 MiB of new ArrayBuffers, so
   * many result buffers cost the loop more than one of the same bytes.
   */
  const nodeReadEach = (count) => async () => {
    const fh = await open(nodeFile, 'r')
    try {
      const each = BYTES / count
      return await Promise.all(Array.from({ length: count }, (_, i) => fh.read(Buffer.allocUnsafeSlow(each), 0, each, i * each)))
    } finally {
      await fh.close()
    }
  }
  const nodeWrite = () => writeFile(nodeFile, data)
  const nodeWrite16 = () =>
    Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        writeFile(`${nodeFile}.${i}`, data.subarray((i * BYTES) / 16, ((i + 1) * BYTES) / 16)),
      ),
    )
  const nodeWritev = async () => {
    const fh = await open(nodeFile, 'w')
    try {
      await fh.writev(Object.values(cols).map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)))
    } finally {
      await fh.close()
    }
  }

  // Kept paged out across rounds for the read rows.
  const h = await coldpage.pageoutAsync(data, { backend })
  const th = await pageoutTableAsync(table, { backend })
  const ranges = Array.from({ length: 256 }, (_, i) => [(i * BYTES) / 256, BYTES / 256])

  /** A store whose one entry `k` (bytes or a table) is paged out, with room to page it in. */
  const coldStore = async (value) => {
    const store = coldpage.createStore({ residentBytes: 0, backend, pressure: false })
    await store.setAsync('k', value)
    store.resize(2 * BYTES)
    return store
  }

  const specs = [
    {
      name: `pageoutAsync(${BYTES / GiB} GiB)`,
      run: async () => (await coldpage.pageoutAsync(data, { backend })).dispose(),
      node: ['writeFile', nodeWrite],
      wallBase: 'node',
    },
    {
      name: `16 × pageoutAsync(${BYTES / 16 / MiB} MiB) at once`,
      run: async () =>
        (
          await Promise.all(
            Array.from({ length: 16 }, (_, i) =>
              coldpage.pageoutAsync(data.subarray((i * BYTES) / 16, ((i + 1) * BYTES) / 16), { backend }),
            ),
          )
        ).forEach((x) => x.dispose()),
      node: ['16 × writeFile', nodeWrite16],
      wallBase: 'node',
    },
    {
      name: 'pageoutTableAsync (8 × f64)',
      run: async () => (await pageoutTableAsync(table, { backend })).dispose(),
      node: ['filehandle.writev', nodeWritev],
    },
    {
      name: `readAtAsync(0, ${BYTES / GiB} GiB)`,
      id: 'readAt',
      run: () => h.readAtAsync(0, BYTES),
      node: ['filehandle.read', nodeRead],
    },
    {
      name: `readAtManyAsync 256 × ${BYTES / 256 / MiB} MiB`,
      run: () => h.readAtManyAsync(ranges),
      node: ['filehandle.read', nodeRead],
      shape: ['256 × filehandle.read 4 MiB, at once', nodeReadEach(256)],
      wallBase: 'readAt',
    },
    {
      name: 'TableHandle.readAsync (whole table)',
      run: () => th.readAsync(),
      node: ['filehandle.read', nodeRead],
      shape: ['8 × filehandle.read 128 MiB, at once', nodeReadEach(8)],
      wallBase: 'readAtTable',
    },
    {
      name: 'readAtAsync of the table handle bytes',
      id: 'readAtTable',
      // The same number of bytes from a plain handle (the table's own handle is internal).
      run: () => h.readAtAsync(0, Math.min(th.byteLength, BYTES)),
      node: ['filehandle.read', nodeRead],
    },
    {
      name: `store.setAsync 16 × ${BYTES / 16 / MiB} MiB (budget ${BYTES / 4 / MiB} MiB)`,
      setup: async () => coldpage.createStore({ residentBytes: BYTES / 4, backend, pressure: false }),
      run: async (store) => {
        for (let i = 0; i < 16; i++) await store.setAsync(`k${i}`, data.subarray((i * BYTES) / 16, ((i + 1) * BYTES) / 16))
        store.dispose()
      },
      node: ['writeFile', nodeWrite],
      wallBase: 'node',
    },
    {
      name: `store.getAsync (a cold ${BYTES / GiB} GiB value)`,
      setup: () => coldStore(data),
      run: async (store) => {
        await store.getAsync('k')
        store.dispose()
      },
      node: ['filehandle.read', nodeRead],
      wallBase: 'readAt',
    },
    {
      name: `store.getRangeAsync (all of a cold ${BYTES / GiB} GiB value)`,
      setup: () => coldStore(data),
      run: async (store) => {
        await store.getRangeAsync('k', 0, BYTES)
        store.dispose()
      },
      node: ['filehandle.read', nodeRead],
      wallBase: 'readAt',
    },
    {
      name: `store.getTableAsync (a cold ${BYTES / GiB} GiB table)`,
      setup: () => coldStore(table),
      run: async (store) => {
        await store.getTableAsync('k')
        store.dispose()
      },
      node: ['filehandle.read', nodeRead],
      wallBase: 'readAt',
    },
    {
      name: 'takeAsync (file)',
      setup: async () => coldpage.pageoutAsync(data, { backend }),
      run: (x) => x.takeAsync(),
      node: ['filehandle.read', nodeRead],
    },
  ]

  const rows = []
  const byId = new Map()
  for (const spec of specs) {
    if (args.only !== undefined && !spec.name.includes(args.only) && spec.id !== 'readAt') continue
    const mine = []
    const theirs = []
    const shaped = []
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which side goes first.
      const order = r % 2 === 0 ? ['mine', 'node'] : ['node', 'mine']
      if (spec.shape !== undefined) order.push('shape')
      for (const side of order) {
        gc()
        if (side === 'mine') {
          const arg = spec.setup === undefined ? undefined : await spec.setup()
          mine.push(await measure(() => spec.run(arg)))
        } else if (side === 'node') {
          theirs.push(await measure(spec.node[1]))
        } else {
          shaped.push(await measure(spec.shape[1]))
        }
      }
    }
    const row = {
      name: spec.name,
      stall: median(mine.map((m) => m.stall)),
      wall: median(mine.map((m) => m.wall)),
      nodeName: spec.node[0],
      nodeStall: median(theirs.map((m) => m.stall)),
      nodeWall: median(theirs.map((m) => m.wall)),
      ...(spec.shape === undefined ? {} : { shapeName: spec.shape[0], shapeStall: median(shaped.map((m) => m.stall)), shapeWall: median(shaped.map((m) => m.wall)) }),
    }
    if (spec.id !== undefined) byId.set(spec.id, row)
    if (spec.wallBase === 'node') row.wallBase = { name: spec.node[0], wall: row.nodeWall }
    else if (spec.wallBase !== undefined) {
      const base = byId.get(spec.wallBase)
      // The table row's baseline is measured after it: patch below.
      row.wallBaseId = spec.wallBase
      if (base !== undefined) row.wallBase = { name: base.name, wall: base.wall }
    }
    rows.push(row)
    console.error(`  ${spec.name}: stall ${ms(row.stall)} ms (Node ${ms(row.nodeStall)}), wall ${ms(row.wall)} ms`)
  }
  for (const row of rows) {
    if (row.wallBase === undefined && row.wallBaseId !== undefined) {
      // Filtered out by --only: the row has no baseline to compare with.
      const base = byId.get(row.wallBaseId)
      if (base !== undefined) row.wallBase = { name: base.name, wall: base.wall }
    }
    delete row.wallBaseId
  }

  h.dispose()
  th.dispose()
  rmSync(nodeFile, { force: true })
  for (let i = 0; i < 16; i++) rmSync(`${nodeFile}.${i}`, { force: true })
  process.stdout.write(JSON.stringify({ rows }))
}

/** Runs `fn` with a 1 ms ticker beside it: the longest gap between ticks, and the wall time. */
async function measure(fn) {
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const t = performance.now()
    if (t - last > longest) longest = t - last
    last = t
  }, 1)
  // Let the ticker arm and tick once before the call starts.
  await new Promise((resolve) => setTimeout(resolve, 5))
  longest = 0
  last = performance.now()
  const start = performance.now()
  await fn()
  const wall = performance.now() - start
  const end = performance.now()
  clearInterval(timer)
  longest = Math.max(longest, end - last)
  return { stall: longest, wall }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

if (args.child) await child()
else parent()
