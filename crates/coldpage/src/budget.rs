//! `budget`: how much memory this process can really use, and the default memory
//! budget derived from it (a store created without `residentBytes` uses it).
//!
//! The memory a process can use is the smallest of physical RAM and the limits of
//! its memory cgroup and of the cgroup's ancestors: v2 `memory.max` and
//! `memory.high` (the kernel throttles and reclaims hard above `high`), v1
//! `memory.limit_in_bytes` and the `hierarchical_memory_limit` of `memory.stat`.
//! The cgroup is the one [`crate::pressure`] reads (the `COLDPAGE_PRESSURE_CGROUP`
//! test and ops hook included). The default budget is [`DEFAULT_FRACTION`] of it:
//! the resident values of a store are one part of a process that also holds its
//! JS heap, its code and the results it reads back.

use std::path::Path;

use crate::pressure;

/// The share of the memory a process can use that a store keeps resident by default.
pub const DEFAULT_FRACTION: f64 = 0.25;

/// The memory this process can use, and where that figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usable {
    /// Bytes.
    pub bytes: u64,
    /// `"cgroup2"` or `"cgroup1"` when a cgroup limit below physical RAM sets it,
    /// else `"physical"`.
    pub source: &'static str,
    /// What was read, for people.
    pub detail: String,
}

/// The memory this process can use: physical RAM (`physical_bytes`, as the runtime
/// reports it: Node's `os.totalmem()`) clamped by this process's memory cgroup limit.
///
/// # Examples
/// ```
/// let usable = coldpage::budget::usable_memory(8 << 30);
/// assert!(usable.bytes <= 8 << 30);
/// ```
pub fn usable_memory(physical_bytes: u64) -> Usable {
    usable_memory_in(pressure::cgroup_dir().as_deref(), physical_bytes)
}

/// [`usable_memory`] with the memory cgroup directory `cgroup` (v2 or v1 files).
pub fn usable_memory_in(cgroup: Option<&Path>, physical_bytes: u64) -> Usable {
    let physical = Usable {
        bytes: physical_bytes,
        source: "physical",
        detail: format!("physical memory {}", mib(physical_bytes)),
    };
    let Some(dir) = cgroup else { return physical };
    match cgroup_limit(dir) {
        Some((limit, source, file)) if limit < physical_bytes => Usable {
            bytes: limit,
            source,
            detail: format!("{file}: {} (physical memory {})", mib(limit), mib(physical_bytes)),
        },
        Some((limit, _, file)) => Usable {
            detail: format!("physical memory {} ({file}: {}, above it)", mib(physical_bytes), mib(limit)),
            ..physical
        },
        None => Usable {
            detail: format!("physical memory {} (no limit in {})", mib(physical_bytes), dir.display()),
            ..physical
        },
    }
}

/// The default budget: [`DEFAULT_FRACTION`] of [`usable_memory`], with its source.
pub fn default_budget(physical_bytes: u64) -> Usable {
    fraction_of(usable_memory(physical_bytes))
}

/// [`DEFAULT_FRACTION`] of `usable`, rounded down to whole bytes.
pub fn fraction_of(usable: Usable) -> Usable {
    let bytes = (usable.bytes as f64 * DEFAULT_FRACTION) as u64;
    Usable { bytes, detail: format!("{:.0}% of {}", DEFAULT_FRACTION * 100.0, usable.detail), ..usable }
}

