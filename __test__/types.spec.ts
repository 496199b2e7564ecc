// Types that stand alone: a TypeScript strict project (skipLibCheck: false) with
// the packed coldpage installed and no apache-arrow type-checks against the main
// entry, through import and require (__test__/fixtures/ts-strict).
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { ROOT } from './helpers.js'

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

test('a strict TypeScript project with coldpage alone type-checks (skipLibCheck: false)', (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'coldpage-types-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const out = execFileSync(npm, ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8' })
  const [{ filename }] = JSON.parse(out.slice(out.indexOf('['))) as [{ filename: string }]
  writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'typed-app', version: '1.0.0', private: true }))
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', path.join(work, filename)], { cwd: work, stdio: 'pipe' })
  t.throws(() => require.resolve('apache-arrow', { paths: [work] }), undefined, 'apache-arrow must not be resolvable from the fixture')
  cpSync(path.join(__dirname, 'fixtures', 'ts-strict'), work, { recursive: true })
  writeFileSync(
    path.join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        target: 'ES2022',
        lib: ['ES2023', 'ESNext.Disposable'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['index.mts', 'main.cts'],
    }),
  )
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  let output = ''
  let code = 0
  try {
    output = execFileSync(process.execPath, [tsc, '-p', work], { cwd: work, encoding: 'utf8' })
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string }
    code = e.status ?? 1
    output = `${e.stdout ?? ''}${e.stderr ?? ''}`
  }
  t.is(code, 0, output)
})
