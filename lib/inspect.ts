/**
 * What `util.inspect` (and `console.log`) shows of a handle or a store: its
 * class name and its state, as a plain object, never its private fields.
 */
import { type InspectOptions, inspect } from 'node:util'

/**
 * Renders `state` under the class name `name`, as a `[util.inspect.custom]`
 * method does. Tolerates any arguments (a direct call with garbage gets the
 * defaults): only a numeric `depth` and well-typed options are used.
 */
export function inspectState(name: string, state: object, depth: unknown, opts: unknown): string {
  if (typeof depth === 'number' && depth < 0) return `[${name}]`
  const o = (typeof opts === 'object' && opts !== null ? opts : {}) as Record<string, unknown>
  const options: InspectOptions = {}
  if (typeof o.colors === 'boolean') options.colors = o.colors
  if (typeof o.breakLength === 'number') options.breakLength = o.breakLength
  if (typeof o.compact === 'boolean' || typeof o.compact === 'number') options.compact = o.compact
  return `${name} ${inspect(state, options)}`
}
