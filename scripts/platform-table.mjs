#!/usr/bin/env node
// The README's Platforms table, rendered from one description per platform, and the
// checks that tie that description to what the test scripts observe.
//
//   node scripts/platform-table.mjs --write    rewrite the README block from PLATFORMS
//   node scripts/platform-table.mjs --check    fail when the README block differs (npm run lint:package)
//   node scripts/platform-table.mjs --facts report.json...
//                                              fail when a runtime suite report (its `platform`
//                                              facts, from doctor() on the machine that ran it)
//                                              contradicts its platform's column
//
// runtimes/run.mjs (Linux) and scripts/windows/report.mjs (Windows under Wine) call
// checkFacts() on every report, so the column of each platform tested here is checked
// by the run that tests it. macOS has no machine here: its column is checked only by
// `npm run lint:cross` compiling the code it describes.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const MIN_AUTO_SWAP = 64 * 2 ** 20 // selector::MIN_AUTO_SWAP_BYTES

/** What each platform provides. `pageOut` is the swap backend's primitive as doctor() names it. */
export const PLATFORMS = {
  linux: {
    title: 'Linux',
    file: '`O_TMPFILE` arena, `pwritev`/`preadv`, `fallocate(PUNCH_HOLE)`',
    swap: 'anonymous memory + `MADV_COLD`',
    pageOut: 'madvise(MADV_COLD)',
    auto: '`swap` with ≥ 64 MiB of active swap and a working `MADV_COLD`, else `file`',
    zeroCopy: 'yes (not in Electron >= 21)',
    refused: 'a symlink, not a directory, another user\'s, world-writable without sticky bit; a squatted `coldpage-<uid>` gives a fresh unpredictable subdir instead',
    testedHere: '`npm test`, `npm run test:runtimes` (Node 20/22/24/26, Bun); `npm run test:arm64`: the packed tarball\'s runtime suite under arm64 Node 22 in qemu-user (cross-built); `npm run check:glibc`: the release build needs glibc <= 2.17; `npm run lint:cross`: clippy for `aarch64-unknown-linux-musl`',
    ci: 'build (gnu against glibc 2.17, musl), ava and runtimes on `ubuntu-latest` (x64) and `ubuntu-24.04-arm`; ava in Debian 11 (`node:20-bullseye`) and Alpine on both archs; Rust tests on both',
  },
  win32: {
    title: 'Windows',
    file: 'delete-on-close, temporary, unshared, sparse arena; overlapped positioned `ReadFile`/`WriteFile` (parallel reads); `FSCTL_SET_ZERO_DATA` (where it fails, e.g. Wine, freed extents stay allocated and are reused)',
    swap: '`VirtualAlloc` memory + `VirtualUnlock` (working-set trim)',
    pageOut: 'VirtualUnlock',
    auto: '`swap` with a paging file of ≥ 64 MiB, else `file` (Wine: `file`, its paging file is 8 KiB)',
    zeroCopy: 'yes (not in Electron >= 21)',
    refused: 'a reparse point (junction, symlink) or not a directory; a `coldpage-<user>` that is a reparse point or another user\'s (owner SID) gives a fresh unpredictable subdir instead',
    testedHere: '`npm run test:windows`: core tests and the packed tarball\'s runtime suite under Windows Node 20 and 22 in Wine 8 (cross-built with mingw); Node 24/26 do not start under Wine 8; `npm run lint:cross`: clippy for `x86_64-pc-windows-msvc` and `aarch64-pc-windows-msvc`',
    ci: 'build (MSVC), ava, Rust tests on `windows-latest` (x64) and `windows-11-arm` (arm64)',
  },
  darwin: {
    title: 'macOS',
    file: '0600 `O_EXCL\\|O_NOFOLLOW` arena unlinked at once, `F_PUNCHHOLE`',
    swap: '`ERR_COLDPAGE_UNSUPPORTED`: no public range hint to page out',
    pageOut: null,
    auto: '`file`',
    zeroCopy: 'yes (not in Electron >= 21)',
    refused: 'as Linux',
    testedHere: '`npm run lint:cross`: clippy `-D warnings` for `aarch64-apple-darwin` and `x86_64-apple-darwin` (no macOS machine: not run)',
    ci: 'build, ava, Rust tests on `macos-14` (arm64) and `macos-15-intel` (x64)',
  },
}

