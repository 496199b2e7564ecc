// Property tests: random argument types and values thrown at every exported
// function and Handle method see only SPEC's errors, never a crash, and valid
// reads always match a plain Buffer model.
import { fc, testProp } from '@fast-check/ava'
import * as coldpage from 'coldpage'
import { pageout } from 'coldpage'

import { BACKENDS, bytes } from './helpers.js'

const SPEC_CODES = new Set([
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_COLDPAGE_DISPOSED',
  'ERR_COLDPAGE_CORRUPT',
  'ERR_COLDPAGE_NO_SPACE',
  'ERR_COLDPAGE_IO',
  'ERR_COLDPAGE_CONFIG',
  'ERR_COLDPAGE_UNSUPPORTED',
])

/** Anything at all, biased towards what the API almost accepts. */
const anything = fc.oneof(
  fc.anything({ withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true }),
  fc.integer({ min: -10, max: 200_000 }),
  fc.double(),
  fc.constantFrom(-0, 0.5, -1, 2 ** 53, 2 ** 53 - 1, Number.NaN, Infinity, -Infinity, 'swap', 'file', 'auto'),
  fc.uint8Array({ maxLength: 64 }),
  fc.array(fc.tuple(fc.integer({ min: -2, max: 5_000 }), fc.integer({ min: -2, max: 5_000 })), { maxLength: 4 }),
  fc.record({ backend: fc.constantFrom('swap', 'file', 'tape', 1) }),
  fc.record({ signal: fc.constantFrom(undefined, null, 'x', new AbortController().signal) }),
)

function onlySpecErrors(call: () => unknown): Promise<boolean> | boolean {
  const check = (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code
    if (err instanceof Error && typeof code === 'string' && SPEC_CODES.has(code)) return true
    throw new Error(`not a SPEC error: ${String(err)} (code ${String(code)})`, { cause: err })
  }
  let result: unknown
  try {
    result = call()
  } catch (err) {
    return check(err)
  }
  if (result instanceof Promise) return result.then(() => true, check)
  return true
}

const args = fc.array(anything, { maxLength: 3 })

const handleMethods = [
  'readAt',
  'readAtAsync',
  'readAtMany',
  'readAtManyAsync',
  'readInto',
  'view',
  'prefetch',
  'take',
  'takeAsync',
  'dispose',
] as const

for (const backend of BACKENDS) {
  const data = bytes(5_000)
  testProp(
    `${backend}: random arguments to Handle methods give only SPEC errors`,
    [fc.constantFrom(...handleMethods), args, fc.boolean()],
    async (t, method, argv, dispose) => {
      const h = pageout(data, { backend })
      if (dispose) h.dispose()
      const fn = h[method] as (...a: unknown[]) => unknown
      t.true(await onlySpecErrors(() => fn.apply(h, argv)))
      h.dispose()
    },
    { numRuns: 400 },
  )
}

const moduleFunctions = ['pageout', 'pageoutAsync', 'configure', 'watchConfig'] as const

testProp(
  'random arguments to the module functions give only SPEC errors',
  [fc.constantFrom(...moduleFunctions), args],
  async (t, name, argv) => {
    const before = coldpage.getConfig()
    const fn = coldpage[name] as (...a: unknown[]) => unknown
    const ok = await onlySpecErrors(() => {
      const out = fn(...argv)
      if (out instanceof Promise) {
        return out.then((h: unknown) => (h as { dispose?: () => void })?.dispose?.())
      }
      ;(out as { dispose?: () => void; close?: () => void } | undefined)?.dispose?.()
      ;(out as { close?: () => void } | undefined)?.close?.()
      return out
    })
    coldpage.configure(before)
    t.true(ok)
  },
  { numRuns: 400 },
)

for (const backend of BACKENDS) {
  testProp(
    `${backend}: reads match a Buffer model for any chunks and ranges`,
    [
      fc.array(fc.uint8Array({ maxLength: 3_000 }), { maxLength: 5 }),
      fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }),
    ],
    async (t, parts, picks) => {
      const model = Buffer.concat(parts)
      using h = pageout(parts, { backend })
      t.is(h.byteLength, model.length)
      const ranges = picks.map(([a, b]): [number, number] => {
        const o = model.length === 0 ? 0 : a % (model.length + 1)
        return [o, b % (model.length - o + 1)]
      })
      const expected = ranges.map(([o, l]) => model.subarray(o, o + l))
      t.deepEqual(h.readAtMany(ranges), expected)
      t.deepEqual(await h.readAtManyAsync(ranges), expected)
      for (const [o, l] of ranges) {
        t.deepEqual(h.readAt(o, l), model.subarray(o, o + l))
        t.deepEqual(h.view(o, l), model.subarray(o, o + l))
      }
      t.deepEqual(h.take(), model)
    },
    { numRuns: 150 },
  )
}
