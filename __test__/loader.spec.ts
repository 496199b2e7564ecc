// Loading the native binding where it cannot load: the error says why, with the
// fix, in its first line (lib/load-error.ts), instead of the generated loader's
// "npm has a bug related to optional dependencies".
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { ColdpageError } from '../lib/errors.js'
import { currentHost, explainLoadFailure, parseTarget, type Host } from '../lib/load-error.js'
import { ROOT, node } from './helpers.js'

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string
  version: string
  napi: { targets: string[] }
}
const suffixes = manifest.napi.targets.map((t) => parseTarget(t).suffix)

/** Runs `require(entry)` in a child and prints the error's name, code and message as JSON. */
const tryRequire = (entry: string) =>
  `try { require(${JSON.stringify(entry)}); console.log('{"loaded":true}') } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }`

test('every napi target maps to an npm/<suffix> package of that name', (t) => {
  t.deepEqual(parseTarget('aarch64-unknown-linux-musl'), { suffix: 'linux-arm64-musl', platform: 'linux', arch: 'arm64', libc: 'musl' })
  t.deepEqual(parseTarget('aarch64-pc-windows-msvc'), { suffix: 'win32-arm64-msvc', platform: 'win32', arch: 'arm64', libc: null })
  t.deepEqual(parseTarget('x86_64-apple-darwin'), { suffix: 'darwin-x64', platform: 'darwin', arch: 'x64', libc: null })
  // The same suffixes napi-rs's own loader and `napi prepublish` use.
  const { parseTriple } = require('@napi-rs/cli') as { parseTriple(triple: string): { platformArchABI: string } }
  t.deepEqual(suffixes, manifest.napi.targets.map((triple) => parseTriple(triple).platformArchABI))
  for (const suffix of suffixes) {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'npm', suffix, 'package.json'), 'utf8')) as { name: string }
    t.is(pkg.name, `${manifest.name}-${suffix}`)
  }
})

test('under process.platform "aix" loading throws ERR_COLDPAGE_UNSUPPORTED naming the host and listing the targets', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'coldpage-loader-'))
  try {
    const preload = path.join(dir, 'aix.cjs')
    writeFileSync(preload, "Object.defineProperty(process, 'platform', { value: 'aix' })\n")
    const r = await node(['--require', preload, '-e', tryRequire(path.join(ROOT, 'dist', 'index.js'))])
    t.is(r.code, 0, r.stderr)
    const e = JSON.parse(r.stdout) as { name: string; code: string; message: string }
    t.is(e.name, 'ColdpageError')
    t.is(e.code, 'ERR_COLDPAGE_UNSUPPORTED')
    const first = e.message.split('\n')[0] ?? ''
    t.true(first.startsWith(`coldpage has no prebuilt binary for platform aix, arch ${process.arch}, libc n/a.`), first)
    for (const suffix of suffixes) t.true(first.includes(suffix), `${suffix} missing from: ${first}`)
    t.false(e.message.includes('npm has a bug'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a missing platform package (optional dependency) says which one to install', async (t) => {
  const host = currentHost()
  const target = manifest.napi.targets.map(parseTarget).find((x) => x.platform === host.platform && x.arch === host.arch && x.libc === host.libc)
  if (target === undefined) {
    t.pass(`no prebuilt target for ${host.platform}-${host.arch}: the unsupported case covers this host`)
    return
  }
  // The package as installed, but without the binary beside it and without the
  // platform package: what npm leaves when it skipped the optional dependency.
  const app = mkdtempSync(path.join(tmpdir(), 'coldpage-loader-'))
  try {
    const pkg = path.join(app, 'node_modules', 'coldpage')
    mkdirSync(pkg, { recursive: true })
    for (const entry of ['package.json', 'index.js', 'dist']) cpSync(path.join(ROOT, entry), path.join(pkg, entry), { recursive: true })
    t.false(existsSync(path.join(pkg, `coldpage.${target.suffix}.node`)))
    const r = await node(['-e', tryRequire('coldpage')], {}, app)
    t.is(r.code, 0, r.stderr)
    const e = JSON.parse(r.stdout) as { name: string; code: string; message: string }
    t.is(e.code, 'ERR_COLDPAGE_UNSUPPORTED')
    t.true(
      e.message.startsWith(`coldpage's binary for ${host.platform}-${host.arch}`) &&
        e.message.includes(`is not installed: run \`npm install coldpage-${target.suffix}@${manifest.version}\``),
      e.message,
    )
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
})

/** The error chain the generated loader builds: one Error per failure, each the cause of the next. */
function loaderError(...failures: string[]): Error {
  const chain = failures.reduce<Error | null>((cause, message) => {
    const e = new Error(message)
    e.cause = cause
    return e
  }, null)
  const top = new Error('Cannot find native binding. npm has a bug related to optional dependencies (https://github.com/npm/cli/issues/4828).')
  top.cause = chain
  return top
}

const linux: Host = { platform: 'linux', arch: 'x64', libc: 'glibc', glibcVersion: '2.28', deno: null }

test('a glibc older than the binary needs is named, with both versions, in the first line', (t) => {
  const error = loaderError(
    "/app/node_modules/coldpage-linux-x64-gnu/coldpage.linux-x64-gnu.node: /lib64/libc.so.6: version `GLIBC_2.34' not found (required by /app/node_modules/coldpage-linux-x64-gnu/coldpage.linux-x64-gnu.node)",
    "Cannot find module 'coldpage-wasm32-wasi'",
  )
  const e = explainLoadFailure(error, linux, manifest)
  t.true(e instanceof ColdpageError)
  t.is(e.code, 'ERR_COLDPAGE_UNSUPPORTED')
  t.true(e.message.startsWith("coldpage's linux-x64-gnu binary needs glibc 2.34, this system has glibc 2.28: upgrade the OS"), e.message)
  t.is(e.cause, error)
})

test("Deno without --allow-ffi is told to add it, not npm's optional-dependency advice", (t) => {
  const error = loaderError(
    'Requires ffi access to "/app/node_modules/coldpage/coldpage.linux-x64-gnu.node", run again with the --allow-ffi flag',
    "Cannot find module 'coldpage-linux-x64-gnu'",
    "Cannot find module 'coldpage-wasm32-wasi'",
  )
  const e = explainLoadFailure(error, { ...linux, deno: '2.9.0' }, manifest)
  t.true(e.message.startsWith("coldpage needs Deno's FFI permission to load its native binding: run deno with --allow-ffi (or -A)."), e.message)
})

test('any other load failure names the native error, not the WASI fallback', (t) => {
  const error = loaderError('/app/coldpage.linux-x64-gnu.node: invalid ELF header', "Cannot find module 'coldpage-wasm32-wasi'")
  const e = explainLoadFailure(error, linux, manifest)
  t.is(e.message, "coldpage's linux-x64-gnu binary did not load: /app/coldpage.linux-x64-gnu.node: invalid ELF header")
})

test('musl Linux on an arch without a musl binary is unsupported, with libc named', (t) => {
  const e = explainLoadFailure(loaderError('x'), { platform: 'linux', arch: 'riscv64', libc: 'musl', glibcVersion: null, deno: null }, manifest)
  t.true(e.message.startsWith('coldpage has no prebuilt binary for platform linux, arch riscv64, libc musl.'), e.message)
})
