// Scratch-dir attacks: a symlink, a symlink swapped in after start, a dir owned by
// another user (root only), a world-writable dir without the sticky bit, a file
// instead of a dir, a read-only dir (as an unprivileged user when root, since root
// bypasses permission bits). Each gives a clear ERR_COLDPAGE_CONFIG /
// ERR_COLDPAGE_IO, the pager never writes outside the intended dir, and its files
// are never readable by other users. A squatted `coldpage-<uid>` subdir (a symlink,
// a file, another user's dir) must not turn the file backend off: the pager uses a
// fresh 0700 dir with an unpredictable name instead and doctor() says why.
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'

import test, { type ExecutionContext } from 'ava'
import { type Config, configure, doctor, getConfig, pageout, stats } from 'coldpage'

import { arenaDir, arenaFdPath, codeOf, filesBelow, isRoot, runNode, tree } from './fixtures/reliability.js'
import { ROOT, bytes } from './helpers.js'

const NOBODY = 65534
const OTHER = 12345
const initial = getConfig()
const base = mkdtempSync(path.join(tmpdir(), 'coldpage-scratch-'))
// Unprivileged children must be able to pass through (but not list) the base.
chmodSync(base, 0o711)
test.after.always(() => {
  configure(initial)
  rmSync(base, { recursive: true, force: true })
})

let packageDir: string | undefined
/**
 * A copy of what `require('coldpage')` loads (package.json, index.js, the .node
 * binary, dist/) that another user can read: the checkout may not be (a root user's
 * clone under a 0700 directory), and unprivileged children run the package from here.
 */
function readablePackage(): string {
  if (packageDir !== undefined) return packageDir
  const dir = path.join(base, 'package')
  mkdirSync(dir)
  for (const name of readdirSync(ROOT)) {
    if (name === 'package.json' || name === 'index.js' || name.endsWith('.node')) cpSync(path.join(ROOT, name), path.join(dir, name))
  }
  cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true })
  const open = (p: string): void => {
    const isDir = statSync(p).isDirectory()
    chmodSync(p, isDir || p.endsWith('.node') ? 0o755 : 0o644)
    if (isDir) for (const name of readdirSync(p)) open(path.join(p, name))
  }
  open(dir)
  packageDir = dir
  return dir
}

let n = 0
/** A fresh directory below the base. */
function fresh(mode = 0o700): string {
  const dir = path.join(base, `d${++n}`)
  mkdirSync(dir)
  chmodSync(dir, mode)
  return dir
}

/** Asserts that `fn` fails with `code` and a message matching `re`, and that `watched` dirs did not change. */
function refuses(t: ExecutionContext, fn: () => unknown, code: string, re: RegExp, watched: string[] = []): void {
  const before = watched.map(tree)
  const err = t.throws(fn, { any: true }) as Error | undefined
  t.is(codeOf(err), code, String(err))
  t.regex(String(err?.message), re)
  t.deepEqual(watched.map(tree), before, 'nothing was written outside the intended dir')
}

/**
 * Asserts that with `dir`'s `coldpage-<uid>` squatted, pageouts work from a fresh
 * private dir, doctor() names the reason (`why`), and `watched` dirs stay untouched.
 */
function fallsBack(t: ExecutionContext, dir: string, why: RegExp, watched: string[]): void {
  const before = watched.map(tree)
  configure({ scratchDir: dir })
  const h = pageout(bytes(10_000), { backend: 'file' })
  t.deepEqual(h.readAt(0, 10_000), bytes(10_000))
  const prefix = `${path.basename(arenaDir(dir))}-`
  // The arena file was made in a fresh dir with an unpredictable name, which is removed
  // as soon as the (unnamed) arena file is open: nothing is left behind at exit.
  const arenas = readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)]
    } catch {
      return []
    }
  })
  t.true(
    arenas.some((target) => target.startsWith(path.join(dir, prefix)) && /-[0-9a-f]{16}\//.test(target)),
    `an arena under an unpredictable name: ${arenas.join(', ')}`,
  )
  t.deepEqual(
    readdirSync(dir).filter((name) => name.startsWith(prefix)),
    [],
    'the fallback dir is already gone',
  )
  t.regex(doctor().scratchFallback ?? '', why)
  h.dispose()
  t.deepEqual(watched.map(tree), before, "nothing was written into the squatter's dir")
}

const file = (c?: Partial<Config>) => {
  if (c !== undefined) configure(c)
  return pageout(bytes(10_000), { backend: 'file' })
}

