/**
 * coldpage: page cold bytes out of resident memory and read back exactly the
 * bytes asked for. This module is the package's entry point; it applies the
 * `COLDPAGE_*` environment once, when first loaded.
 */
import './load.js'
import { getConfig } from './config.js'
import native, { zeroCopyAllowed, zeroCopyReason } from './native.js'
import type { MemoryPressure, PressureLevel, PressureSource } from './pressure.js'
import type { BackendName } from './validate.js'

import './polyfill.js'

export { type CompressName, type Config, type ConfigWatcher, configure, getConfig, watchConfig } from './config.js'
export type { ConfigMessage, PressureMessage, StoreMessage, TraceContext } from './channels.js'
export { ColdpageError, type ErrorCode } from './errors.js'
export { Handle, open, type ReadOptions, type SharedHandle } from './handle.js'
export { type PageoutAsyncOptions, type PageoutOptions, pageout, pageoutAsync } from './pageout.js'
export { type MemoryPressure, type PressureLevel, type PressureSource, memoryPressure } from './pressure.js'
export {
  type ArrowModuleLike,
  type ArrowTable,
  type BudgetSource,
  type GetAsyncOptions,
  type PolicyName,
  type SetAsyncOptions,
  type SetOptions,
  Store,
  type StoreEntryInfo,
  type StoreOptions,
  type StoreStats,
  type TableReadAsyncOptions,
  type TableReadOptions,
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
  /** Pageouts since load (every backend; tables and store evictions included). */
  pageouts: number
  /** Bytes of those pageouts. */
  bytesPagedOut: number
  /** Takes (`take`, `takeAsync`) since load. */
  takes: number
  /** Bytes written to scratch files since load, after compression. */
  bytesWritten: number
}

/** The pager's counters now (process-wide). */
export function stats(): Stats {
  const s = native.stats()
  return {
    swap: s.swap,
    file: s.file,
    scratchBytesAllocated: s.scratchBytesAllocated,
    scratchBytesOnDisk: s.scratchBytesOnDisk,
    reads: s.reads,
    bytesRead: s.bytesRead,
    checksumFailures: s.checksumFailures,
    errors: s.errors,
    pageouts: s.pageouts,
    bytesPagedOut: s.bytesPagedOut,
    takes: s.takes,
    bytesWritten: s.bytesWritten,
  }
}

/** Whether `view`/`take` can be zero-copy in this runtime (false in Electron >= 21, or with `COLDPAGE_NO_EXTERNAL_BUFFERS=1`). */
export function zeroCopySupported(): boolean {
  return zeroCopyAllowed()
}

/** What `doctor()` finds. */
export interface DoctorReport {
  /** coldpage's version (package.json). */
  version: string
  /** The target triple the native binary was built for (`x86_64-unknown-linux-gnu`). */
  target: string
  /** Linux: the C library the process runs on (`glibc 2.36`, or `musl`); `null` elsewhere, or where the runtime has no diagnostic report. */
  libc: string | null
  /** `process.platform`-style OS and architecture. */
  platform: string
  /** Kernel release. */
  kernel: string
  /** Is there swap (a paging file) to page out to? Not whether coldpage can page out to it (`swapPagesOut`). */
  swapActive: boolean
  /** Total swap in bytes. */
  swapTotalBytes: number
  /** Whether `madvise(MADV_COLD)` works (Linux; false elsewhere). */
  madvCold: boolean
  /** The primitive the swap backend pages out with (`madvise(MADV_COLD)`, `VirtualUnlock`), or why there is none. */
  pageOut: string
  /** Does that primitive really page a range out on this system (probed once)? Not whether there is swap to page out to (`swapActive`). */
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
  /** Do swap-backed handles really leave RAM here: `pageOutWorks` and `swapActive` both hold? */
  swapPagesOut: boolean
  /**
   * The backend new pageouts use (the config's `backend`, `auto` resolved), whether it
   * works here, and why not (`coldpage doctor` exits 1 when it does not).
   */
  chosen: { backend: BackendName; usable: boolean; problem: string | null }
  /** The memory-pressure signal: its source (`none` where there is none), level and reading now. */
  pressure: MemoryPressure
  /**
   * What `encrypt: true` uses: the AEAD and its library, and whether the key's page is
   * locked in RAM (`null` before the first encrypted pageout makes the key), with the
   * reason when it is not.
   */
  encryption: { aead: string; keyLocked: boolean | null; keyLockError: string | null }
  /** Memory maps coldpage holds now (read windows over the scratch arena, views, swap regions). */
  mapsHeld: number
  /** How many views may be zero-copy maps at once; past it a view is a copy. */
  mapsLimit: number
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
  const selector = getConfig().backend
  const swapPagesOut = r.swapPagesOut
  const backend = selector === 'auto' ? (r.auto.backend as BackendName) : selector
  let problem: string | null = null
  if (backend === 'file' && r.scratchError != null) problem = `the file backend cannot use its scratch dir: ${r.scratchError}`
  if (backend === 'swap' && !swapPagesOut) {
    problem = r.pageOutWorks
      ? "backend 'swap' pages out nothing: there is no active swap, so the bytes stay resident"
      : `backend 'swap' cannot page out here: ${r.pageOut}`
    warnings.push(problem)
  }
  return {
    version: packageVersion(),
    target: native.buildTarget(),
    libc: libc(),
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
    swapPagesOut,
    chosen: { backend, usable: problem === null, problem },
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
    mapsHeld: r.mapsHeld,
    mapsLimit: r.mapsLimit,
    warnings,
  }
}

/** coldpage's version, from its package.json. */
function packageVersion(): string {
  return (require('../package.json') as { version: string }).version
}

/** Linux: `glibc <version>` (what Node's report says the process runs on), else `musl`; `null` off Linux. */
function libc(): string | null {
  if (process.platform !== 'linux') return null
  // Node's diagnostic report names the glibc it runs on; a musl build has no such field.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  if (report?.header === undefined) return null
  const glibc = report.header.glibcVersionRuntime
  return glibc === undefined ? 'musl' : `glibc ${glibc}`
}
