/**
 * What coldpage tells `node:diagnostics_channel` subscribers: the tracing
 * channels of pageouts, reads and takes, and the channels of store evictions and
 * page-ins, config changes and memory-pressure changes. Every publisher checks
 * `hasSubscribers` before it builds a message, so with nobody subscribed a
 * channel costs one property read.
 *
 * Subscribe by name (no import of coldpage needed, and before coldpage loads if
 * you want the environment's config):
 * ```js
 * const dc = require('node:diagnostics_channel')
 * dc.tracingChannel('coldpage:read').subscribe({ end: (ctx) => { ... } })
 * dc.subscribe('coldpage:store:evict', (msg) => { ... })
 * ```
 */
import * as dc from 'node:diagnostics_channel'

import type { Config } from './config.js'
import type { PressureLevel, PressureSource } from './pressure.js'
import type { BackendName } from './validate.js'

/**
 * The context of the `coldpage:pageout`, `coldpage:read` and `coldpage:take`
 * tracing channels (the same object from `start` to `end`/`asyncEnd`/`error`).
 */
export interface TraceContext {
  /** The call: `pageout`, `pageoutAsync`, `readAt`, `readAtAsync`, `readAtMany`, `readAtManyAsync`, `readInto`, `view`, `take`, `takeAsync`. */
  method: string
  /**
   * The handle's backend. For a pageout it is the backend asked for (`null` for
   * the selector's) until `end`/`asyncEnd`, where it is the one chosen.
   */
  backend: BackendName | null
  /** The bytes the call moves: paged out, read (all ranges), or taken. */
  byteLength: number
  /** The result (set by diagnostics_channel before `end`/`asyncEnd`). */
  result?: unknown
  /** The error thrown (set by diagnostics_channel before `error`). */
  error?: unknown
}

/** A message of `coldpage:store:evict` and `coldpage:store:pagein`. */
export interface StoreMessage {
  /** The store (a `Store`). */
  store: object
  /** The entry's key. */
  key: string
  /** The bytes evicted or paged in (a Buffer entry, or one column of a table entry). */
  bytes: number
  /** The column of a table entry, by name; absent for a Buffer entry. */
  column?: string
  /** Set when the eviction failed (the bytes stay resident): the error, also thrown or reported. */
  error?: unknown
}

/** A message of `coldpage:config`, published after a change is applied. */
export interface ConfigMessage {
  /** Who changed the config: `configure()`, the `COLDPAGE_*` environment at load, or a watched file. */
  source: 'configure' | 'env' | 'file'
  /** The config in force after the change. */
  config: Config
}

/** A message of `coldpage:pressure`, published when a sample's level differs from the last one this thread saw. */
export interface PressureMessage {
  /** The new level. */
  level: PressureLevel
  /** Where it comes from. */
  source: PressureSource
}

type Tracing = dc.TracingChannel<unknown, TraceContext>

/**
 * A tracing channel, or, in a runtime whose diagnostics_channel has none (an old
 * Bun), one that never has subscribers: coldpage loads and runs untraced there.
 */
function tracing(name: string): Tracing {
  if (typeof dc.tracingChannel === 'function') return dc.tracingChannel<unknown, TraceContext>(name)
  return { hasSubscribers: false } as Tracing
}

/** `coldpage:pageout`: `pageout`, `pageoutAsync` (and through them tables and store evictions). */
export const pageoutChannel = tracing('coldpage:pageout')
/** `coldpage:read`: every read of a handle (`readAt*`, `readInto`, `view`; table reads). */
export const readChannel = tracing('coldpage:read')
/** `coldpage:take`: `take` and `takeAsync`. */
export const takeChannel = tracing('coldpage:take')
/** `coldpage:store:evict`: a store paged a value (or a table column) out, or failed to. */
export const evictChannel = dc.channel('coldpage:store:evict')
/** `coldpage:store:pagein`: a store paged a value (or a table column) back in. */
export const pageinChannel = dc.channel('coldpage:store:pagein')
/** `coldpage:config`: a config change was applied. */
export const configChannel = dc.channel('coldpage:config')
/** `coldpage:pressure`: the memory-pressure level changed. */
export const pressureChannel = dc.channel('coldpage:pressure')
