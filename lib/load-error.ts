/**
 * What to tell a user whose native binding did not load. The loader that
 * `napi build` generates (index.js) throws one error for every cause ("Cannot
 * find native binding. npm has a bug related to optional dependencies…") and
 * keeps the real causes as a chain of `cause`s; this module reads that chain
 * and the host, and says in the first line of a {@link ColdpageError} what
 * went wrong and how to fix it.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { ColdpageError } from './errors.js'

/** The host a binary is picked for: `process.platform`, `process.arch` and, on Linux, the libc. */
export interface Host {
  platform: string
  arch: string
  /** `glibc` or `musl` on Linux, null elsewhere. */
  libc: 'glibc' | 'musl' | null
  /** The glibc version on a glibc Linux (`2.31`), else null. */
  glibcVersion: string | null
  /** Set under Deno (`process.versions.deno`). */
  deno: string | null
}

/** A prebuilt target: the napi-rs suffix (`linux-x64-gnu`) and the host it serves. */
export interface Target {
  suffix: string
  platform: string
  arch: string
  libc: 'glibc' | 'musl' | null
}

/** The package's own `package.json` (name, version, `napi.targets`). */
interface Manifest {
  name: string
  version: string
  napi: { targets: string[] }
}

const ARCH: Record<string, string> = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }

/** Whether /usr/bin/ldd is musl's (the generated loader's first test too). */
function lddSaysMusl(): boolean {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    return false
  }
}

/** The host this process runs on, as the generated loader sees it. */
export function currentHost(): Host {
  let libc: Host['libc'] = null
  let glibcVersion: string | null = null
  if (process.platform === 'linux') {
    try {
      const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
      glibcVersion = report?.header?.glibcVersionRuntime ?? null
    } catch {
      // A runtime whose process.report is partial (Deno, Bun): ask ldd, as the loader does.
    }
    libc = glibcVersion !== null ? 'glibc' : lddSaysMusl() ? 'musl' : 'glibc'
  }
  return { platform: process.platform, arch: process.arch, libc, glibcVersion, deno: process.versions.deno ?? null }
}

/**
 * The target a Rust triple from `napi.targets` builds, with napi-rs's suffix:
 * `aarch64-unknown-linux-musl` is `linux-arm64-musl` for linux/arm64/musl.
 */
export function parseTarget(triple: string): Target {
  const [cpu = '', , os = '', abi = ''] = triple.split('-')
  const arch = ARCH[cpu] ?? cpu
  if (triple.includes('-apple-darwin')) return { suffix: `darwin-${arch}`, platform: 'darwin', arch, libc: null }
  if (triple.includes('-windows-')) return { suffix: `win32-${arch}-${abi || os}`, platform: 'win32', arch, libc: null }
  const libc = abi.startsWith('musl') ? 'musl' : 'glibc'
  return { suffix: `linux-${arch}-${abi || 'gnu'}`, platform: os, arch, libc }
}

/** Where a target's binary runs, for the README and this message. */
const FLOOR: Record<string, string> = {
  'linux-x64-gnu': 'glibc >= 2.17',
  'linux-arm64-gnu': 'glibc >= 2.17',
  'linux-x64-musl': 'musl, e.g. Alpine',
  'linux-arm64-musl': 'musl, e.g. Alpine',
  'darwin-x64': 'macOS >= 11',
  'darwin-arm64': 'macOS >= 11',
  'win32-x64-msvc': 'Windows 10 and later',
  'win32-arm64-msvc': 'Windows 10 and later, arm64',
}

function readManifest(): Manifest {
  // dist/load-error.js and lib/load-error.ts both sit one level below the package root.
  return JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as Manifest
}

/** Every message in an error and its chain of causes, outermost first. */
function messages(error: unknown): string[] {
  const out: string[] = []
  const seen = new Set<unknown>()
  let e = error
  while (e !== null && e !== undefined && !seen.has(e) && out.length < 64) {
    seen.add(e)
    out.push(e instanceof Error ? e.message : String(e))
    e = e instanceof Error ? e.cause : undefined
  }
  return out
}

