//! The default memory budget of a store (`coldpage::budget`), and the allocator
//! setting made at load.

use napi_derive::napi;

/// A default budget and where it comes from.
#[napi(object)]
pub struct NativeBudget {
    /// Bytes.
    pub bytes: f64,
    /// `"cgroup2"`, `"cgroup1"` or `"physical"`.
    pub source: String,
    /// What was read.
    pub detail: String,
}

/// The default budget of a store: a share of the memory this process can use
/// (`physicalBytes`, Node's `os.totalmem()`, clamped by the memory cgroup's limit).
#[napi]
pub fn default_budget(physical_bytes: f64) -> NativeBudget {
    let b = coldpage::budget::default_budget(physical_bytes.max(0.0) as u64);
    NativeBudget { bytes: b.bytes as f64, source: b.source.to_owned(), detail: b.detail }
}

/// Large blocks get their own memory maps, so freed results go back to the OS.
#[napi_derive::module_init]
fn init() {
    coldpage::budget::map_large_allocations();
}
