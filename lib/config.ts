/**
 * The pager's configuration from its three sources: `configure()`, the
 * environment (read once at load) and a watched JSON file (`watchConfig` or
 * `COLDPAGE_CONFIG`). Every source is validated whole before anything applies.
 */
import './polyfill.js'

import { type FSWatcher, closeSync, constants, fstatSync, openSync, readSync, realpathSync, unwatchFile, watch, watchFile } from 'node:fs'
import * as path from 'node:path'

import { configChannel } from './channels.js'
import { ColdpageError, fromNative, invalidArgType, invalidArgValue, outOfRange } from './errors.js'
import native from './native.js'
import type { BackendName } from './validate.js'

/** The pager's configuration. */
export interface Config {
  /** The atomic selector: `'auto'` (default) picks swap where the system has swap and MADV_COLD works, else file. */
  backend: BackendName | 'auto'
  /** Where the file backend keeps scratch space (in its own 0700 subdir). Default: `os.tmpdir()`, or `/var/tmp` when that is tmpfs. */
  scratchDir: string
  /** Disk quota for the file backend in bytes: a positive safe integer, or `Infinity` (default; `null` in JSON) for none. */
  maxScratchBytes: number
  /** Checksum every byte read back from the file backend. Default `true`. */
  verify: boolean
  /**
   * File backend: encrypt new pageouts (AES-256-GCM, a per-process key that never leaves
   * memory); the AEAD tag is each block's checksum, checked on every read. Default `false`.
   */
  encrypt: boolean
  /** File backend: compress new pageouts block by block (`'lz4'`). Default `'none'`. */
  compress: CompressName
  /**
   * The budget of every store (`createStore`) while set, replacing each one's
   * own, applied live; `null` (the default) leaves each store its own.
   */
  residentBytes: number | null
}

/** Block-wise compression of the file backend. */
export type CompressName = 'none' | 'lz4'

const FIELDS: ReadonlySet<string> = new Set(['backend', 'scratchDir', 'maxScratchBytes', 'verify', 'encrypt', 'compress', 'residentBytes'])

/**
 * Checks a partial config. `where` prefixes argument names (`opts.` for
 * `configure`, nothing for a config file). In JSON, where there is no
 * `Infinity`, only `null` means no quota: a number too large for a double
 * (`1e400`) parses as `Infinity` and is refused, not taken as "no quota".
 */
function checkPartial(value: unknown, where: string, json = false): Partial<Config> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgType(where.replace(/\.$/, '') || 'opts', 'an object', value)
  }
  const out: Partial<Config> = {}
  for (const [key, v] of Object.entries(value)) {
    const name = `${where}${key}`
    if (!FIELDS.has(key)) throw invalidArgValue(name, 'absent (not a config field)', v)
    if (v === undefined) continue
    switch (key) {
      case 'backend':
        if (typeof v !== 'string') throw invalidArgType(name, "'auto', 'swap' or 'file'", v)
        if (v !== 'auto' && v !== 'swap' && v !== 'file') throw invalidArgValue(name, "'auto', 'swap' or 'file'", v)
        out.backend = v
        break
      case 'scratchDir':
        if (typeof v !== 'string') throw invalidArgType(name, 'a path string', v)
        if (v === '' || v.includes('\0')) throw invalidArgValue(name, 'a non-empty path without NUL bytes', v)
        out.scratchDir = path.resolve(v)
        break
      case 'maxScratchBytes': {
        if (v === null || (v === Infinity && !json)) {
          out.maxScratchBytes = Infinity
          break
        }
        const none = json ? 'null' : 'Infinity'
        if (typeof v !== 'number') throw invalidArgType(name, `a number or ${none}`, v)
        if (!Number.isSafeInteger(v) || v <= 0) throw outOfRange(name, `a positive safe integer or ${none}`, v)
        out.maxScratchBytes = v
        break
      }
      case 'verify':
      case 'encrypt':
        if (typeof v !== 'boolean') throw invalidArgType(name, 'a boolean', v)
        out[key] = v
        break
      case 'compress':
        if (typeof v !== 'string') throw invalidArgType(name, "'none' or 'lz4'", v)
        if (v !== 'none' && v !== 'lz4') throw invalidArgValue(name, "'none' or 'lz4'", v)
        out.compress = v
        break
      case 'residentBytes':
        if (v === null) {
          out.residentBytes = null
          break
        }
        if (typeof v !== 'number') throw invalidArgType(name, 'a number or null', v)
        if (!Number.isSafeInteger(v) || v < 0) throw outOfRange(name, 'a non-negative safe integer or null', v)
        out.residentBytes = v
        break
    }
  }
  return out
}

