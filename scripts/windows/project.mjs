#!/usr/bin/env node
// Part of `npm run test:windows` (scripts/test-windows.sh), run by the Linux
// Node: packs the built package with the cross-built Windows addon in it and
// installs the tarball plus apache-arrow into a fresh project, the way
// runtimes/run.mjs does for the Linux runtimes (its pack() and makeProject()).
// npm runs on Linux here: coldpage's JS and apache-arrow are pure JavaScript,
// and the Windows addon is inside the tarball, so the installed tree is the one
// a Windows user gets.
//
// Usage: node scripts/windows/project.mjs <work dir> <addon file name>
// Prints the project directory as its last line.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const [work, addon] = process.argv.slice(2)
if (!work || !addon) {
  console.error('usage: node scripts/windows/project.mjs <work dir> <addon file name>')
  process.exit(2)
}

function npmRun(args, cwd) {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

if (!existsSync(join(ROOT, 'dist', 'index.js')) || !existsSync(join(ROOT, 'dist', 'arrow.mjs'))) {
  throw new Error('no dist/: run `npm run build:ts` first')
}
if (!existsSync(join(ROOT, addon))) throw new Error(`no ${addon} at the repo root`)

const out = npmRun(['pack', '--json', '--pack-destination', work], ROOT)
const [{ filename, files }] = JSON.parse(out.slice(out.indexOf('[')))
const paths = files.map((f) => f.path)
if (!paths.includes(addon)) throw new Error(`the packed tarball lacks ${addon} (has ${paths.filter((p) => p.endsWith('.node')).join(', ') || 'no .node'})`)
console.log(`packed ${filename} with ${paths.filter((p) => p.endsWith('.node')).join(', ')}`)

const project = join(work, 'app')
mkdirSync(project)
writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'coldpage-windows-app', version: '1.0.0', private: true }))
let arrow = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies['apache-arrow']
try {
  arrow = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'apache-arrow', 'package.json'), 'utf8')).version
} catch {
  // No repo install (a bare checkout): the devDependency range will do.
}
npmRun(['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', join(work, filename), `apache-arrow@${arrow}`], project)
copyFileSync(join(ROOT, 'runtimes', 'suite.mjs'), join(project, 'suite.mjs'))
copyFileSync(join(ROOT, 'benches', 'sanity.mjs'), join(project, 'sanity.mjs'))
console.log(`installed into ${project} with apache-arrow@${arrow}`)
console.log(project)
