/**
 * `Symbol.dispose` for runtimes that lack it (Node >= 20.4 has it), so that
 * `Handle[Symbol.dispose]` and `using` agree on the same symbol.
 */
if (typeof Symbol.dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('nodejs.dispose') })
}
export {}