test.afterEach.always(() => configure(initial))

test.serial('a symlink as the scratch dir is refused, and its target stays untouched', (t) => {
  const target = fresh()
  const link = path.join(base, `link${++n}`)
  symlinkSync(target, link)
  const before = getConfig()
  refuses(t, () => configure({ scratchDir: link }), 'ERR_COLDPAGE_CONFIG', /symlink/, [target])
  t.deepEqual(getConfig(), before, 'the previous config stays')
  // A path through a symlinked parent is fine only if the dir itself is real; the
  // final component is what is checked: a trailing symlink is always refused.
  refuses(t, () => configure({ scratchDir: `${link}/` }), 'ERR_COLDPAGE_CONFIG', /symlink/, [target])
})

test.serial('a symlink swapped in for the scratch dir after configure is refused at the first pageout', (t) => {
  const dir = fresh()
  const elsewhere = fresh()
  configure({ scratchDir: dir, backend: 'file' })
  // The arena opens on first use: swap the dir for a symlink before that.
  renameSync(dir, `${dir}.moved`)
  symlinkSync(elsewhere, dir)
  refuses(t, () => pageout(bytes(5000)), 'ERR_COLDPAGE_CONFIG', /symlink or not a directory/, [elsewhere])
  t.is(stats().file.handles, 0)
})

test.serial("a symlink in place of the pager's own coldpage-<uid> subdir is not followed: a fresh private dir is used", (t) => {
  const dir = fresh()
  const elsewhere = fresh()
  symlinkSync(elsewhere, arenaDir(dir))
  fallsBack(t, dir, /symlink or not a directory/, [elsewhere])
})

test.serial('a swap after the arena is open changes nothing for live handles; re-configuring the dir is refused', (t) => {
  const dir = fresh()
  const elsewhere = fresh()
  configure({ scratchDir: dir })
  const h = file()
  renameSync(dir, `${dir}.moved`)
  symlinkSync(elsewhere, dir)
  // The arena is held open by descriptor: reads and new pageouts never use the path.
  t.deepEqual(h.readAt(0, 10_000), bytes(10_000))
  const h2 = file()
  t.deepEqual(h2.readAt(5, 100), bytes(10_000).subarray(5, 105))
  t.deepEqual(tree(elsewhere), [])
  h.dispose()
  h2.dispose()
  refuses(t, () => configure({ scratchDir: path.join(base, 'd0-unused'), verify: 'x' as never }), 'ERR_INVALID_ARG_TYPE', /verify/)
  configure(initial)
  refuses(t, () => configure({ scratchDir: dir }), 'ERR_COLDPAGE_CONFIG', /symlink/, [elsewhere])
})

test.serial('a scratch dir owned by another user is refused (root only)', (t) => {
  if (!isRoot) {
    t.log('skipped: chown to another user needs root')
    t.pass()
    return
  }
  const theirs = fresh(0o755)
  chownSync(theirs, OTHER, OTHER)
  refuses(t, () => configure({ scratchDir: theirs }), 'ERR_COLDPAGE_CONFIG', new RegExp(`owned by uid ${OTHER}`), [theirs])
  // Another user pre-creating our coldpage-<uid> subdir in a shared dir (a squatter)
  // does not turn the file backend off.
  const shared = fresh(0o1777)
  mkdirSync(arenaDir(shared), { mode: 0o777 })
  chownSync(arenaDir(shared), OTHER, OTHER)
  fallsBack(t, shared, /someone else created it/, [arenaDir(shared)])
})

test.serial('a world-writable dir without the sticky bit is refused; with it, the subdir is still private', (t) => {
  const open = fresh(0o777)
  refuses(t, () => configure({ scratchDir: open }), 'ERR_COLDPAGE_CONFIG', /world-writable without the sticky bit/, [open])
  const sticky = fresh(0o1777)
  using h = file({ scratchDir: sticky })
  t.deepEqual(h.readAt(0, 100), bytes(10_000).subarray(0, 100))
  t.is(statSync(arenaDir(sticky)).mode & 0o7777, 0o700)
})

test.serial('a file instead of the scratch dir is refused; a file instead of the subdir gives a fresh private dir', (t) => {
  const f = path.join(base, `file${++n}`)
  writeFileSync(f, 'not a dir')
  refuses(t, () => configure({ scratchDir: f }), 'ERR_COLDPAGE_CONFIG', /not a directory/)
  const dir = fresh()
  writeFileSync(arenaDir(dir), 'squatter')
  fallsBack(t, dir, /symlink or not a directory/, [])
  t.is(readFileSync(arenaDir(dir), 'utf8'), 'squatter')
})