/// The smallest limit of `dir` and its ancestors that hold the same kind of files:
/// the limit, `"cgroup2"`/`"cgroup1"`, and the file that set it.
fn cgroup_limit(dir: &Path) -> Option<(u64, &'static str, String)> {
    let read = |d: &Path, name: &str| std::fs::read_to_string(d.join(name)).ok();
    let mut best: Option<(u64, &'static str, String)> = None;
    let mut consider = |limit: Option<u64>, source, file: &Path| {
        if let Some(limit) = limit {
            if best.as_ref().is_none_or(|(b, _, _)| limit < *b) {
                best = Some((limit, source, file.display().to_string()));
            }
        }
    };
    if dir.join("memory.current").exists() {
        let mut d = Some(dir);
        while let Some(here) = d.filter(|h| h.join("memory.max").exists() || h.join("memory.high").exists()) {
            for name in ["memory.max", "memory.high"] {
                consider(read(here, name).as_deref().and_then(pressure::limit), "cgroup2", &here.join(name));
            }
            d = here.parent();
        }
    } else if dir.join("memory.usage_in_bytes").exists() {
        let name = "memory.limit_in_bytes";
        consider(read(dir, name).as_deref().and_then(pressure::limit), "cgroup1", &dir.join(name));
        let stat = read(dir, "memory.stat").unwrap_or_default();
        let hierarchical = pressure::field(&stat, "hierarchical_memory_limit").filter(|&b| b < 1 << 62);
        consider(hierarchical, "cgroup1", &dir.join("memory.stat"));
    }
    best
}

/// The size from which [`map_large_allocations`] has the C allocator map each block.
pub const LARGE_ALLOCATION: usize = 1 << 20;

/// Has the C allocator (glibc's malloc, which allocates V8's ArrayBuffers and
/// coldpage's results) serve every block of [`LARGE_ALLOCATION`] bytes or more with
/// its own memory map, so that freeing a large result returns its memory to the OS
/// at once. Without it glibc raises its threshold as large blocks are freed (up to
/// 32 MiB) and keeps freed read buffers in its heap: hundreds of MiB of resident
/// memory a memory budget cannot see. A block of 1 MiB or more costs one map, never
/// one per small allocation. Leaves an explicit `MALLOC_MMAP_THRESHOLD_` alone.
/// Returns whether it changed the threshold (only glibc Linux has it).
pub fn map_large_allocations() -> bool {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return false;
    }
    set_mmap_threshold()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_mmap_threshold() -> bool {
    // SAFETY: mallopt takes any parameter number and value and reports a refusal by
    // returning 0; M_MMAP_THRESHOLD with 1 MiB (below the 32 MiB maximum) is valid.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_ALLOCATION as libc::c_int) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_mmap_threshold() -> bool {
    false
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn no_cgroup_is_physical_memory() {
        let u = usable_memory_in(None, 8 * GIB);
        assert_eq!((u.bytes, u.source), (8 * GIB, "physical"));
        assert_eq!(fraction_of(u).bytes, 2 * GIB);
    }

    #[test]
    fn cgroup2_max_high_and_ancestors() {
        let root = tempfile::tempdir().unwrap();
        let child = root.path().join("app");
        write(root.path(), &[("memory.max", "3221225472\n"), ("memory.high", "max\n")]);
        write(&child, &[("memory.current", "1000\n"), ("memory.max", "max\n"), ("memory.high", "max\n")]);
        let u = usable_memory_in(Some(&child), 8 * GIB);
        assert_eq!((u.bytes, u.source), (3 * GIB, "cgroup2"), "{}", u.detail);
        write(&child, &[("memory.high", "1073741824\n")]);
        assert_eq!(usable_memory_in(Some(&child), 8 * GIB).bytes, GIB);
        let above = usable_memory_in(Some(&child), GIB / 2);
        assert_eq!((above.bytes, above.source), (GIB / 2, "physical"), "clamped to physical RAM");
    }

    #[test]
    fn cgroup1_limit_and_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("memory.usage_in_bytes", "1000\n"), ("memory.limit_in_bytes", "9223372036854771712\n")]);
        let none = usable_memory_in(Some(dir.path()), 8 * GIB);
        assert_eq!((none.bytes, none.source), (8 * GIB, "physical"), "{}", none.detail);
        write(dir.path(), &[("memory.stat", "cache 0\nhierarchical_memory_limit 2147483648\n")]);
        assert_eq!(usable_memory_in(Some(dir.path()), 8 * GIB).bytes, 2 * GIB);
        write(dir.path(), &[("memory.limit_in_bytes", "1073741824\n")]);
        let u = usable_memory_in(Some(dir.path()), 8 * GIB);
        assert_eq!((u.bytes, u.source), (GIB, "cgroup1"));
        assert!(u.detail.contains("memory.limit_in_bytes"), "{}", u.detail);
    }
}
