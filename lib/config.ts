/**
 * The pager's configuration from its three sources: `configure()`, the
 * environment (read once at load) and a watched JSON file (`watchConfig` or
 * `COLDPAGE_CONFIG`). Every source is validated whole before anything applies.
 * What each field is (its check, variable, default, conversion) is in
 * ./config-fields.ts; this module only walks that table.
 */
import './polyfill.js'

import { type FSWatcher, closeSync, constants, fstatSync, openSync, readSync, realpathSync, unwatchFile, watch, watchFile } from 'node:fs'
import * as path from 'node:path'

import { configChannel } from './channels.js'
import { ColdpageError, fromNative, invalidArgType, invalidArgValue } from './errors.js'
import { type Config, FIELDS, FIELD_NAMES, type Field, type NativeValue, isField } from './config-fields.js'
import native from './native.js'

export type { CompressName, Config } from './config-fields.js'

/**
 * Checks a partial config against `FIELDS`. `where` prefixes argument names
 * (`opts.` for `configure`, nothing for a config file); `json` says the value came
 * from a JSON config file, where `null` stands for `Infinity`.
 */
function checkPartial(value: unknown, where: string, json = false): Partial<Config> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgType(where.replace(/\.$/, '') || 'opts', 'an object', value)
  }
  const out: Partial<Record<keyof Config, unknown>> = {}
  for (const [key, v] of Object.entries(value)) {
    const name = `${where}${key}`
    if (!isField(key)) throw invalidArgValue(name, 'absent (not a config field)', v)
    if (v !== undefined) out[key] = FIELDS[key].check(v, name, json)
  }
  return out as Partial<Config>
}

