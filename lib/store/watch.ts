/**
 * What a store follows while it lives, with one timer for all stores (once a
 * second, unref'd: it never keeps the process alive): the OS's memory pressure
 * (`memoryPressure()`, for stores made with `pressure: true`) and the
 * `residentBytes` config field. A change of that field made in this thread
 * reaches stores at once; one made in another thread (a Worker) within a second.
 */
import { getConfig, onResidentBytes } from '../config.js'
import { type PressureLevel, memoryPressure } from '../pressure.js'

/** How often pressure and config are sampled. */
export const WATCH_PERIOD_MS = 1000

/** A store, as the watcher sees it. */
export interface Follower {
  /** Whether it follows memory pressure. */
  readonly pressure: boolean
  /** The pressure level changed (or is first known). */
  onPressure(level: PressureLevel): void
  /** `residentBytes` of the config changed (or is first known); `null` when unset. */
  onBudget(budget: number | null): void
}

const followers = new Set<Follower>()
let timer: ReturnType<typeof setInterval> | undefined
let stopConfig: (() => void) | undefined
let level: PressureLevel = 'none'
let budget: number | null = null

function setLevel(now: PressureLevel): void {
  if (now === level) return
  level = now
  for (const f of followers) if (f.pressure) f.onPressure(now)
}

function setBudget(now: number | null): void {
  if (now === budget) return
  budget = now
  for (const f of followers) f.onBudget(now)
}

function tick(): void {
  for (const f of followers) {
    if (f.pressure) {
      setLevel(memoryPressure().level)
      break
    }
  }
  setBudget(getConfig().residentBytes)
}

/** Starts telling `follower` about changes (and what holds now); stops when the returned function is called. */
export function follow(follower: Follower): () => void {
  if (timer === undefined) {
    budget = getConfig().residentBytes
    level = 'none'
    timer = setInterval(tick, WATCH_PERIOD_MS)
    timer.unref()
    stopConfig = onResidentBytes(setBudget)
  }
  followers.add(follower)
  if (follower.pressure) {
    const now = memoryPressure().level
    if (now !== level) setLevel(now)
    else follower.onPressure(now)
  }
  follower.onBudget(budget)
  return () => {
    followers.delete(follower)
    if (followers.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
      stopConfig?.()
      stopConfig = undefined
    }
  }
}
