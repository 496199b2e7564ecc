//! `doctor`: what this machine offers the pager, and what `auto` picks.
//!
//! "Can the pager page out here" is four questions, each with one name in the crate
//! (and the report's field of the same name; JS spells them in camelCase):
//!
//! | name | the question | where it is answered |
//! | --- | --- | --- |
//! | `page_out` (`page_out_primitive`) | which primitive would the swap backend page out with, or why this platform has none (then a swap pageout is `Unsupported`) | `os::page_out_primitive` |
//! | `page_out_works` | does that primitive really page a range out on this system (probed once) | [`crate::page_out_works`] |
//! | `swap_active` | is there swap (a paging file) to page out to | [`crate::selector::swap_active`] |
//! | `swap_pages_out` | do swap-backed handles really leave RAM here: both of the above | [`crate::selector::swap_pages_out`] |
//!
//! `auto` picks swap only when `swap_pages_out` holds with enough swap
//! ([`crate::resolve_auto`]); a swap pageout where it does not hold is accepted but saves
//! no memory, and the pager says so once ([`crate::Pager::claim_swap_warning`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arena::{Arena, Quota};
use crate::config::Config;
use crate::os;
use crate::selector::{page_out_works, resolve_auto, swap_active, swap_pages_out, swap_total_bytes, AutoChoice};

/// A report on the platform and a scratch directory, for humans and ops tooling.
#[derive(Clone, Debug)]
pub struct DoctorReport {
    /// `linux`, `macos`, ...
    pub platform: String,
    /// Kernel name and release.
    pub kernel: String,
    /// Is there swap to page out to (Linux: `/proc/swaps`; Windows: a paging file)?
    /// Says nothing of whether the pager can page out to it (`swap_pages_out`).
    pub swap_active: bool,
    /// Bytes of that swap.
    pub swap_total_bytes: u64,
    /// `page_out_works` on Linux, where the primitive is `madvise(MADV_COLD)`; false
    /// elsewhere.
    pub madv_cold: bool,
    /// Which primitive the swap backend pages out with (`"madvise(MADV_COLD)"`,
    /// `"VirtualUnlock"`), or why this platform has none.
    pub page_out: String,
    /// Does that primitive really page a range out on this system (probed once)?
    /// Says nothing of whether there is swap to page out to (`swap_active`).
    pub page_out_works: bool,
    /// Do swap-backed handles really leave RAM here: `page_out_works` and
    /// `swap_active` both hold?
    pub swap_pages_out: bool,
    /// The scratch directory examined.
    pub scratch_dir: PathBuf,
    /// Its filesystem ("ext4", "tmpfs", ...).
    pub scratch_fs: String,
    /// Whether that filesystem lives in RAM.
    pub scratch_is_ram: bool,
    /// Bytes free there.
    pub scratch_free_bytes: u64,
    /// Why the scratch dir cannot be used, if it cannot.
    pub scratch_error: Option<String>,
    /// Why the pager's usual subdirectory (`coldpage-<user>`) cannot be used, when it
    /// cannot and arenas go to a fresh directory with an unpredictable name instead.
    pub scratch_fallback: Option<String>,
    /// Whether `fallocate(PUNCH_HOLE)` returns freed extents to the filesystem there.
    pub hole_punching: bool,
    /// What `auto` picks and why.
    pub auto: AutoChoice,
    /// The memory-pressure signal: its source (`"psi"`, `"cgroup2"`, `"cgroup1"`,
    /// `"windows"`, `"macos"`, `"none"`), level and reading, from a fresh
    /// [`crate::pressure::Sampler`] (so it never takes an event from [`crate::pressure::sample`]'s callers).
    pub pressure: crate::pressure::Pressure,
    /// Memory maps the pager holds now (read windows over the arena, views, swap
    /// regions): bounded by the bytes it manages, not by the number of handles.
    pub maps_held: u64,
    /// How many views may be zero-copy maps at once; past it a view is a copy.
    pub maps_limit: u64,
    /// Things an operator should fix.
    pub warnings: Vec<String>,
}

/// Examines the platform and `scratch_dir` (opening and releasing a trial arena).
pub fn doctor(scratch_dir: &Path) -> DoctorReport {
    let swap = swap_total_bytes();
    let auto = resolve_auto();
    let mut warnings = Vec::new();
    let fs = os::fs_info(scratch_dir).ok();
    let checked = Config { scratch_dir: scratch_dir.to_path_buf(), ..Config::default() }.validate();
    let mut scratch_fallback = None;
    let (scratch_error, hole_punching) = match checked.and_then(|c| {
        let arena =
            Arc::new(Arena::open(&c.scratch_dir, Arc::new(Quota { max: u64::MAX.into(), ..Quota::default() }))?);
        scratch_fallback.clone_from(&arena.dir.fallback);
        let extent = arena.allocate(1)?;
        os::write_all_at(&arena.file, extent.offset, &[&[1u8; 4096]]).map_err(|e| crate::Error::io("pwritev", e))?;
        drop(extent);
        Ok(arena.punch_works() && arena.bytes_on_disk() == 0)
    }) {
        Ok(punch) => (None, punch),
        Err(e) => (Some(e.to_string()), false),
    };
    if let Some(err) = &scratch_error {
        warnings.push(format!("the file backend cannot use {}: {err}", scratch_dir.display()));
    }
    if let Some(why) = &scratch_fallback {
        warnings.push(format!(
            "{why}: each pager uses a fresh private directory with an unpredictable name instead (removed when it \
             closes); remove the squatted directory to silence this"
        ));
    }
    if fs.as_ref().is_some_and(|f| f.is_ram) {
        warnings.push(format!(
            "{} is on a RAM filesystem: the file backend would page out to memory; set scratchDir to a disk",
            scratch_dir.display()
        ));
    }
    let pressure = crate::pressure::Sampler::from_env().sample();
    if pressure.source == "none" {
        warnings.push(format!(
            "no memory-pressure signal ({}): a store cannot shrink under OS memory pressure here",
            pressure.detail
        ));
    }
    if scratch_error.is_none() && !hole_punching {
        warnings.push(
            "freed scratch extents cannot be deallocated here (no hole punching): they stay allocated and are \
             reused by later pageouts, and the disk gets them back when the process exits"
                .into(),
        );
    }
    DoctorReport {
        platform: std::env::consts::OS.to_string(),
        kernel: os::kernel(),
        swap_active: swap_active(),
        swap_total_bytes: swap,
        madv_cold: cfg!(target_os = "linux") && page_out_works(),
        page_out: os::page_out_primitive().map(str::to_string).unwrap_or_else(|why| why),
        page_out_works: page_out_works(),
        swap_pages_out: swap_pages_out(),
        scratch_dir: scratch_dir.to_path_buf(),
        scratch_fs: fs.as_ref().map(|f| f.name.clone()).unwrap_or_else(|| "unknown".into()),
        scratch_is_ram: fs.as_ref().is_some_and(|f| f.is_ram),
        scratch_free_bytes: fs.map(|f| f.free_bytes).unwrap_or(0),
        scratch_error,
        scratch_fallback,
        hole_punching,
        auto,
        pressure,
        maps_held: crate::maps::maps_held(),
        maps_limit: crate::maps::maps_limit(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn doctor_reports_a_usable_scratch_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let report = super::doctor(tmp.path());
        assert_eq!(report.scratch_error, None);
        assert_eq!(report.platform, std::env::consts::OS);
        assert!(!report.auto.reason.is_empty());
        let bad = super::doctor(&tmp.path().join("missing-file").join("x\0y"));
        assert!(bad.scratch_error.is_some());
    }
}
