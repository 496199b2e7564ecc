/**
 * The OS's memory-pressure level, polled once a second for the stores that
 * asked (`pressure: true`), one timer for all of them. The level comes from the
 * core (Linux PSI and cgroups, Windows' memory resource notification, macOS's
 * pressure level); the timer never keeps the process alive.
 */
import native from '../native.js'

/** How hard the OS is pressed for memory: stores shrink to half their budget at `moderate`, to held entries at `critical`. */
export type PressureLevel = 'none' | 'moderate' | 'critical'

/** How often the level is sampled. */
export const PRESSURE_POLL_MS = 1000

type Listener = (level: PressureLevel) => void

const listeners = new Set<Listener>()
let timer: ReturnType<typeof setInterval> | undefined
let last: PressureLevel = 'none'

/** The level now; `none` where the core cannot tell. */
export function samplePressure(): PressureLevel {
  // TODO(merge issue-14-share): native.memoryPressure() lands with the pressure signal.
  const level = (native as unknown as { memoryPressure?: () => { level: string } }).memoryPressure?.().level
  return level === 'moderate' || level === 'critical' ? level : 'none'
}

function poll(): void {
  const level = samplePressure()
  if (level === last) return
  last = level
  for (const listener of listeners) listener(level)
}

/**
 * Calls `listener` with the level now, then on every change, until the
 * returned function is called.
 */
export function watchPressure(listener: Listener): () => void {
  if (timer === undefined) {
    last = samplePressure()
    timer = setInterval(poll, PRESSURE_POLL_MS)
    timer.unref()
  }
  listeners.add(listener)
  listener(last)
  return () => {
    listeners.delete(listener)
    if (listeners.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }
}