/** Called with `residentBytes` when this thread changes it (other threads' changes reach stores within a second). */
const budgetListeners = new Set<(budget: number | null) => void>()

/**
 * Calls `listener` whenever this thread sets `residentBytes`, until the
 * returned function is called.
 * @internal For stores.
 */
export function onResidentBytes(listener: (budget: number | null) => void): () => void {
  budgetListeners.add(listener)
  return () => budgetListeners.delete(listener)
}

/**
 * Applies the fields given, atomically in the pager (process-wide: workers
 * configuring at the same time never undo each other's fields).
 */
function apply(partial: Partial<Config>, source: 'configure' | 'env' | 'file'): Config {
  try {
    native.configure({
      ...(partial.backend === undefined ? {} : { backend: partial.backend }),
      ...(partial.scratchDir === undefined ? {} : { scratchDir: partial.scratchDir }),
      ...(partial.maxScratchBytes === undefined ? {} : { maxScratchBytes: partial.maxScratchBytes }),
      ...(partial.verify === undefined ? {} : { verify: partial.verify }),
      ...(partial.residentBytes === undefined ? {} : { residentBytes: partial.residentBytes ?? -1 }),
      ...(partial.encrypt === undefined ? {} : { encrypt: partial.encrypt }),
      ...(partial.compress === undefined ? {} : { compress: partial.compress }),
    })
  } catch (err) {
    throw fromNative(err)
  }
  const config = getConfig()
  if (partial.residentBytes !== undefined) for (const listener of budgetListeners) listener(config.residentBytes)
  if (configChannel.hasSubscribers) configChannel.publish({ source, config })
  return config
}

/**
 * Changes the configuration. Everything is validated before anything is
 * applied; a new `scratchDir` applies to new pageouts (live handles keep theirs),
 * and a new `backend` never disturbs live handles.
 *
 * @param opts - the fields to change
 * @returns the configuration now in force
 * Note: `encrypt` and `compress` apply to new file pageouts; live handles keep how
 * they were stored, and swap handles are never encrypted or compressed.
 *
 * @throws `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` / `ERR_OUT_OF_RANGE` for bad fields,
 *   `ERR_COLDPAGE_CONFIG` for an unsafe scratch dir (a symlink, not ours, not a directory)
 * @example
 * ```ts
 * configure({ backend: 'file', maxScratchBytes: 8 * 2 ** 30 })
 * ```
 */
export function configure(opts: Partial<Config>): Config {
  return apply(checkPartial(opts, 'opts.'), 'configure')
}

/** The configuration in force. */
export function getConfig(): Config {
  const c = native.getConfig()
  return {
    backend: c.backend as Config['backend'],
    scratchDir: c.scratchDir,
    maxScratchBytes: c.maxScratchBytes ?? Infinity,
    verify: c.verify,
    residentBytes: c.residentBytes ?? null,
    encrypt: c.encrypt,
    compress: c.compress as CompressName,
  }
}

function configError(message: string, cause: unknown): ColdpageError {
  const detail = cause instanceof Error ? `: ${cause.message}` : ''
  return new ColdpageError('ERR_COLDPAGE_CONFIG', `${message}${detail}`, { cause })
}

/** A config file larger than this is refused (config files are a few hundred bytes). */
const MAX_CONFIG_BYTES = 1 << 20

/**
 * Reads a config file: a regular file of at most `MAX_CONFIG_BYTES`. Opened
 * non-blocking and checked with `fstat` before any read, so that a FIFO (which
 * would block until a writer comes) or a device (`/dev/zero`, endless) is refused
 * with ERR_COLDPAGE_CONFIG instead of hanging or exhausting memory. Errors of
 * `open` itself are thrown as they are (the caller tells ENOENT apart).
 */
