// Turns the peer benchmark's medians into the console table, the Markdown
// table and the goal verdicts. Pure functions of the results object.

export const OPS = [
  ['pageout', 'pageout'],
  ['readAt', 'readAt (whole chunk)'],
  ['readAt4k', 'readAt 4 KiB, random offset'],
  ['readAtMany', 'readAtMany, 1000 × 4 KiB'],
  ['take', 'take'],
  ['roundtrip', 'round trip (pageout + take)'],
]
export const opLabel = (op) => OPS.find(([id]) => id === op)?.[1] ?? op
const FS = ['fs-files', 'fs-fd']

export function sizeLabel(bytes) {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MiB`
  return `${bytes / 1024} KiB`
}

export function timeLabel(ms) {
  if (!Number.isFinite(ms)) return '—'
  if (ms < 1e-3) return `${(ms * 1e6).toFixed(0)} ns`
  if (ms < 1) return `${(ms * 1e3).toPrecision(3)} µs`
  if (ms < 1000) return `${ms.toPrecision(3)} ms`
  return `${(ms / 1000).toPrecision(3)} s`
}

const ratioLabel = (r) => (Number.isFinite(r) ? `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×` : '—')

/** Indexes results by `size|op|contender`. */
export function index(results) {
  const byKey = new Map()
  for (const r of results.rows) byKey.set(`${r.size}|${r.op}|${r.contender}`, r)
  return (size, op, contender) => byKey.get(`${size}|${op}|${contender}`)
}

/** The faster node:fs variant's median for one size and op (the ratio baseline). */
export function fsBaseline(get, size, op) {
  const times = FS.map((c) => get(size, op, c)?.medianMs).filter(Number.isFinite)
  return times.length === 0 ? Number.NaN : Math.min(...times)
}

/** Speed relative to the faster node:fs variant: > 1 is faster than node:fs. */
export function speedup(get, size, op, contender) {
  return fsBaseline(get, size, op) / (get(size, op, contender)?.medianMs ?? Number.NaN)
}

/** The console table: one block per chunk size, medians and speed vs node:fs. */
export function consoleTable(results) {
  const get = index(results)
  const width = 19
  const lines = []
  lines.push('median time per op, and speed vs the faster node:fs variant (2.00× = twice as fast; < 1× = slower)')
  for (const size of results.sizes) {
    lines.push('')
    lines.push(sizeLabel(size).padEnd(30) + results.contenders.map((c) => c.label.padStart(width)).join(''))
    for (const [op, label] of OPS) {
      if (!results.ops.includes(op)) continue
      const cells = results.contenders.map((c) => {
        const r = get(size, op, c.id)
        if (r === undefined) return '—'.padStart(width)
        return `${timeLabel(r.medianMs)} ${ratioLabel(speedup(get, size, op, c.id)).padStart(7)}`.padStart(width)
      })
      lines.push(`  ${label}`.padEnd(30) + cells.join(''))
    }
  }
  return lines.join('\n')
}

/** Checks the issue's goals against the results: one verdict per goal, with its figures. */
export function goals(results) {
  const get = index(results)
  const out = []
  const has = (c) => results.contenders.some((x) => x.id === c)
  const biggest = Math.max(...results.sizes)
  const smallest = Math.min(...results.sizes)

  if (has('coldpage-file')) {
    const peers = ['fs-files', 'fs-fd', 'lmdb'].filter(has)
    const misses = []
    let cells = 0
    for (const size of results.sizes) {
      for (const op of results.ops) {
        const mine = get(size, op, 'coldpage-file')
        if (mine === undefined) continue
        for (const p of peers) {
          const theirs = get(size, op, p)
          if (theirs === undefined) continue
          cells++
          if (mine.medianMs > theirs.medianMs) {
            misses.push(`${sizeLabel(size)} ${op} vs ${p}: ${timeLabel(mine.medianMs)} vs ${timeLabel(theirs.medianMs)} (${ratioLabel(theirs.medianMs / mine.medianMs)})`)
          }
        }
      }
    }
    out.push({
      goal: 'coldpage file at least as fast as every node:fs variant and lmdb-js, every size and op',
      met: misses.length === 0,
      figure: `${cells - misses.length} of ${cells} comparisons won or tied`,
      misses,
    })
  }

  if (results.ops.includes('readAtMany') && has('fs-fd')) {
    for (const c of ['coldpage-file', 'coldpage-swap'].filter(has)) {
      const ratios = results.sizes.map((s) => [s, get(s, 'readAtMany', 'fs-fd')?.medianMs / get(s, 'readAtMany', c)?.medianMs])
      const worst = Math.min(...ratios.map(([, r]) => r))
      out.push({
        goal: `readAtMany of 1000 ranges ≥ 3× faster than 1000 fs.readSync calls (${c})`,
        met: worst >= 3,
        figure: ratios.map(([s, r]) => `${sizeLabel(s)} ${ratioLabel(r)}`).join(', '),
        misses: ratios.filter(([, r]) => !(r >= 3)).map(([s, r]) => `${sizeLabel(s)}: ${ratioLabel(r)}`),
      })
    }
  }

  if (results.ops.includes('readAt') && has('heap')) {
    const base = get(biggest, 'readAt', 'heap')?.medianMs
    for (const c of ['coldpage-file', 'coldpage-swap'].filter(has)) {
      const r = get(biggest, 'readAt', c)?.medianMs / base
      out.push({
        goal: `readAt of ${sizeLabel(biggest)} within 1.3× of the in-heap copy (${c})`,
        met: r <= 1.3,
        figure: `${timeLabel(get(biggest, 'readAt', c)?.medianMs)} vs ${timeLabel(base)}: ${ratioLabel(r)} the in-heap time`,
        misses: [],
      })
    }
  }

  if (results.ops.includes('take') && has('coldpage-swap') && biggest > smallest) {
    const t = results.sizes.map((s) => [s, get(s, 'take', 'coldpage-swap')?.medianMs])
    const growth = t.at(-1)[1] / t[0][1]
    const bytes = biggest / smallest
    out.push({
      goal: 'swap take O(1) (criterion: the biggest chunk takes < 10× the smallest, for ' + `${bytes}× the bytes)`,
      met: growth < 10,
      figure: `${t.map(([s, ms]) => `${sizeLabel(s)} ${timeLabel(ms)}`).join(', ')}; ${ratioLabel(growth)} from ${sizeLabel(smallest)} to ${sizeLabel(biggest)}`,
      misses: [],
    })
  }
  return out
}

export function goalsText(verdicts) {
  const lines = ['goals']
  for (const v of verdicts) {
    lines.push(`  [${v.met ? 'met' : 'MISSED'}] ${v.goal}: ${v.figure}`)
    for (const m of v.misses.slice(0, 40)) lines.push(`      miss: ${m}`)
    if (v.misses.length > 40) lines.push(`      … and ${v.misses.length - 40} more`)
  }
  return lines.join('\n')
}

/** The Markdown report: the machine, one table of medians (rows: op × size), the stand-ins, the goals. */
export function markdown(results, verdicts, charts) {
  const get = index(results)
  const m = results.machine
  const lines = []
  lines.push('# coldpage vs peers: medians from one run')
  lines.push('')
  lines.push(`${m.date} · ${m.cpu} (${m.cores} cores) · ${m.memGiB} GiB RAM · swap ${m.swap} · Linux ${m.kernel} · Node ${m.node} · scratch ${m.scratchDir} on ${m.scratchFs} · coldpage ${m.commit}`)
  lines.push('')
  lines.push(`Command: \`${results.command}\`. tinybench ${results.tinybench}, ${results.plan}. Warm page cache: every file-backed store reads from memory here; \`npm run bench:pressure\` covers the cold case.`)
  lines.push('')
  lines.push('Each cell: median time per op, then speed against the faster node:fs variant (2× = twice as fast, < 1× = slower).')
  lines.push('')
  lines.push(`| op | size | ${results.contenders.map((c) => c.label).join(' | ')} |`)
  lines.push(`| --- | ---: | ${results.contenders.map(() => '---:').join(' | ')} |`)
  for (const [op, label] of OPS) {
    if (!results.ops.includes(op)) continue
    for (const size of results.sizes) {
      const cells = results.contenders.map((c) => {
        const r = get(size, op, c.id)
        return r === undefined ? '—' : `${timeLabel(r.medianMs)} (${ratioLabel(speedup(get, size, op, c.id))})`
      })
      lines.push(`| ${label} | ${sizeLabel(size)} | ${cells.join(' | ')} |`)
    }
  }
  lines.push('')
  lines.push('Stand-ins where a peer has no such op:')
  lines.push('')
  for (const c of results.contenders) {
    for (const [op, note] of Object.entries(c.notes)) lines.push(`- ${c.label}, ${opLabel(op)}: ${note}`)
  }
  lines.push('')
  lines.push('## Goals')
  lines.push('')
  for (const v of verdicts) {
    lines.push(`- **${v.met ? 'met' : 'missed'}**: ${v.goal}: ${v.figure}`)
    for (const miss of v.misses) lines.push(`  - ${miss}`)
  }
  if (charts.length > 0) {
    lines.push('')
    lines.push('## Charts (throughput, log scale)')
    lines.push('')
    for (const file of charts) lines.push(`![${file}](${file})`)
  }
  lines.push('')
  return lines.join('\n')
}
