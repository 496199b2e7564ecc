/**
 * The pager's config fields, described once. Each entry of `FIELDS` says how a
 * value is checked (in `configure` and in a JSON config file), which `COLDPAGE_*`
 * variable sets it and how its text reads, its default, and how it crosses to the
 * binding, where "unset" is `null`. Validation, environment loading, the watched
 * file, `getConfig` and the CLI's help all read this table. The core describes the
 * same fields once more, for the binding (`CONFIG_FIELDS` in
 * crates/coldpage/src/config.rs: how a value sets the field and reads back); a test
 * fails when the two tables name different fields. So adding a field is its `Config`
 * member and `FIELDS` entry here, its core struct field and table entry there, plus
 * its use. This module loads nothing native: the CLI reads it for its help.
 */
import * as path from 'node:path'

import { invalidArgType, invalidArgValue, outOfRange } from './errors.js'
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
   * The budget of every store (`createStore`) while set, replacing each one's
   * own, applied live; `null` (the default) leaves each store its own.
   */
  residentBytes: number | null
  /**
   * File backend: encrypt new pageouts (AES-256-GCM, a per-process key that never leaves
   * memory); the AEAD tag is each block's checksum, checked on every read. Default `false`.
   */
  encrypt: boolean
  /** File backend: compress new pageouts block by block (`'lz4'`). Default `'none'`. */
  compress: CompressName
}

/** Block-wise compression of the file backend. */
export type CompressName = 'none' | 'lz4'

/** A config value as it crosses to and from the binding: `null` is unset. */
export type NativeValue = boolean | number | string | null

/** One config field: everything the package knows about it. */
export interface Field<T> {
  /** The `COLDPAGE_*` variable that sets it at load. */
  env: string
  /** Its default, as the CLI's help states it. */
  default: string
  /** What the variable's text must be, as its error says. */
  envText: string
  /** The value the variable's text stands for; `undefined` when the text is invalid. */
  fromEnv(text: string): T | undefined
  /**
   * Checks a value given to `configure` (`json` false) or found in a JSON config
   * file (`json` true), throwing Node's argument errors naming `name`.
   */
  check(value: unknown, name: string, json: boolean): T
  /** The value as the binding takes it (`null` for unset); the value itself when absent. */
  toNative?(value: T): NativeValue
  /** The binding's value (`null` for unset) as `getConfig` returns it; the value itself when absent. */
  fromNative?(value: NativeValue | undefined): T
}

/** "'a', 'b' or 'c'" */
function listed(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`)
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)!}`
}

/** A field that takes one of `values`. */
function choice<T extends string>(env: string, values: readonly T[], fallback: T): Field<T> {
  const expected = listed(values)
  const known = (v: string): v is T => (values as readonly string[]).includes(v)
  return {
    env,
    default: `'${fallback}'`,
    envText: expected,
    fromEnv: (text) => (known(text) ? text : undefined),
    check(value, name) {
      if (typeof value !== 'string') throw invalidArgType(name, expected, value)
      if (!known(value)) throw invalidArgValue(name, expected, value)
      return value
    },
  }
}

/** A boolean field; its variable is `0` or `1`. */
function flag(env: string, fallback: boolean): Field<boolean> {
  return {
    env,
    default: fallback ? '1' : '0',
    envText: '0 or 1',
    fromEnv: (text) => (text === '1' ? true : text === '0' ? false : undefined),
    check(value, name) {
      if (typeof value !== 'boolean') throw invalidArgType(name, 'a boolean', value)
      return value
    },
  }
}

/** A decimal integer with no sign and no leading zero, if it is a safe integer. */
function decimal(text: string): number | undefined {
  const n = /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : NaN
  return Number.isSafeInteger(n) ? n : undefined
}

/**
 * Every config field. The mapped type makes `Config` and this table name the same
 * fields: a member of one missing from the other does not compile. The order is
 * `getConfig`'s and the order in which the environment is checked.
 */
export const FIELDS: { readonly [K in keyof Config]: Field<Config[K]> } = {
  backend: choice('COLDPAGE_BACKEND', ['auto', 'swap', 'file'], 'auto'),
  scratchDir: {
    env: 'COLDPAGE_SCRATCH_DIR',
    default: 'os.tmpdir(), or /var/tmp where that is a RAM filesystem',
    envText: 'a path',
    fromEnv: (text) => (text.includes('\0') ? undefined : path.resolve(text)),
    check(value, name) {
      if (typeof value !== 'string') throw invalidArgType(name, 'a path string', value)
      if (value === '' || value.includes('\0')) throw invalidArgValue(name, 'a non-empty path without NUL bytes', value)
      return path.resolve(value)
    },
  },
  maxScratchBytes: {
    env: 'COLDPAGE_MAX_SCRATCH_BYTES',
    default: 'Infinity (no quota)',
    envText: 'a positive integer or Infinity',
    fromEnv: (text) => (text === 'Infinity' ? Infinity : text === '0' ? undefined : decimal(text)),
    check(value, name, json) {
      // In JSON, where there is no `Infinity`, only `null` means no quota: a number too
      // large for a double (`1e400`) parses as `Infinity` and is refused, not taken as
      // "no quota".
      if (value === null || (value === Infinity && !json)) return Infinity
      const none = json ? 'null' : 'Infinity'
      if (typeof value !== 'number') throw invalidArgType(name, `a number or ${none}`, value)
      if (!Number.isSafeInteger(value) || value <= 0) throw outOfRange(name, `a positive safe integer or ${none}`, value)
      return value
    },
    // `Infinity` is the public "no quota"; the binding's is `null`.
    toNative: (value) => (value === Infinity ? null : value),
    fromNative: (value) => (value === null || value === undefined ? Infinity : (value as number)),
  },
  verify: flag('COLDPAGE_VERIFY', true),
  residentBytes: {
    env: 'COLDPAGE_RESIDENT_BYTES',
    default: 'unset (each store its own)',
    envText: 'a non-negative integer',
    fromEnv: decimal,
    check(value, name) {
      if (value === null) return null
      if (typeof value !== 'number') throw invalidArgType(name, 'a number or null', value)
      if (!Number.isSafeInteger(value) || value < 0) throw outOfRange(name, 'a non-negative safe integer or null', value)
      return value
    },
    fromNative: (value) => (value === undefined ? null : (value as number | null)),
  },
  encrypt: flag('COLDPAGE_ENCRYPT', false),
  compress: choice('COLDPAGE_COMPRESS', ['none', 'lz4'], 'none'),
}

/** The fields' names, in `FIELDS` order. */
export const FIELD_NAMES = Object.keys(FIELDS) as (keyof Config)[]

/** Whether `key` names a config field. */
export function isField(key: string): key is keyof Config {
  return Object.hasOwn(FIELDS, key)
}

/** A field's entry, typed by its name. */
export function field<K extends keyof Config>(key: K): Field<Config[K]> {
  return FIELDS[key] as Field<Config[K]>
}