function describe(host: Host): string {
  const libc = host.libc === null ? 'no libc variant' : host.glibcVersion ? `glibc ${host.glibcVersion}` : host.libc
  return `${host.platform}-${host.arch} (${libc})`
}

/**
 * Turns the error the generated loader threw into a {@link ColdpageError}
 * whose first line says what failed and what to do. The loader's error stays
 * as the `cause`.
 *
 * - No prebuilt binary for this platform, arch and libc: `ERR_COLDPAGE_UNSUPPORTED`,
 *   naming them and listing the targets that exist.
 * - Deno without `--allow-ffi`, a glibc older than the binary needs, or the
 *   platform package missing from `node_modules` (an optional dependency npm
 *   skipped): `ERR_COLDPAGE_UNSUPPORTED` with the fix.
 * - Anything else: the first native error, with the loader's chain as cause.
 *
 * @param error - what `require('../index.js')` threw
 * @param host - the host to explain it for (tests pass a made-up one)
 * @returns the error to throw instead
 */
export function explainLoadFailure(error: unknown, host: Host = currentHost(), manifest: Manifest = readManifest()): ColdpageError {
  const targets = manifest.napi.targets.map(parseTarget)
  const list = targets.map((t) => `${t.suffix} (${FLOOR[t.suffix] ?? t.platform})`).join(', ')
  const target = targets.find((t) => t.platform === host.platform && t.arch === host.arch && t.libc === host.libc)
  const all = messages(error)
  const extra = { cause: error }

  if (target === undefined) {
    return new ColdpageError(
      'ERR_COLDPAGE_UNSUPPORTED',
      `coldpage has no prebuilt binary for platform ${host.platform}, arch ${host.arch}, libc ${host.libc ?? 'n/a'}. ` +
        `Prebuilt targets: ${list}. On another platform, build from source (cargo and \`npm run build\` in a clone of the repository).`,
      extra,
    )
  }
  const pkg = `${manifest.name}-${target.suffix}`
  const ffi = all.find((m) => /allow-ffi|requires ffi access/i.test(m))
  if (host.deno !== null && ffi !== undefined) {
    return new ColdpageError(
      'ERR_COLDPAGE_UNSUPPORTED',
      `coldpage needs Deno's FFI permission to load its native binding: run deno with --allow-ffi (or -A). Deno said: ${ffi}`,
      extra,
    )
  }
  const glibc = all.map((m) => /GLIBC_(\d+\.\d+(?:\.\d+)?)'? not found/.exec(m)).find((m) => m !== null)
  if (glibc) {
    return new ColdpageError(
      'ERR_COLDPAGE_UNSUPPORTED',
      `coldpage's ${target.suffix} binary needs glibc ${glibc[1]}, this system has glibc ${host.glibcVersion ?? 'older'}: ` +
        `upgrade the OS, or reinstall a coldpage built for glibc 2.17 (${pkg}@${manifest.version}). Loader said: ${glibc.input}`,
      extra,
    )
  }
  const notFound = (name: string) => all.some((m) => m.includes(`Cannot find module '${name}'`))
  if (notFound(`./${manifest.name}.${target.suffix}.node`) && notFound(pkg)) {
    return new ColdpageError(
      'ERR_COLDPAGE_UNSUPPORTED',
      `coldpage's binary for ${describe(host)} is not installed: run \`npm install ${pkg}@${manifest.version}\` ` +
        `(the optional dependency ${pkg} is missing from node_modules; npm skips it when the lock file was made on another platform, npm/cli#4828, ` +
        `or when it was installed with --omit=optional or --no-optional).`,
      extra,
    )
  }
  const native = all.find((m) => !m.startsWith('Cannot find native binding') && !/coldpage[.-]wasm32-wasi|\.wasi\.cjs/.test(m))
  return new ColdpageError(
    'ERR_COLDPAGE_UNSUPPORTED',
    `coldpage's ${target.suffix} binary did not load: ${native ?? all[0] ?? 'unknown error'}`,
    extra,
  )
}
