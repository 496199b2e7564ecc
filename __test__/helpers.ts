// Shared helpers of the ava suites.
import { execFile } from 'node:child_process'
import * as path from 'node:path'
import { promisify } from 'node:util'

import type { ExecutionContext } from 'ava'

import type { BackendName } from 'coldpage'

export const ROOT = path.resolve(__dirname, '..')

/** Both backends where the platform has them (swap is Linux-only). */
export const BACKENDS: BackendName[] = process.platform === 'linux' ? ['swap', 'file'] : ['file']

/** `n` deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** Asserts that `fn` throws an error with `code` (and class, when given). */
export function throwsCode(
  t: ExecutionContext,
  fn: () => unknown,
  code: string,
  cls?: abstract new (...args: never[]) => Error,
): void {
  const err = t.throws(fn, { any: true }) as Error & { code?: string }
  t.is(err?.code, code, String(err))
  if (cls !== undefined) t.true(err instanceof cls, `${String(err)} is a ${cls.name}`)
}

/** Asserts that the promise rejects with an error with `code`. */
export async function rejectsCode(t: ExecutionContext, p: Promise<unknown>, code: string): Promise<void> {
  const err = (await t.throwsAsync(p, { any: true })) as Error & { code?: string }
  t.is(err?.code, code, String(err))
}

/** Runs GC (needs --expose-gc) and lets deferred finalizers run, until `done()` or a timeout. */
export async function collectUntil(done: () => boolean, rounds = 50): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  for (let i = 0; i < rounds; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setTimeout(r, 5))
    if (done()) return true
  }
  return false
}

const run = promisify(execFile)

/** Runs a node script in a child process with extra environment variables. */
export async function node(
  args: string[],
  env: Record<string, string> = {},
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd,
      env: { ...process.env, ...env },
      timeout: 60_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}
