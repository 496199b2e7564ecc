/**
 * The OS's memory-pressure level (`memoryPressure()`), polled once a second for
 * the stores that asked (`pressure: true`), one timer for all of them; stores
 * shrink to half their budget at `moderate` and to their held entries at
 * `critical`. The timer never keeps the process alive.
 */
import { type PressureLevel, memoryPressure } from '../pressure.js'

/** How often the level is sampled. */
export const PRESSURE_POLL_MS = 1000

type Listener = (level: PressureLevel) => void

const listeners = new Set<Listener>()
let timer: ReturnType<typeof setInterval> | undefined
let last: PressureLevel = 'none'

function poll(): void {
  const level = memoryPressure().level
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
    last = memoryPressure().level
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
