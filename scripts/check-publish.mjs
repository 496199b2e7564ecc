// Checks what the publish job publishes: the root package names every platform
// package (one per `napi.targets` entry) in `optionalDependencies`, at the root's
// version, and every npm/<target> package is at that version and ships its addon;
// every tarball (root and npm/*) carries the repo's LICENSE, which is the license
// package.json names; and the publish job in .github/workflows/CI.yml publishes
// every package with provenance (`NPM_CONFIG_PROVENANCE=true` for the whole job,
// since `napi prepublish` runs a plain `npm publish` per platform package, and
// `id-token: write`, which provenance needs).
//
// The repo does not carry those optionalDependencies (they name packages that are
// only published at release time, so no lock file could hold them and `npm ci`
// would refuse the tree); `napi prepublish` writes them in the publish job.
//
//   node scripts/check-publish.mjs          rehearse: copy the package into a temp
//                                           dir, run `napi prepublish` there (no
//                                           publishing), pack, check the tarballs
//   node scripts/check-publish.mjs --here   check the packages in this checkout as
//                                           they are (the publish job runs this after
//                                           `napi prepublish`, before `npm publish`)
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const here = process.argv.includes('--here')
const win = process.platform === 'win32'
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', shell: win, stdio: ['ignore', 'pipe', 'inherit'] })

// The platform suffix napi gives each Rust target (`linux-x64-musl`, ...).
const require = createRequire(import.meta.url)
const suffix = (target) => require('@napi-rs/cli').parseTriple(target).platformArchABI
const license = readFileSync(join(root, 'LICENSE'), 'utf8')

/** Packs `dir` and returns the manifest, file list and LICENSE text of the tarball it made. */
function pack(dir, dest) {
  const [info] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], dir))
  const tgz = join(dest, info.filename)
  const manifest = JSON.parse(run('tar', ['-xOzf', tgz, 'package/package.json']))
  const files = info.files.map((f) => f.path)
  const licenseText = files.includes('LICENSE') ? run('tar', ['-xOzf', tgz, 'package/LICENSE']) : null
  return { manifest, files, licenseText }
}

/** The problems of a packed tarball's LICENSE against the repo's. */
function checkLicense(name, { manifest, licenseText }) {
  if (licenseText === null) return [`${name}: the tarball has no LICENSE`]
  if (licenseText !== license) return [`${name}: the tarball's LICENSE differs from the repo's`]
  if (manifest.license !== 'MIT') return [`${name}: package.json says license ${JSON.stringify(manifest.license)}, LICENSE is MIT`]
  return []
}

/** The problems of the publish job's provenance settings (CI.yml). */
function checkProvenance() {
  const yaml = require('js-yaml')
  const workflow = yaml.load(readFileSync(join(root, '.github', 'workflows', 'CI.yml'), 'utf8'))
  const job = workflow?.jobs?.publish
  if (!job) return ['CI.yml has no publish job']
  const out = []
  const setting = job.env?.NPM_CONFIG_PROVENANCE ?? workflow.env?.NPM_CONFIG_PROVENANCE
  if (String(setting) !== 'true') out.push('CI.yml publish job: NPM_CONFIG_PROVENANCE is not "true" for the whole job, so `napi prepublish` publishes the platform packages without provenance')
  if (job.permissions?.['id-token'] !== 'write') out.push('CI.yml publish job: permissions lack `id-token: write`, which provenance needs')
  for (const step of job.steps ?? []) {
    if (typeof step.run === 'string' && /\bnpm publish\b/.test(step.run) && /--no-provenance|NPM_CONFIG_PROVENANCE=false/.test(step.run)) {
      out.push(`CI.yml publish job: step "${step.name ?? step.run}" turns provenance off`)
    }
  }
  return out
}

let work = root
let scratch
if (!here) {
  scratch = mkdtempSync(join(tmpdir(), 'coldpage-publish-'))
  work = join(scratch, 'pkg')
  for (const entry of ['package.json', 'README.md', 'LICENSE', 'npm', 'index.js', 'index.d.ts', 'dist']) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(work, entry), { recursive: true })
  }
  // The build jobs' artifacts land in npm/<target> (`napi artifacts`); stand in for
  // any that this machine did not build, so that the rehearsal covers every target.
  for (const dir of readdirSync(join(work, 'npm'))) {
    const addon = join(work, 'npm', dir, `coldpage.${dir}.node`)
    if (!existsSync(addon)) writeFileSync(addon, 'placeholder addon for the publish rehearsal\n')
  }
  const napi = join(root, 'node_modules', '.bin', win ? 'napi.cmd' : 'napi')
  run(napi, ['prepublish', '-t', 'npm', '--no-gh-release', '--skip-optional-publish'], work)
}

const problems = [...checkProvenance()]
try {
  const pkg = JSON.parse(readFileSync(join(work, 'package.json'), 'utf8'))
  const dest = mkdtempSync(join(tmpdir(), 'coldpage-pack-'))
  const rootPack = pack(work, dest)
  problems.push(...checkLicense(pkg.name, rootPack))
  const optional = rootPack.manifest.optionalDependencies ?? {}
  const expected = pkg.napi.targets.map((t) => `${pkg.name}-${suffix(t)}`)
  for (const name of expected) {
    if (optional[name] !== pkg.version) {
      problems.push(`root package: optionalDependencies["${name}"] is ${JSON.stringify(optional[name])}, expected "${pkg.version}"`)
    }
  }
  for (const name of Object.keys(optional)) {
    if (!expected.includes(name)) problems.push(`root package: optionalDependencies names ${name}, which is no napi target`)
  }
  for (const target of pkg.napi.targets) {
    const dir = join(work, 'npm', suffix(target))
    if (!existsSync(dir)) {
      problems.push(`npm/${suffix(target)} is missing for target ${target}`)
      continue
    }
    const packed = pack(dir, dest)
    const { manifest, files } = packed
    problems.push(...checkLicense(manifest.name, packed))
    if (manifest.version !== pkg.version) problems.push(`${manifest.name}: version ${manifest.version}, root is ${pkg.version}`)
    if (manifest.name !== `${pkg.name}-${suffix(target)}`) problems.push(`npm/${suffix(target)} is named ${manifest.name}`)
    if (!files.includes(manifest.main)) problems.push(`${manifest.name}: the tarball lacks its addon ${manifest.main}`)
  }
  rmSync(dest, { recursive: true, force: true })
  if (problems.length) {
    console.error(`publish check failed (${here ? 'this checkout' : 'rehearsal'}):\n- ${problems.join('\n- ')}`)
    process.exitCode = 1
  } else {
    console.log(`publish check: ${pkg.name}@${pkg.version} names ${expected.length} platform packages at ${pkg.version}: ${expected.join(', ')}`)
    console.log(`publish check: LICENSE (MIT) in all ${expected.length + 1} tarballs; the publish job sets NPM_CONFIG_PROVENANCE=true and id-token: write`)
  }
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true })
}
