// The release workflow's guards: every runs-on label of CI.yml is one GitHub
// hosts (.github/runner-labels.txt), matrix values included.
import { readFileSync } from 'node:fs'
import * as path from 'node:path'

import test from 'ava'

import { ROOT } from './helpers.js'

interface LabelCheck {
  readAllowed(file?: string): Set<string>
  checkWorkflow(workflow: unknown, allowed: Set<string>, name?: string): { problems: string[]; labels: string[] }
}
const yaml = require('js-yaml') as { load(text: string): unknown }
const load = (): Promise<LabelCheck> => import(path.join(ROOT, 'scripts', 'check-runner-labels.mjs')) as Promise<LabelCheck>

test('CI.yml runs every job on a listed runner label, and the list has no retired macos-13', async (t) => {
  const { readAllowed, checkWorkflow } = await load()
  const allowed = readAllowed()
  t.false(allowed.has('macos-13'))
  t.true(allowed.has('macos-15-intel') && allowed.has('windows-11-arm') && allowed.has('ubuntu-24.04-arm'))
  const { problems, labels } = checkWorkflow(yaml.load(readFileSync(path.join(ROOT, '.github', 'workflows', 'CI.yml'), 'utf8')), allowed)
  t.deepEqual(problems, [])
  // A test job on each runner platform: x64 and arm64 of Linux, macOS and Windows.
  for (const label of ['ubuntu-latest', 'ubuntu-24.04-arm', 'macos-15-intel', 'macos-14', 'windows-latest', 'windows-11-arm']) {
    t.true(labels.includes(label), label)
  }
})

test('a label outside the list fails, in a matrix axis, an include entry or a plain runs-on', async (t) => {
  const { checkWorkflow } = await load()
  const allowed = new Set(['ubuntu-latest', 'macos-14'])
  const workflow = {
    jobs: {
      plain: { 'runs-on': 'macos-13' },
      axis: { 'runs-on': '${{ matrix.host }}', strategy: { matrix: { host: ['ubuntu-latest', 'windows-2019'] } } },
      nested: {
        'runs-on': '${{ matrix.settings.host }}',
        strategy: { matrix: { settings: [{ host: 'macos-14' }], include: [{ settings: { host: 'macos-12' } }] } },
      },
      list: { 'runs-on': ['self-hosted', 'ubuntu-latest'] },
      unknown: { 'runs-on': '${{ inputs.runner }}' },
      ok: { 'runs-on': { labels: 'ubuntu-latest' } },
    },
  }
  const { problems } = checkWorkflow(workflow, allowed, 'w.yml')
  t.deepEqual(problems, [
    'w.yml: job plain runs on "macos-13", which is not in .github/runner-labels.txt',
    'w.yml: job axis runs on "windows-2019", which is not in .github/runner-labels.txt',
    'w.yml: job nested runs on "macos-12", which is not in .github/runner-labels.txt',
    'w.yml: job list runs on "self-hosted", which is not in .github/runner-labels.txt',
    'w.yml: job unknown: runs-on "${{ inputs.runner }}" does not resolve to literal labels',
  ])
})