function readConfigText(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw configError(`config file ${file} is not a regular file`, undefined)
    const buffer = Buffer.allocUnsafe(Math.min(stat.size, MAX_CONFIG_BYTES) + 1)
    let length = 0
    for (;;) {
      if (length === buffer.length) throw configError(`config file ${file} is larger than ${MAX_CONFIG_BYTES} bytes`, undefined)
      const n = readSync(fd, buffer, length, buffer.length - length, null)
      if (n === 0) break
      length += n
    }
    return buffer.toString('utf8', 0, length)
  } finally {
    closeSync(fd)
  }
}

/** Reads a config file; any failure is ERR_COLDPAGE_CONFIG. */
function readConfigFile(file: string): string {
  try {
    return readConfigText(file)
  } catch (err) {
    if (err instanceof ColdpageError) throw err
    throw configError(`cannot read config file ${file}`, err)
  }
}

/** Parses and checks the text of a JSON config file; any failure is ERR_COLDPAGE_CONFIG. */
function parseText(file: string, text: string): Partial<Config> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw configError(`config file ${file} is not valid JSON`, err)
  }
  try {
    return checkPartial(parsed, '', true)
  } catch (err) {
    throw configError(`invalid config file ${file}`, err)
  }
}

/** A running config watch; `using` it (or `close()`) stops it. */
export interface ConfigWatcher extends Disposable {
  /** Stops watching. Idempotent. */
  close(): void
  /** Same as `close()`. */
  [Symbol.dispose](): void
}

/**
 * Applies a JSON config file now and again on every change (ops switching:
 * flip `backend` or move `scratchDir` without a restart). The file holds
 * `Config`'s fields; `maxScratchBytes: null` means no quota.
 *
 * Note: invalid content on a change is reported through `onError` (default:
 * a process warning) and the previous config stays. The watcher does not keep
 * the process alive.
 *
 * @param file - path of the JSON file; it must exist and be valid now
 * @param onError - called with an `ERR_COLDPAGE_CONFIG` error for a bad change
 * @throws `ERR_COLDPAGE_CONFIG` if the file cannot be read or applied now
 */
export function watchConfig(file: string, onError?: (err: Error) => void): ConfigWatcher {
  if (typeof file !== 'string') throw invalidArgType('path', 'a path string', file)
  if (file === '' || file.includes('\0')) throw invalidArgValue('path', 'a non-empty path without NUL bytes', file)
  if (onError !== undefined && typeof onError !== 'function') throw invalidArgType('onError', 'a function', onError)
  return startWatch(file, onError ?? ((err: Error) => process.emitWarning(err)))
}

/** What a watch remembers: the fields the file set last, and their values before. */
interface WatchState {
  owned: Record<string, unknown>
  before: Record<string, unknown>
}

/** Keeps a watch's state where another thread can continue it (`COLDPAGE_CONFIG`). */
interface StateStore {
  load(): WatchState | undefined
  save(state: WatchState): void
}

