/**
 * The errors coldpage throws: Node's own argument errors (`TypeError` /
 * `RangeError` with a `code`) and {@link ColdpageError} for the pager's codes.
 * The native binding makes its errors itself, with `code`, `errno`, `syscall`
 * and `path` as properties; here they only get the `ColdpageError` prototype.
 */

/** Every `code` a coldpage error can carry. */
export type ErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_COLDPAGE_DISPOSED'
  | 'ERR_COLDPAGE_CORRUPT'
  | 'ERR_COLDPAGE_NO_SPACE'
  | 'ERR_COLDPAGE_IO'
  | 'ERR_COLDPAGE_CONFIG'
  | 'ERR_COLDPAGE_UNSUPPORTED'
  | 'ERR_COLDPAGE_NO_MEMORY'

/**
 * An error of the pager itself (disposed handle, corruption, no space, I/O,
 * config, unsupported backend).
 *
 * @example
 * ```ts
 * try { handle.readAt(0, 10) } catch (err) {
 *   if (err instanceof ColdpageError && err.code === 'ERR_COLDPAGE_DISPOSED') { ... }
 * }
 * ```
 */
export class ColdpageError extends Error {
  /** The stable code, one of SPEC's `ERR_COLDPAGE_*`. */
  readonly code: ErrorCode
  /** The OS error number, on `ERR_COLDPAGE_IO`. */
  readonly errno?: number
  /** The failing system call, on `ERR_COLDPAGE_IO`. */
  readonly syscall?: string
  /** The path involved, on `ERR_COLDPAGE_IO` where there is one. */
  readonly path?: string

  /**
   * @param code - the stable code
   * @param message - a lowercase, specific message
   * @param extra - errno/syscall for I/O errors, and a cause
   */
  constructor(code: ErrorCode, message: string, extra: { errno?: number; syscall?: string; path?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
    this.code = code
    if (extra.errno !== undefined) this.errno = extra.errno
    if (extra.syscall !== undefined) this.syscall = extra.syscall
    if (extra.path !== undefined) this.path = extra.path
  }

  override get name(): string {
    return 'ColdpageError'
  }
}

type ArgCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE'

/** A `TypeError`/`RangeError` carrying Node's argument error `code`. */
function argError(code: ArgCode, message: string): TypeError | RangeError {
  const err = code === 'ERR_OUT_OF_RANGE' ? new RangeError(message) : new TypeError(message)
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return err
}

/**
 * The `TypeError` (`code: 'ERR_ILLEGAL_CONSTRUCTOR'`, as Node's own internal
 * classes throw) for `new` of a class whose instances only this package makes.
 */
export function illegalConstructor(message: string): TypeError {
  const err = new TypeError(message)
  Object.defineProperty(err, 'code', { value: 'ERR_ILLEGAL_CONSTRUCTOR', enumerable: true, writable: true, configurable: true })
  return err
}

/** Describes a received value for a message: its type and a short rendering. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string':
      return `type string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)})`
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint':
      return `type bigint (${value}n)`
    case 'function':
      return `function ${value.name || '<anonymous>'}`
    case 'object': {
      const ctor = (value as { constructor?: { name?: unknown } }).constructor
      return typeof ctor?.name === 'string' && ctor.name !== '' ? `an instance of ${ctor.name}` : 'an object'
    }
    default:
      return `type ${typeof value}`
  }
}

/** `ERR_INVALID_ARG_TYPE`: "Expected `name` to be <expected>, got <value>". */
export function invalidArgType(name: string, expected: string, value: unknown): TypeError {
  return argError('ERR_INVALID_ARG_TYPE', `Expected \`${name}\` to be ${expected}, got ${describe(value)}`)
}

/** `ERR_INVALID_ARG_VALUE`: a value of the right type that is not allowed. */
export function invalidArgValue(name: string, expected: string, value: unknown): TypeError {
  return argError('ERR_INVALID_ARG_VALUE', `Expected \`${name}\` to be ${expected}, got ${describe(value)}`)
}

/** `ERR_OUT_OF_RANGE`. */
export function outOfRange(name: string, expected: string, value: unknown): RangeError {
  return argError('ERR_OUT_OF_RANGE', `Expected \`${name}\` to be ${expected}, got ${describe(value)}`)
}

/** `ERR_OUT_OF_RANGE` for a range that does not fit in the handle. */
export function rangeOutside(offset: number, length: number, byteLength: number): RangeError {
  return argError(
    'ERR_OUT_OF_RANGE',
    `range at offset ${offset} of length ${length} is outside the handle's ${byteLength} bytes`,
  )
}

/** `ABORT_ERR`, shaped like the AbortError of Node's own promise APIs. */
export function abortError(reason: unknown): Error {
  const err = new Error('The operation was aborted', { cause: reason })
  err.name = 'AbortError'
  Object.defineProperty(err, 'code', { value: 'ABORT_ERR', enumerable: true, writable: true, configurable: true })
  return err
}

/**
 * Gives an error made by the native binding (an `Error` whose `code` is one of
 * the pager's) the {@link ColdpageError} prototype, so that `instanceof` works;
 * its properties and stack are the binding's. Argument errors are already
 * `TypeError`/`RangeError`; anything else passes through.
 */
export function fromNative(err: unknown): unknown {
  if (err instanceof Error && !(err instanceof ColdpageError)) {
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('ERR_COLDPAGE_')) Object.setPrototypeOf(err, ColdpageError.prototype)
  }
  return err
}

/** `ERR_COLDPAGE_NO_MEMORY` for a result of `bytes` bytes that could not be allocated. */
export function noMemory(bytes: number, cause?: unknown): ColdpageError {
  return new ColdpageError('ERR_COLDPAGE_NO_MEMORY', `${bytes} bytes could not be allocated for the result`, { cause })
}

/** Whether `err` is an `Error` with the given `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === code
}