/** A checked partial config as the binding takes it: only the fields given, unset as `null`. */
function toNative(partial: Partial<Config>): Record<string, NativeValue> {
  const patch: Record<string, NativeValue> = {}
  for (const key of FIELD_NAMES) {
    const value = partial[key]
    if (value === undefined) continue
    const { toNative: convert } = FIELDS[key] as Field<unknown>
    patch[key] = convert === undefined ? (value as NativeValue) : convert(value)
  }
  return patch
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
    native.configure(toNative(partial))
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
  const inForce = native.getConfig()
  const config: Record<string, unknown> = {}
  for (const key of FIELD_NAMES) {
    const { fromNative: convert } = FIELDS[key] as Field<unknown>
    config[key] = convert === undefined ? inForce[key] : convert(inForce[key])
  }
  return config as unknown as Config
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

/**
 * A config file's hold on the config: applying a text of the file sets the fields
 * it names, and returns to its prior value each field it named last time and no
 * longer does, so that the file states the whole config it controls.
 * @returns a function applying one text of `file` (throwing `ERR_COLDPAGE_CONFIG`)
 */
function fileConfig(file: string, store?: StateStore): (text: string) => void {
  // The fields the file set last (`owned`), and the value each had before the file
  // first set it (`before`).
  const state = store?.load()
  let owned: Record<string, unknown> = state?.owned ?? {}
  const before: Record<string, unknown> = state?.before ?? {}
  return (text) => {
    const next = parseText(file, text)
    const current = getConfig() as unknown as Record<string, unknown>
    // Values to return to, in the file's own terms (`null` for no quota), so that a
    // state that went through JSON (another thread's) reads back the same.
    const gone = Object.keys(owned).filter((key) => !(key in next))
    const restore = checkPartial(Object.fromEntries(gone.map((key) => [key, before[key] === Infinity ? null : before[key]])), '', true)
    try {
      apply({ ...restore, ...next }, 'file')
    } catch (err) {
      // Also the pager's own refusals (an unsafe scratch dir): say which file asked for it.
      throw configError(`invalid config file ${file}`, err)
    }
    for (const key of Object.keys(next)) if (!(key in owned)) before[key] = current[key]
    for (const key of Object.keys(owned)) if (!(key in next)) delete before[key]
    owned = next
    store?.save({ owned, before })
  }
}

/**
 * Calls `changed` (debounced) whenever `file` may have changed, until closed. It
 * watches the directory, not the file: editors and config tools replace files by
 * rename (which would silently end a watch on the old inode), and Kubernetes swaps
 * a `..data` symlink beside the file. Where the path is a symlink, the directory it
 * resolves to is watched too (`followLink`, called again after each read), and a
 * stat poll backs both up (fs.watch can miss events on network filesystems).
 */
function watchPath(file: string, changed: () => void, report: (err: Error) => void): { close(): void; followLink(): void } {
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const schedule = () => {
    // Coalesce the burst of events one save produces.
    if (timer === undefined && !closed) {
      timer = setTimeout(() => {
        timer = undefined
        if (!closed) changed()
      }, 25).unref()
    }
  }
  const watchers = new Map<string, FSWatcher>()
  const watchDir = (dir: string) => {
    if (watchers.has(dir)) return
    try {
      const w = watch(dir, { persistent: false }, schedule)
      w.on('error', (err) => report(configError(`watching ${dir} for ${file} failed`, err)))
      watchers.set(dir, w)
    } catch (err) {
      report(configError(`watching ${dir} for ${file} failed`, err))
    }
  }
  const followLink = () => {
    let real: string
    try {
      real = path.dirname(realpathSync(file))
    } catch {
      return
    }
    for (const [dir, w] of watchers) {
      if (dir !== path.dirname(file) && dir !== real) {
        w.close()
        watchers.delete(dir)
      }
    }
    watchDir(real)
  }
  watchDir(path.dirname(file))
  followLink()
  watchFile(file, { persistent: false, interval: 1000 }, schedule)
  const close = (): void => {
    if (closed) return
    closed = true
    if (timer !== undefined) clearTimeout(timer)
    for (const w of watchers.values()) w.close()
    watchers.clear()
    unwatchFile(file, schedule)
  }
  return { close, followLink }
}

/** Applies `file` now (throwing if it cannot be) and again on every change of its text. */
function startWatch(file: string, report: (err: Error) => void, store?: StateStore): ConfigWatcher {
  const absolute = path.resolve(file)
  const applyText = fileConfig(absolute, store)
  // What was applied last (a change is applied exactly when its text differs), and
  // what was last reported as invalid (so one bad save is reported once).
  let applied = readConfigFile(absolute)
  applyText(applied)
  let rejected: string | undefined
  const reload = () => {
    let text: string
    try {
      text = readConfigText(absolute)
    } catch (err) {
      // Mid-swap (a symlink briefly dangling) or removed: the next event retries.
      if (err instanceof ColdpageError) report(err)
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') report(configError(`cannot read config file ${absolute}`, err))
      return
    }
    watcher.followLink()
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
  const watcher = watchPath(absolute, reload, report)
  return { close: watcher.close, [Symbol.dispose]: watcher.close }
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
 * Reads and checks the config fields' `COLDPAGE_*` variables (`FIELDS`), and the
 * package's other 0/1 switch, `COLDPAGE_NO_EXTERNAL_BUFFERS`.
 * @returns the fields the environment sets
 * @throws `ERR_COLDPAGE_CONFIG` naming the variable whose value is invalid
 */
function readEnv(): Partial<Config> {
  const partial: Partial<Record<keyof Config, unknown>> = {}
  for (const key of FIELD_NAMES) {
    const { env, envText, fromEnv } = FIELDS[key] as Field<unknown>
    const text = envVar(env)
    if (text === undefined) continue
    const value = fromEnv(text)
    if (value === undefined) throw envError(env, text, envText)
    partial[key] = value
  }
  const noExternal = envVar('COLDPAGE_NO_EXTERNAL_BUFFERS')
  if (noExternal !== undefined && noExternal !== '0' && noExternal !== '1') {
    throw envError('COLDPAGE_NO_EXTERNAL_BUFFERS', noExternal, '0 or 1')
  }
  return partial as Partial<Config>
}

/** Applies the fields the environment sets (already checked: only the scratch dir can still fail). */
function applyEnv(partial: Partial<Config>): void {
  if (Object.keys(partial).length === 0) return
  try {
    apply(partial, 'env')
  } catch (err) {
    const scratchDir = envVar(FIELDS.scratchDir.env)
    const which =
      scratchDir === undefined ? 'the COLDPAGE_* environment' : `${FIELDS.scratchDir.env}=${JSON.stringify(scratchDir)}`
    throw new ColdpageError('ERR_COLDPAGE_CONFIG', `${which} is invalid: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Joins the threads that can watch `COLDPAGE_CONFIG` (one at a time, see
 * `joinConfigWatch` in crates/coldpage-node/src/config.rs), keeping the watch's
 * state in the binding so that the thread taking it over continues it.
 * @returns a watcher when this thread watches the file now
 */
function watchEnvConfig(file: string): ConfigWatcher | undefined {
  // JSON keeps Infinity as null, which every field reads back as what it meant.
  const store: StateStore = {
    load: () => {
      const text = native.configWatchState()
      return text === null || text === undefined ? undefined : (JSON.parse(text) as WatchState)
    },
    save: (state) => void native.configWatchState(JSON.stringify(state)),
  }
  const start = (): ConfigWatcher => {
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
      start()
    } catch (err) {
      process.emitWarning(err as Error)
    }
  }
  return native.joinConfigWatch(takeOver) ? start() : undefined
}

/**
 * Checks the `COLDPAGE_*` variables (in every thread that loads the package) and,
 * when `apply` is set, applies them: the package does that once per process, in the
 * first thread that loads it, so a Worker loading coldpage later never undoes
 * `configure()`. `COLDPAGE_CONFIG` is watched by one thread at a time: the first
 * to load the package, then, when that thread goes away (a Worker exits), another
 * thread that loaded it (or the next to), so the file stays watched for the life of
 * the process (see `watchEnvConfig`).
 * @returns a watcher when this thread watches `COLDPAGE_CONFIG` now
 * @throws `ERR_COLDPAGE_CONFIG` naming the variable whose value is invalid
 */
export function loadEnv(apply_: boolean): ConfigWatcher | undefined {
  const partial = readEnv()
  if (apply_) applyEnv(partial)
  const file = envVar('COLDPAGE_CONFIG')
  return file === undefined ? undefined : watchEnvConfig(file)
}
