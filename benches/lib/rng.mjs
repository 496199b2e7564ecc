// A deterministic PRNG for the benchmarks' inputs, so that every contender and
// every run sees the same values.

/** xorshift32 from `seed`: a function returning the next 32-bit unsigned integer. */
export function xorshift32(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return x >>> 0
  }
}
