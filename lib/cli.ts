#!/usr/bin/env node
/**
 * The `coldpage` command: `coldpage doctor [--json]` reports what the pager can
 * do on this machine and where it keeps scratch space; `--version`, `--help`.
 * Exit codes: 0 healthy, 1 when doctor finds the chosen backend unusable, 2 for
 * bad usage or a bad config or environment (one line naming it, no stack trace).
 */
import { parseArgs } from 'node:util'

import { FIELDS } from './config-fields.js'
import type { DoctorReport } from './index.js'

/** The `COLDPAGE_*` variables, one line each, from the config's table. */
function environment(): string {
  const rows = [
    ...Object.values(FIELDS).map((f) => [f.env, `${f.envText} (default ${f.default})`]),
    ['COLDPAGE_CONFIG', 'a JSON file of config fields, applied and watched'],
  ]
  const width = Math.max(...rows.map(([name]) => name!.length)) + 2
  return rows.map(([name, text]) => `  ${name!.padEnd(width)}${text!}`).join('\n')
}

const USAGE = `usage: coldpage doctor [--json]
       coldpage --version | --help

  doctor      report the version and binary, swap, MADV_COLD, scratch dir, hole
              punching, zero-copy support, the backend in use and the backend
              'auto' picks, and the memory-pressure signal
  --json      print the report as JSON
  --version   print coldpage's version
  --help      print this help

exit status: 0 healthy, 1 when the backend in use does not work here,
2 for bad usage or an invalid COLDPAGE_* environment or config file

environment (read once per process):
${environment()}`

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`
}

function yes(flag: boolean): string {
  return flag ? 'yes' : 'no'
}

/** Renders the doctor report for people. */
export function formatDoctor(r: DoctorReport): string {
  const rows: [string, string][] = [
    ['coldpage', `${r.version} (${r.target}${r.libc === null ? '' : `, ${r.libc}`})`],
    ['platform', `${r.platform} (kernel ${r.kernel})`],
    ['runtime', `node ${r.runtime.node}${r.runtime.electron ? `, electron ${r.runtime.electron}` : ''}, napi ${r.runtime.napi}`],
    ['swap', r.swapActive ? `active, ${gib(r.swapTotalBytes)}` : 'none'],
    ['page out', r.pageOutWorks ? r.pageOut : `no: ${r.pageOut}`],
    ['scratch dir', r.scratchDir],
    ['  file system', `${r.scratchFs}${r.scratchIsRam ? ' (in RAM)' : ''}`],
    ['  free', gib(r.scratchFreeBytes)],
    ['  usable', r.scratchError === null ? 'yes' : `no: ${r.scratchError}`],
    ...(r.scratchFallback === null ? [] : [['  private dir', `fallback: ${r.scratchFallback}`] as [string, string]]),
    ['hole punching', yes(r.holePunching)],
    ['zero-copy', r.zeroCopy ? 'yes' : `no: ${r.zeroCopyReason}`],
    ["'auto' picks", `${r.auto.backend}: ${r.auto.reason}`],
    ['backend in use', r.chosen.usable ? r.chosen.backend : `${r.chosen.backend}: ${r.chosen.problem}`],
    ['memory pressure', `${r.pressure.level} (${r.pressure.source}): ${r.pressure.detail}`],
    [
      'encryption',
      `${r.encryption.aead}, key ${
        r.encryption.keyLocked === null
          ? 'not made yet'
          : r.encryption.keyLocked
            ? 'locked in RAM'
            : `not locked: ${r.encryption.keyLockError}`
      }`,
    ],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`)
  for (const w of r.warnings) lines.push(`warning: ${w}`)
  return lines.join('\n')
}

/** One line for an error: its message with line breaks folded, never a stack. */
function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/\s*\n\s*/g, ' ')
}

/** The CLI's streams (the process's by default; tests pass their own). */
export interface Io {
  out(line: string): void
  err(line: string): void
}

const PROCESS_IO: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}

/** Runs the CLI; returns the exit code. */
export function main(argv: readonly string[], io: Io = PROCESS_IO): number {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { json: { type: 'boolean' }, version: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    })
  } catch (err) {
    io.err(`coldpage: ${oneLine(err)}`)
    io.err(USAGE)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.out(USAGE)
    return 0
  }
  if (values.version) {
    io.out((require('../package.json') as { version: string }).version)
    return 0
  }
  if (positionals.length !== 1 || positionals[0] !== 'doctor') {
    io.err(positionals.length === 0 ? 'coldpage: no command given' : `coldpage: unknown command ${JSON.stringify(positionals.join(' '))}`)
    io.err(USAGE)
    return 2
  }
  let report: DoctorReport
  try {
    // Loaded here, not imported: loading applies the COLDPAGE_* environment, and an
    // invalid one must be a line naming the variable, not a stack trace.
    const coldpage = require('./index.js') as typeof import('./index.js')
    report = coldpage.doctor()
  } catch (err) {
    io.err(`coldpage: ${oneLine(err)}`)
    return 2
  }
  io.out(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report))
  return report.chosen.usable ? 0 : 1
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2))
}
