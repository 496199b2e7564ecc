/**
 * coldpage: page cold bytes out of resident memory and read back exactly the
 * bytes asked for. This module is the package's entry point; it applies the
 * `COLDPAGE_*` environment once, when first loaded.
 */
import './load.js'
import native, { zeroCopyAllowed, zeroCopyReason } from './native.js'
import type { MemoryPressure, PressureLevel, PressureSource } from './pressure.js'
import type { BackendName } from './validate.js'

import './polyfill.js'

export { type CompressName, type Config, type ConfigWatcher, configure, getConfig, watchConfig } from './config.js'
export { ColdpageError, type ErrorCode } from './errors.js'
export { Handle, open, type ReadOptions, type SharedHandle } from './handle.js'
export { type PageoutAsyncOptions, type PageoutOptions, pageout, pageoutAsync } from './pageout.js'
export { type MemoryPressure, type PressureLevel, type PressureSource, memoryPressure } from './pressure.js'
export {
  type PolicyName,
  Store,
  type StoreEntryInfo,
  type StoreOptions,
  type StoreStats,
  createStore,
} from './store.js'
export type { BackendName, Data, Ranges } from './validate.js'

/** Live handles and bytes of one backend. */
export interface BackendStats {
  /** Live handles. */
  handles: number
  /** Their logical bytes. */
  bytes: number
}

/** The pager's counters: a plain, JSON-serialisable object. */
export interface Stats {
  /** Live swap-backed handles. */
  swap: BackendStats
  /** Live file-backed handles. */
  file: BackendStats
  /** Scratch bytes allocated to handles. */
  scratchBytesAllocated: number
  /** Scratch bytes the file system holds. */
  scratchBytesOnDisk: number
  /** Reads served. */
  reads: number
  /** Bytes read. */
  bytesRead: number
  /** Reads that found a checksum mismatch (and threw ERR_COLDPAGE_CORRUPT). */
  checksumFailures: number
  /** Failed operations. */
  errors: number
}

/** The pager's counters now (process-wide). */
export function stats(): Stats {
  return native.stats()
}

/** Whether `view`/`take` can be zero-copy in this runtime (false in Electron >= 21, or with `COLDPAGE_NO_EXTERNAL_BUFFERS=1`). */
export function zeroCopySupported(): boolean {
  return zeroCopyAllowed()
}

/** What `doctor()` finds. */
export interface DoctorReport {
  /** `process.platform`-style OS and architecture. */
  platform: string
  /** Kernel release. */
  kernel: string
  /** Whether swap is active. */
  swapActive: boolean
  /** Total swap in bytes. */
  swapTotalBytes: number
  /** Whether `madvise(MADV_COLD)` works (Linux; false elsewhere). */
  madvCold: boolean
  /** The primitive the swap backend pages out with (`madvise(MADV_COLD)`, `VirtualUnlock`), or why there is none. */
  pageOut: string
  /** Whether that primitive works here. */
  pageOutWorks: boolean
  /** The scratch dir in force. */
  scratchDir: string
  /** Its file system type. */
  scratchFs: string
  /** Whether it is a RAM file system (paging there saves nothing). */
  scratchIsRam: boolean
  /** Free bytes there. */
  scratchFreeBytes: number
  /** Why the scratch dir is unusable (permissions, ownership), or null. */
  scratchError: string | null
  /** Why the usual private subdirectory (`coldpage-<user>`) is not used, or null; a fresh one with an unpredictable name is used instead. */
  scratchFallback: string | null
  /** Whether freed scratch space is returned with hole punching. */
  holePunching: boolean
  /** Whether `view`/`take` can be zero-copy here (external buffers). */
  zeroCopy: boolean
  /** Why `view`/`take` copy here (forced, refused by the runtime, or a Node-API call missing), or null. */
  zeroCopyReason: string | null
  /** The runtime. */
  runtime: { node: string; electron: string | null; napi: string }
  /** What `backend: 'auto'` picks, and why. */
  auto: { backend: BackendName; reason: string }
  /** The memory-pressure signal: its source (`none` where there is none), level and reading now. */
  pressure: MemoryPressure
  /**
   * What `encrypt: true` uses: the AEAD and its library, and whether the key's page is
   * locked in RAM (`null` before the first encrypted pageout makes the key), with the
   * reason when it is not.
   */
  encryption: { aead: string; keyLocked: boolean | null; keyLockError: string | null }
  /** Things worth fixing. */
  warnings: string[]
}

/** Examines the platform and the configured scratch dir (what `coldpage doctor` prints). */
export function doctor(): DoctorReport {
  const r = native.doctor()
  const warnings = [...r.warnings]
  const zeroCopy = zeroCopyAllowed()
  const reason = zeroCopyReason()
  if (!zeroCopy) warnings.push(`view() and take() copy: ${reason}`)
  return {
    platform: r.platform,
    kernel: r.kernel,
    swapActive: r.swapActive,
    swapTotalBytes: r.swapTotalBytes,
    madvCold: r.madvCold,
    pageOut: r.pageOut,
    pageOutWorks: r.pageOutWorks,
    scratchDir: r.scratchDir,
    scratchFs: r.scratchFs,
    scratchIsRam: r.scratchIsRam,
    scratchFreeBytes: r.scratchFreeBytes,
    scratchError: r.scratchError ?? null,
    scratchFallback: r.scratchFallback ?? null,
    holePunching: r.holePunching,
    zeroCopy,
    zeroCopyReason: reason,
    runtime: {
      node: process.version,
      electron: process.versions.electron ?? null,
      napi: process.versions.napi ?? 'unknown',
    },
    auto: { backend: r.auto.backend as BackendName, reason: r.auto.reason },
    pressure: {
      level: r.pressure.level as PressureLevel,
      source: r.pressure.source as PressureSource,
      detail: r.pressure.detail,
    },
    encryption: {
      aead: r.encryption.aead,
      keyLocked: r.encryption.keyLocked ?? null,
      keyLockError: r.encryption.keyLockError ?? null,
    },
    warnings,
  }
}