test.serial('a read-only scratch dir gives ERR_COLDPAGE_IO with errno and syscall', async (t) => {
  const ro = fresh(0o500)
  const script = `
    const c = require('coldpage')
    try { c.pageout(Buffer.alloc(100), { backend: 'file' }); console.log(JSON.stringify({ ok: true })) }
    catch (e) { console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall, message: e.message })) }
  `
  let out: { code?: string | undefined; errno?: number | undefined; syscall?: string | undefined; message?: string | undefined; ok?: boolean }
  if (isRoot) {
    // Root ignores permission bits: run the pager as an unprivileged user who owns the dir.
    chmodSync(ro, 0o700)
    chownSync(ro, NOBODY, NOBODY)
    chmodSync(ro, 0o500)
    const r = await runNode(['-e', script], {
      cwd: readablePackage(),
      uid: NOBODY,
      gid: NOBODY,
      env: { COLDPAGE_SCRATCH_DIR: ro, COLDPAGE_CONFIG: '' },
    })
    t.is(r.code, 0, r.stderr)
    out = JSON.parse(r.stdout) as typeof out
  } else {
    configure({ scratchDir: ro })
    try {
      pageout(bytes(100), { backend: 'file' })
      out = { ok: true }
    } catch (e) {
      const err = e as { code?: string; errno?: number; syscall?: string; message?: string }
      out = { code: err.code, errno: err.errno, syscall: err.syscall, message: err.message }
    }
  }
  t.is(out.code, 'ERR_COLDPAGE_IO', JSON.stringify(out))
  t.is(out.errno, 13, 'EACCES')
  t.is(out.syscall, 'mkdirat')
  t.regex(out.message ?? '', new RegExp(ro.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  t.deepEqual(filesBelow(ro), [])
})

test.serial('scratch files are never readable by other users', async (t) => {
  const old = process.umask(0) // even with a permissive umask
  try {
    const dir = fresh()
    const squatted = fresh()
    mkdirSync(arenaDir(squatted), { mode: 0o777 }) // our own, but too open: tightened
    chmodSync(arenaDir(squatted), 0o777)
    for (const d of [dir, squatted]) {
      using h = file({ scratchDir: d })
      t.is(statSync(arenaDir(d)).mode & 0o777, 0o700, `${arenaDir(d)} is 0700`)
      t.is(statSync(arenaFdPath(d)).mode & 0o077, 0, 'the arena file gives others no access')
      t.deepEqual(filesBelow(d), [], 'the arena file has no name')
      t.is(h.byteLength, 10_000)
    }
    if (!isRoot) {
      t.log('skipped the cross-user check: switching to another user needs root')
      return
    }
    // Another user can neither list the subdir nor open the arena through /proc.
    using h = file({ scratchDir: dir })
    const fd = arenaFdPath(dir).replace('/proc/self/', `/proc/${process.pid}/`)
    const probe = `
      const fs = require('node:fs')
      const tryIt = (f) => { try { f(); return 'OK' } catch (e) { return e.code } }
      console.log(JSON.stringify({
        list: tryIt(() => fs.readdirSync(${JSON.stringify(arenaDir(dir))})),
        open: tryIt(() => fs.readFileSync(${JSON.stringify(fd)})),
      }))
    `
    const r = await runNode(['-e', probe], { cwd: '/', uid: NOBODY, gid: NOBODY })
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), { list: 'EACCES', open: 'EACCES' })
    t.is(h.byteLength, 10_000)
  } finally {
    process.umask(old)
  }
})

test.serial('an unsafe COLDPAGE_SCRATCH_DIR fails at load, naming the variable', async (t) => {
  const target = fresh()
  const link = path.join(base, `envlink${++n}`)
  symlinkSync(target, link)
  for (const dir of [link, fresh(0o777)]) {
    const r = await runNode(['-e', "require('coldpage')"], { cwd: ROOT, env: { COLDPAGE_SCRATCH_DIR: dir, COLDPAGE_CONFIG: '' } })
    t.not(r.code, 0)
    t.regex(r.stderr, /ERR_COLDPAGE_CONFIG/)
    t.regex(r.stderr, /COLDPAGE_SCRATCH_DIR/)
  }
  t.deepEqual(tree(target), [])
})