function startWatch(file: string, report: (err: Error) => void, store?: StateStore): ConfigWatcher {
  const absolute = path.resolve(file)
  // The file states the whole config it controls: the fields it set last (`owned`),
  // and the value each had before the file first set it (`before`), to which a field
  // returns when the file no longer names it.
  const state = store?.load()
  let owned: Record<string, unknown> = state?.owned ?? {}
  const before: Record<string, unknown> = state?.before ?? {}
  const applyText = (text: string): void => {
    const next = parseText(absolute, text)
    const current = getConfig() as unknown as Record<string, unknown>
    // Values to return to, in the file's own terms (`null` for no quota), so that a
    // state that went through JSON (another thread's) reads back the same.
    const gone = Object.keys(owned).filter((key) => !(key in next))
    const restore = checkPartial(Object.fromEntries(gone.map((key) => [key, before[key] === Infinity ? null : before[key]])), '', true)
    try {
      apply({ ...restore, ...next }, 'file')
    } catch (err) {
      // Also the pager's own refusals (an unsafe scratch dir): say which file asked for it.
      throw configError(`invalid config file ${absolute}`, err)
    }
    for (const key of Object.keys(next)) if (!(key in owned)) before[key] = current[key]
    for (const key of Object.keys(owned)) if (!(key in next)) delete before[key]
    owned = next
    store?.save({ owned, before })
  }
  // What was applied last (a change is applied exactly when its text differs), and
  // what was last reported as invalid (so one bad save is reported once).
  let applied = readConfigFile(absolute)
  applyText(applied)
  let rejected: string | undefined

  let timer: NodeJS.Timeout | undefined
  let closed = false
  const reload = () => {
    timer = undefined
    if (closed) return
    let text: string
    try {
      text = readConfigText(absolute)
    } catch (err) {
      // Mid-swap (a symlink briefly dangling) or removed: the next event retries.
      if (err instanceof ColdpageError) report(err)
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') report(configError(`cannot read config file ${absolute}`, err))
      return
    }
    watchRealDir()
    if (text === applied || text === rejected) return
    try {
      // The text just read is what is applied (never a second read of the file).
      applyText(text)
      applied = text
      rejected = undefined
    } catch (err) {
      rejected = text
      report(err as Error)
    }
  }
  const schedule = () => {
    // Coalesce the burst of events one save produces.
    if (timer === undefined && !closed) timer = setTimeout(reload, 25).unref()
  }
  // Watch the directory, not the file: editors and config tools replace files by
  // rename (which would silently end a watch on the old inode), and Kubernetes
  // swaps a `..data` symlink beside the file; any event there re-reads the file.
  // Where the path is a symlink, the directory it resolves to is watched too, and
  // a stat poll backs both up (fs.watch can miss events on network filesystems).
  const watchers = new Map<string, FSWatcher>()
  const watchDir = (dir: string) => {
    if (watchers.has(dir)) return
    try {
      const w = watch(dir, { persistent: false }, schedule)
      w.on('error', (err) => report(configError(`watching ${dir} for ${absolute} failed`, err)))
      watchers.set(dir, w)
    } catch (err) {
      report(configError(`watching ${dir} for ${absolute} failed`, err))
    }
  }
  const watchRealDir = () => {
    let real: string
    try {
      real = path.dirname(realpathSync(absolute))
    } catch {
      return
    }
    for (const [dir, w] of watchers) {
      if (dir !== path.dirname(absolute) && dir !== real) {
        w.close()
        watchers.delete(dir)
      }
    }
    watchDir(real)
  }
  watchDir(path.dirname(absolute))
  watchRealDir()
  watchFile(absolute, { persistent: false, interval: 1000 }, schedule)
  const close = (): void => {
    if (closed) return
    closed = true
    if (timer !== undefined) clearTimeout(timer)
    for (const w of watchers.values()) w.close()
    watchers.clear()
    unwatchFile(absolute, schedule)
  }
  return { close, [Symbol.dispose]: close }
}

/** Reads one variable, treating an empty value as unset. */
function envVar(name: string): string | undefined {
  const v = process.env[name]
  return v === undefined || v === '' ? undefined : v
}

function envError(name: string, value: string, expected: string): ColdpageError {
  return new ColdpageError('ERR_COLDPAGE_CONFIG', `${name}=${JSON.stringify(value)} is invalid: expected ${expected}`)
}

/**
 * Checks the `COLDPAGE_*` variables (in every thread that loads the package) and,
 * when `apply` is set, applies them: the package does that once per process, in the
 * first thread that loads it, so a Worker loading coldpage later never undoes
 * `configure()`. `COLDPAGE_CONFIG` is watched by one thread at a time: the first
 * to load the package, then, when that thread goes away (a Worker exits), another
 * thread that loaded it (or the next to), so the file stays watched for the life of
 * the process (see `joinConfigWatch` in crates/coldpage-node/src/config.rs).
 * @returns a watcher when this thread watches `COLDPAGE_CONFIG` now
 * @throws `ERR_COLDPAGE_CONFIG` naming the variable whose value is invalid
 */
