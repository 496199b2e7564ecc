/**
 * `memoryPressure()`: the OS's memory-pressure signal, sampled on demand (the
 * core's `coldpage::pressure`; thresholds in the README's "Memory pressure").
 */
import { pressureChannel } from './channels.js'
import native from './native.js'

/** How pressed for memory the system (or this process's cgroup) is. */
export type PressureLevel = 'none' | 'moderate' | 'critical'

/** Where a pressure level comes from: `none` where this platform has no signal. */
export type PressureSource = 'psi' | 'cgroup2' | 'cgroup1' | 'windows' | 'macos' | 'none'

/** One sample of the memory-pressure signal: a plain, JSON-serialisable object. */
export interface MemoryPressure {
  /** The highest level among the sources read. */
  level: PressureLevel
  /** The source that gave the level (the first one read when every source reports `none`). */
  source: PressureSource
  /** What each source read, for people (and why a source could not be read). */
  detail: string
}

/**
 * Samples the memory-pressure signal now: Linux PSI and this process's memory
 * cgroup (v2 or v1), Windows' low-memory resource notification and memory load,
 * macOS's `kern.memorystatus_vm_pressure_level`. Cheap (a few small file reads
 * or one system call): poll it about once a second.
 *
 * Note: a cgroup event (a grown `memory.events` / `failcnt` / `oom_kill` counter)
 * keeps the level up for 10 s after a sample first sees it, so several pollers
 * in the process all see it. `COLDPAGE_PRESSURE_PSI` / `COLDPAGE_PRESSURE_CGROUP`
 * replace the discovered sources (a test and ops hook, read once per process).
 *
 * @returns the level, its source and what was read
 * @example
 * ```ts
 * import { memoryPressure } from 'coldpage'
 * setInterval(() => {
 *   if (memoryPressure().level !== 'none') shrinkCaches()
 * }, 1000).unref()
 * ```
 */
export function memoryPressure(): MemoryPressure {
  const p = native.memoryPressure()
  const level = p.level as PressureLevel
  if (level !== lastLevel) {
    lastLevel = level
    if (pressureChannel.hasSubscribers) pressureChannel.publish({ level, source: p.source as PressureSource })
  }
  return { level, source: p.source as PressureSource, detail: p.detail }
}

/** The level the last sample in this thread saw (`coldpage:pressure` is published when it changes). */
let lastLevel: PressureLevel = 'none'
