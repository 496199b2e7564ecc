/**
 * Options objects checked like `configure`: a key that is not an option of the
 * call is `ERR_INVALID_ARG_VALUE` naming it (`opts.column`), so a misspelt
 * option fails instead of being silently ignored.
 */
import { invalidArgValue } from './errors.js'
import { options } from './validate.js'

/**
 * Checks an options argument: `undefined`/`null` or an object whose own keys are
 * all in `keys`.
 * @param value - what the caller passed
 * @param keys - the options the call knows
 * @param name - the argument's name in messages
 * @returns the options, typed
 */
export function knownOptions<T extends object>(value: unknown, keys: readonly (keyof T & string)[], name = 'opts'): Partial<T> {
  const o = options<T>(value, name)
  for (const key in o) {
    if (Object.hasOwn(o, key) && !(keys as readonly string[]).includes(key)) {
      const known = keys.length === 0 ? 'none' : keys.join(', ')
      throw invalidArgValue(`${name}.${key}`, `absent (not an option here; the options are: ${known})`, o[key])
    }
  }
  return o
}