const ROWS = [
  ['`file` backend', 'file'],
  ['`swap` backend', 'swap'],
  ["`'auto'` picks", 'auto'],
  ['zero-copy views / take', 'zeroCopy'],
  ['scratch dir refused when', 'refused'],
  ['tested here', 'testedHere'],
  ['tested in CI.yml', 'ci'],
]

/** The Markdown table. */
export function renderTable() {
  const cols = Object.values(PLATFORMS)
  const lines = [`| | ${cols.map((c) => c.title).join(' | ')} |`, `| --- |${cols.map(() => ' --- |').join('')}`]
  for (const [label, key] of ROWS) lines.push(`| ${label} | ${cols.map((c) => c[key]).join(' | ')} |`)
  return lines.join('\n')
}

/** What the column says `auto` must pick, given what doctor() observed. */
function expectedAuto(os, facts) {
  if (PLATFORMS[os].pageOut === null) return 'file'
  return facts.swapTotalBytes >= MIN_AUTO_SWAP && facts.pageOutWorks ? 'swap' : 'file'
}

/**
 * Problems (strings) where a suite report's facts contradict its platform's column;
 * an empty array when they agree. `facts` is the report's `platform` object.
 */
export function checkFacts(facts, { runtime = 'node' } = {}) {
  if (facts === undefined) return ['the report has no platform facts (an older runtimes/suite.mjs?)']
  const col = PLATFORMS[facts.os]
  if (col === undefined) return [`no column for platform ${facts.os}`]
  const problems = []
  if (col.pageOut === null) {
    if (facts.pageOutWorks) problems.push(`${col.title}: the table says swap is unsupported, doctor() says ${facts.pageOut} works`)
  } else if (facts.pageOut !== col.pageOut) {
    problems.push(`${col.title}: the table's swap primitive is ${col.pageOut}, doctor() says ${facts.pageOut}`)
  }
  const auto = expectedAuto(facts.os, facts)
  if (facts.auto.backend !== auto) {
    problems.push(`${col.title}: the table says auto picks ${auto} here (swap ${facts.swapTotalBytes} bytes, page-out ${facts.pageOutWorks ? 'works' : 'fails'}), doctor() picked ${facts.auto.backend}: ${facts.auto.reason}`)
  }
  // Zero-copy is claimed for every runtime but Electron's cage (and the forced copy mode).
  if (runtime === 'node' && !facts.zeroCopy && !/COLDPAGE_NO_EXTERNAL_BUFFERS|Electron/.test(facts.zeroCopyReason ?? '')) {
    problems.push(`${col.title}: the table says views are zero-copy, this Node copies: ${facts.zeroCopyReason}`)
  }
  if (!facts.holePunching && !facts.warnings.some((w) => /cannot be deallocated/.test(w))) {
    problems.push(`${col.title}: freed extents are not deallocated and doctor() does not warn about it`)
  }
  return problems
}

const README = fileURLToPath(new URL('../README.md', import.meta.url))
const START = '<!-- platforms:start (generated by `node scripts/platform-table.mjs --write`) -->'
const END = '<!-- platforms:end -->'

function readmeBlock(text) {
  const a = text.indexOf(START)
  const b = text.indexOf(END)
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} ... ${END} block`)
  return { a: a + START.length, b, current: text.slice(a + START.length, b).trim() }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, ...files] = process.argv.slice(2)
  const text = readFileSync(README, 'utf8')
  if (mode === '--write') {
    const { a, b } = readmeBlock(text)
    writeFileSync(README, `${text.slice(0, a)}\n${renderTable()}\n${text.slice(b)}`)
    console.log('README.md: Platforms table written')
  } else if (mode === '--check') {
    if (readmeBlock(text).current !== renderTable()) {
      console.error('README.md: the Platforms table is not what scripts/platform-table.mjs renders; run it with --write')
      process.exit(1)
    }
    console.log('README.md: Platforms table matches scripts/platform-table.mjs')
  } else if (mode === '--facts') {
    let bad = 0
    for (const f of files) {
      const report = JSON.parse(readFileSync(f, 'utf8'))
      for (const p of checkFacts(report.platform, report)) {
        console.error(`${f}: ${p}`)
        bad++
      }
    }
    process.exit(bad === 0 ? 0 : 1)
  } else {
    console.error('usage: platform-table.mjs --write | --check | --facts <report.json>...')
    process.exit(2)
  }
}
