// Fails when a workflow under .github/workflows would run a job on a runner label
// that is not in .github/runner-labels.txt (the labels GitHub hosts today, with
// their source and date). `runs-on` may be a string, a list, a `{ labels }` object
// or an expression over the job's matrix (`${{ matrix.settings.host }}`): every
// value the matrix can give it (its axes and `include` entries) is checked, and an
// expression this script cannot resolve to literals fails too.
//
//   node scripts/check-runner-labels.mjs [workflow.yml ...]
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// js-yaml (a dev dependency) reads the workflows.
const yaml = createRequire(import.meta.url)('js-yaml')

const root = fileURLToPath(new URL('..', import.meta.url))

/** The labels of .github/runner-labels.txt (first word of each non-comment line). */
export function readAllowed(file = join(root, '.github', 'runner-labels.txt')) {
  return new Set(
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim().split(/\s+/)[0])
      .filter(Boolean),
  )
}

/** Every value the matrix path `a.b.c` takes over the axes and `include` entries. */
function matrixValues(matrix, path) {
  if (!matrix || typeof matrix !== 'object') return null
  const [head, ...rest] = path
  const rows = []
  if (Array.isArray(matrix[head])) rows.push(...matrix[head])
  for (const entry of matrix.include ?? []) if (entry && head in entry) rows.push(entry[head])
  if (rows.length === 0) return null
  const values = rows.map((row) => rest.reduce((v, key) => (v && typeof v === 'object' ? v[key] : undefined), row))
  return values.some((v) => typeof v !== 'string') ? null : values
}

/** Resolves one `runs-on` string to the literal labels it can stand for, or null. */
function resolve(value, matrix) {
  const whole = /^\$\{\{\s*matrix\.([\w.-]+)\s*\}\}$/.exec(value.trim())
  if (whole) return matrixValues(matrix, whole[1].split('.'))
  if (value.includes('${{')) return null
  return [value]
}

/**
 * The problems of one parsed workflow: `runs-on` labels outside `allowed`, and
 * `runs-on` values that cannot be resolved to labels.
 */
export function checkWorkflow(workflow, allowed, name = 'workflow') {
  const problems = []
  const labels = []
  for (const [id, job] of Object.entries(workflow?.jobs ?? {})) {
    if (job.uses) continue // a reusable workflow: its own file is checked
    let runsOn = job['runs-on']
    if (runsOn && typeof runsOn === 'object' && !Array.isArray(runsOn)) runsOn = runsOn.labels
    const entries = Array.isArray(runsOn) ? runsOn : [runsOn]
    for (const entry of entries) {
      if (typeof entry !== 'string') {
        problems.push(`${name}: job ${id} has no runs-on label this check can read (${JSON.stringify(job['runs-on'])})`)
        continue
      }
      const resolved = resolve(entry, job.strategy?.matrix)
      if (!resolved) {
        problems.push(`${name}: job ${id}: runs-on ${JSON.stringify(entry)} does not resolve to literal labels`)
        continue
      }
      for (const label of resolved) {
        labels.push(label)
        if (!allowed.has(label)) problems.push(`${name}: job ${id} runs on "${label}", which is not in .github/runner-labels.txt`)
      }
    }
  }
  return { problems, labels }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = join(root, '.github', 'workflows')
  const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(dir, f))
  const allowed = readAllowed()
  const problems = []
  const used = new Set()
  for (const file of files) {
    const result = checkWorkflow(yaml.load(readFileSync(file, 'utf8')), allowed, file.slice(root.length))
    problems.push(...result.problems)
    for (const label of result.labels) used.add(label)
  }
  if (problems.length) {
    console.error(`runner labels: ${problems.length} problem(s)\n- ${problems.join('\n- ')}`)
    process.exit(1)
  }
  console.log(`runner labels: ${files.length} workflow(s) use ${[...used].sort().join(', ')}; all in .github/runner-labels.txt`)
}
