// Runs every JavaScript and TypeScript code block of the README as written, against
// the built package, so that an example that stops working fails `npm run
// test:readme` (and CI). The setup is what the README states above its first example:
// each block runs alone, as an ES module, in a fresh directory where `coldpage`
// (this checkout, built), `apache-arrow`, `@opentelemetry/api` and `@uwdata/flechette` are installed; TypeScript is compiled
// with `tsc`'s transpiler (types are not checked here: the types fixture does that),
// and a block whose first line is `// file: <name>` is saved as that file for the
// blocks after it instead of being run.
//
// Usage: node scripts/test-readme.mjs [README.md] [--only <line>]
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const ts = require('typescript')

const { values, positionals } = parseArgs({ options: { only: { type: 'string' } }, allowPositionals: true })
const readme = path.resolve(positionals[0] ?? path.join(ROOT, 'README.md'))
const LANGS = new Map([
  ['js', 'js'],
  ['javascript', 'js'],
  ['mjs', 'js'],
  ['ts', 'ts'],
  ['typescript', 'ts'],
  ['mts', 'ts'],
])

/** The fenced code blocks of `text`: language, first line number (1-based), code. */
function blocks(text) {
  const out = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+)\s*([\w-]*)/.exec(lines[i])
    if (open === null) continue
    const fence = open[2]
    const body = []
    let j = i + 1
    while (j < lines.length && !lines[j].trimStart().startsWith(fence)) body.push(lines[j++])
    out.push({ lang: open[3].toLowerCase(), line: i + 1, code: body.join('\n') + '\n' })
    i = j
  }
  return out
}

/** `code` as JavaScript an ES module can run: TypeScript (and `using`, which Node 20 cannot parse) compiled away. */
function compile(code, file) {
  const r = ts.transpileModule(code, {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: false },
  })
  const errors = (r.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  if (errors.length > 0) throw new Error(`does not compile: ${errors.join('; ')}`)
  return r.outputText
}

/** A directory where `coldpage` and `apache-arrow` resolve as in an app that installed them. */
function project() {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-readme-'))
  mkdirSync(path.join(dir, 'node_modules'))
  symlinkSync(ROOT, path.join(dir, 'node_modules', 'coldpage'), 'dir')
  for (const dep of ['apache-arrow', '@opentelemetry/api', '@uwdata/flechette']) {
    const from = path.join(ROOT, 'node_modules', dep)
    mkdirSync(path.dirname(path.join(dir, 'node_modules', dep)), { recursive: true })
    symlinkSync(from, path.join(dir, 'node_modules', dep), 'dir')
  }
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'readme-example', private: true, type: 'module' }))
  return dir
}

// Like a fresh shell: no COLDPAGE_* variables from the caller's environment.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COLDPAGE_')))

const all = blocks(readFileSync(readme, 'utf8')).filter((b) => LANGS.has(b.lang))
const dir = project()
let failed = 0
let ran = 0
try {
  for (const block of all) {
    const kind = LANGS.get(block.lang)
    const named = /^\/\/ file: (\S+)/.exec(block.code)
    if (named !== null) {
      // A file the next blocks use (a worker script, say), saved as written.
      writeFileSync(path.join(dir, named[1]), block.code)
      continue
    }
    if (values.only !== undefined && String(block.line) !== values.only) continue
    const where = `${path.basename(readme)}:${block.line} (${block.lang})`
    let js
    try {
      js = compile(block.code, `block-${block.line}.${kind === 'ts' ? 'mts' : 'mjs'}`)
    } catch (err) {
      console.log(`FAIL ${where}: ${err.message}`)
      failed++
      continue
    }
    const file = path.join(dir, `block-${block.line}.mjs`)
    writeFileSync(file, js)
    const started = Date.now()
    const r = spawnSync(process.execPath, [file], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 })
    ran++
    const ms = Date.now() - started
    if (r.status === 0) {
      console.log(`ok   ${where} ${ms} ms`)
    } else {
      failed++
      const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`
      console.log(`FAIL ${where}: ${why}\n${(r.stderr || r.stdout).trim().replace(/^/gm, '     ')}`)
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
console.log(`${ran - failed}/${ran} README blocks ran${failed > 0 ? `, ${failed} failed` : ''}`)
if (ran === 0) {
  console.log('no block ran')
  process.exitCode = 1
}
if (failed > 0) process.exitCode = 1