export function loadEnv(apply_: boolean): ConfigWatcher | undefined {
  const partial: Partial<Config> = {}
  const backend = envVar('COLDPAGE_BACKEND')
  if (backend !== undefined) {
    if (backend !== 'auto' && backend !== 'swap' && backend !== 'file') {
      throw envError('COLDPAGE_BACKEND', backend, "'auto', 'swap' or 'file'")
    }
    partial.backend = backend
  }
  const scratchDir = envVar('COLDPAGE_SCRATCH_DIR')
  if (scratchDir !== undefined) {
    if (scratchDir.includes('\0')) throw envError('COLDPAGE_SCRATCH_DIR', scratchDir, 'a path')
    partial.scratchDir = path.resolve(scratchDir)
  }
  const max = envVar('COLDPAGE_MAX_SCRATCH_BYTES')
  if (max !== undefined) {
    const n = max === 'Infinity' ? Infinity : /^[1-9][0-9]*$/.test(max) ? Number(max) : NaN
    if (n !== Infinity && !Number.isSafeInteger(n)) {
      throw envError('COLDPAGE_MAX_SCRATCH_BYTES', max, 'a positive integer or Infinity')
    }
    partial.maxScratchBytes = n
  }
  const verify = envVar('COLDPAGE_VERIFY')
  if (verify !== undefined) {
    if (verify !== '0' && verify !== '1') throw envError('COLDPAGE_VERIFY', verify, '0 or 1')
    partial.verify = verify === '1'
  }
  const budget = envVar('COLDPAGE_RESIDENT_BYTES')
  if (budget !== undefined) {
    const n = /^(0|[1-9][0-9]*)$/.test(budget) ? Number(budget) : NaN
    if (!Number.isSafeInteger(n)) throw envError('COLDPAGE_RESIDENT_BYTES', budget, 'a non-negative integer')
    partial.residentBytes = n
  }
  const encrypt = envVar('COLDPAGE_ENCRYPT')
  if (encrypt !== undefined) {
    if (encrypt !== '0' && encrypt !== '1') throw envError('COLDPAGE_ENCRYPT', encrypt, '0 or 1')
    partial.encrypt = encrypt === '1'
  }
  const compress = envVar('COLDPAGE_COMPRESS')
  if (compress !== undefined) {
    if (compress !== 'none' && compress !== 'lz4') throw envError('COLDPAGE_COMPRESS', compress, "'none' or 'lz4'")
    partial.compress = compress
  }
  const noExternal = envVar('COLDPAGE_NO_EXTERNAL_BUFFERS')
  if (noExternal !== undefined && noExternal !== '0' && noExternal !== '1') {
    throw envError('COLDPAGE_NO_EXTERNAL_BUFFERS', noExternal, '0 or 1')
  }
  const file = envVar('COLDPAGE_CONFIG')
  if (apply_ && Object.keys(partial).length > 0) {
    try {
      apply(partial, 'env')
    } catch (err) {
      // Only the scratch dir can still fail here: the rest was checked above.
      const which = scratchDir === undefined ? 'the COLDPAGE_* environment' : `COLDPAGE_SCRATCH_DIR=${JSON.stringify(scratchDir)}`
      throw new ColdpageError('ERR_COLDPAGE_CONFIG', `${which} is invalid: ${(err as Error).message}`, { cause: err })
    }
  }
  if (file === undefined) return undefined
  // JSON keeps Infinity as null, which every field reads back as what it meant.
  const store: StateStore = {
    load: () => {
      const text = native.configWatchState()
      return text === null || text === undefined ? undefined : (JSON.parse(text) as WatchState)
    },
    save: (state) => void native.configWatchState(JSON.stringify(state)),
  }
  const watchEnvFile = (): ConfigWatcher => {
    try {
      return startWatch(file, (err) => process.emitWarning(err), store)
    } catch (err) {
      throw new ColdpageError('ERR_COLDPAGE_CONFIG', `COLDPAGE_CONFIG=${JSON.stringify(file)}: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
  // Taking the watch over from a thread that went away: nobody to throw to.
  const takeOver = (): void => {
    try {
      watchEnvFile()
    } catch (err) {
      process.emitWarning(err as Error)
    }
  }
  return native.joinConfigWatch(takeOver) ? watchEnvFile() : undefined
}
