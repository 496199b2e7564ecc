#!/usr/bin/env node
/**
 * The `coldpage` command: `coldpage doctor [--json]` reports what the pager can
 * do on this machine and where it keeps scratch space.
 */
import { type DoctorReport, doctor } from './index.js'

const USAGE = `usage: coldpage doctor [--json]

  doctor   report swap, MADV_COLD, scratch dir, hole punching, zero-copy
           support, the backend 'auto' picks and the memory-pressure signal
  --json   print the report as JSON`

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`
}

function yes(flag: boolean): string {
  return flag ? 'yes' : 'no'
}

/** Renders the doctor report for people. */
export function formatDoctor(r: DoctorReport): string {
  const rows: [string, string][] = [
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

/** Runs the CLI; returns the exit code. */
export function main(argv: readonly string[]): number {
  const args = argv.filter((a) => a !== '--json')
  const json = args.length !== argv.length
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(USAGE)
    return 0
  }
  if (args.length !== 1 || args[0] !== 'doctor') {
    console.error(USAGE)
    return 2
  }
  const report = doctor()
  console.log(json ? JSON.stringify(report, null, 2) : formatDoctor(report))
  return 0
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2))
}
