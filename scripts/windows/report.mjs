#!/usr/bin/env node
// Part of `npm run test:windows` (scripts/test-windows.sh), run by the Linux
// Node after runtimes/suite.mjs ran under a Windows node.exe in Wine: reads the
// suite's --report JSON (and the captured output when there is none) and
// prints what passed, what failed, what was degraded and why.
//
// Usage: node scripts/windows/report.mjs <label> <report.json> <stdout file> <stderr file> <exit status> <seconds>
// Exit status: 0 pass, 1 fail, 3 the runtime could not start under this Wine.
import { existsSync, readFileSync } from 'node:fs'
import { checkFacts } from '../platform-table.mjs'

const [label, reportFile, stdoutFile, stderrFile, status, seconds] = process.argv.slice(2)
const read = (f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')
const output = `${read(stdoutFile)}\n${read(stderrFile)}`

let report
try {
  report = JSON.parse(readFileSync(reportFile, 'utf8'))
} catch {
  report = undefined
}

if (report === undefined) {
  // V8 aborts before any JavaScript runs when Wine refuses its address-space
  // reservation (Node >= 24 under Wine 8): not a coldpage failure.
  const v8 = output.split('\n').find((l) => /Fatal process out of memory|Fatal error in|V8 (error|fatal)/i.test(l))
  if (v8 !== undefined && !/\bok {2}/.test(output)) {
    console.log(`${label}: cannot start under this Wine: ${v8.replace(/^#\s*/, '').trim()}`)
    console.log(`RESULT\t${label}\tcannot start under this Wine (${v8.replace(/^#\s*/, '').trim()})`)
    process.exit(3)
  }
  const tail = output.trim().split('\n').slice(-25).join('\n  ')
  console.log(`${label}: FAIL: exit ${status}, no report. Last output:\n  ${tail}`)
  console.log(`RESULT\t${label}\tFAIL (exit ${status}, no report)`)
  process.exit(1)
}

const total = report.passed + report.failed
const tableProblems = checkFacts(report.platform, report)
for (const p of tableProblems) console.log(`  FAIL README Platforms table: ${p}`)
const ok = report.failed === 0 && status === '0' && tableProblems.length === 0
for (const r of report.results) {
  if (!r.ok) console.log(`  FAIL ${r.name}\n    ${String(r.error).split('\n').slice(0, 12).join('\n    ')}`)
}
console.log(`${label}: node ${report.version} (node-api ${report.napi}), zero-copy ${report.zeroCopy ? 'on' : `off: ${report.zeroCopyReason}`}`)
console.log(`  passed ${report.passed}/${total}${report.failed ? `, failed: ${report.results.filter((r) => !r.ok).map((r) => r.name).join('; ')}` : ''}`)
for (const d of report.degraded) console.log(`  degraded: ${d.capability}: ${d.reason}`)
for (const n of report.notes) console.log(`  note: ${n}`)
const degraded = report.degraded.length ? `, ${report.degraded.length} degraded` : ''
console.log(
  `RESULT\t${label}\t${ok ? `pass (${report.passed}/${total}, ${seconds} s${degraded})` : `FAIL (${report.failed} of ${total} failed${status !== '0' && report.failed === 0 ? `, exit ${status}` : ''}${tableProblems.length ? `, ${tableProblems.length} contradiction(s) of the README's Platforms table` : ''})`}`,
)
process.exit(ok ? 0 : 1)
