//! Criterion benchmarks of the pager (placeholder until the bench suite lands).
fn main() {}
