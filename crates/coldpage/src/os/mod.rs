//! The platform layer, the floor of the crate: every system call, and nothing else.
//!
//! It imports nothing of the crate above it, holds no policy (which scratch directory
//! is safe is decided in `config.rs`; how a failure reads to users in `error.rs` and
//! the callers) and reports failures as `io::Error`s carrying the OS error code
//! (`raw_os_error`). Offsets and lengths are bytes; extents are page-aligned.
//!
//! One file per platform implements the whole interface with the same names and
//! signatures: `unix.rs` (Linux, macOS and other Unix systems), `windows.rs`, and
//! `stub.rs` for every other target, where each operation reports `Unsupported` (an
//! uninhabited [`AnonMap`], errors from every call that would need the OS), so
//! dependants compile everywhere and learn at run time; nothing pretends to work.
//!
//! The interface, each item documented where a platform file defines it:
//! - memory: [`page_size`], [`AnonMap`] (a swap region and its page-out advice),
//!   [`page_out_primitive`], [`page_out_works`] (the probe; `doctor.rs` names each
//!   question about paging out), [`swap_total_bytes`], [`residency`],
//!   [`lock_memory`], [`anon_page`];
//! - files: [`dir_meta`], [`user_id`], [`open_private_dir`] ([`PrivateDir`]),
//!   [`open_arena_file`], [`write_all_at`], [`read_exact_at`], [`punch_hole`],
//!   [`read_ahead`], [`bytes_on_disk`], [`fs_info`], [`disk_temp_dir`];
//! - maps of arena files: [`map_window`], [`map_view`], and [`mapped`], the table of
//!   live maps that turns a media error under one into an error instead of a `SIGBUS`;
//! - the machine: [`kernel`], [`pressure_files`], [`pressure_reported`], [`errno`].
//!
//! The results are the named types below, defined once for every platform.

use std::fs::File;
use std::io;
use std::path::PathBuf;

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
#[cfg_attr(not(any(unix, windows)), path = "stub.rs")]
mod imp;
pub use imp::*;

pub mod copy;

/// The guarded copies out of file maps and their map table (see `unix_mapped.rs`).
#[cfg(unix)]
#[path = "unix_mapped.rs"]
pub mod mapped;

/// Guarded copies out of file maps: not on this platform (there is no `SIGBUS` to
/// catch), so small reads use positioned reads and nothing is ever poisoned.
#[cfg(not(unix))]
pub mod mapped {
    /// Whether guarded copies can run here: never.
    pub fn available() -> bool {
        false
    }

    /// Never called where [`available`] is false.
    ///
    /// # Safety
    /// As on Unix; this platform has no guarded copy.
    pub unsafe fn copy(_src: *const u8, _dst: *mut u8, _len: usize) -> std::io::Result<()> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    /// Entries of the map table (none is kept here).
    pub const SLOTS: usize = 1 << 15;

    /// A map's entry in the table: nothing to record on this platform.
    #[derive(Debug)]
    pub struct Registration;

    /// Records nothing (a media error under a map is not a signal here).
    pub fn register(_start: *const u8, _len: usize, _owner: u64, _writable: bool) -> Option<Registration> {
        Some(Registration)
    }

    /// No page is ever poisoned here.
    pub fn poisoned(_start: *const u8, _len: usize) -> bool {
        false
    }

    /// No map is ever poisoned here.
    pub fn owner_poisoned(_owner: u64) -> bool {
        false
    }

    /// No page is ever poisoned here.
    pub fn poison_count() -> usize {
        0
    }

    /// No poisoned pages: nothing, and index 0.
    pub fn poisoned_owners(_from: usize) -> (Vec<u64>, usize) {
        (Vec::new(), 0)
    }
}

/// Of the pages a range of memory spans: how many, and of those how many are resident
/// and how many are swapped out, as the OS reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Residency {
    /// Pages the range spans.
    pub pages: u64,
    /// Pages in RAM.
    pub resident: u64,
    /// Pages in swap (Windows: not in the working set).
    pub swapped: u64,
}

/// What the filesystem under a path is.
#[derive(Debug, Clone)]
pub struct FsInfo {
    /// A short name: "ext4", "tmpfs", "apfs", "NTFS", ... or a hex magic.
    pub name: String,
    /// Whether the filesystem lives in RAM (paging to it saves nothing).
    pub is_ram: bool,
    /// Bytes available to this user.
    pub free_bytes: u64,
}

/// Where this platform reports memory pressure in files, those that exist.
#[derive(Debug, Clone, Default)]
pub struct PressureFiles {
    /// Linux's PSI file (`/proc/pressure/memory`).
    pub psi: Option<PathBuf>,
    /// This process's memory cgroup directory (v2, or v1's memory controller).
    pub cgroup: Option<PathBuf>,
}

/// A memory-pressure level the OS reports itself.
#[derive(Debug, Clone)]
pub struct ReportedPressure {
    /// 0 none, 1 moderate, 2 critical.
    pub level: u8,
    /// Where it came from: `"windows"`, `"macos"`.
    pub source: &'static str,
    /// What was read, for people.
    pub detail: String,
}

/// What a directory entry is, as the OS reports it without following a link.
#[derive(Debug, Clone, Copy)]
pub struct DirMeta {
    /// A symlink (Unix) or a reparse point, a junction or a symlink (Windows).
    pub is_link: bool,
    /// A directory.
    pub is_dir: bool,
    /// The owner's user id, where the platform has one.
    pub owner: Option<u32>,
    /// The permission bits, where the platform has them.
    pub mode: Option<u32>,
}

/// Why [`open_private_dir`] failed: a check of the caller's refused the scratch
/// directory, the pager's subdirectory could not be made its own, or a system call
/// failed (which one, and on what path).
#[derive(Debug)]
pub enum DirError {
    /// The directory is not safe to use; the reason, for people.
    Refused(String),
    /// This platform has no file backend.
    Unsupported(String),
    /// A system call failed.
    Io {
        /// The system call, e.g. `"mkdirat"`.
        syscall: &'static str,
        /// The path it was given.
        path: PathBuf,
        /// The OS's error.
        source: io::Error,
    },
}

impl DirError {
    /// A mapper of a failed `syscall` on `path` into [`DirError::Io`].
    pub(crate) fn io<'a>(syscall: &'static str, path: &'a std::path::Path) -> impl FnOnce(io::Error) -> DirError + 'a {
        move |source| DirError::Io { syscall, path: path.to_path_buf(), source }
    }
}

/// The checks a scratch directory must pass (its path and what it is), given by the
/// caller: `Err` with the reason refuses it.
pub type DirCheck<'a> = &'a dyn Fn(&std::path::Path, &DirMeta) -> std::result::Result<(), String>;

/// The pager's own private subdirectory of a scratch directory, held open.
pub struct PrivateDir {
    /// Where it is (for messages, `doctor` and the `path` of errors).
    pub path: PathBuf,
    /// Why the usual `coldpage-<user>` subdirectory could not be used (another user
    /// made it, or it is a link), when a fresh one with an unpredictable name is used
    /// instead; `None` normally.
    pub fallback: Option<String>,
    /// The platform's open directory.
    held: imp::HeldDir,
}

/// Maps `len` bytes of `file` from `offset`, shared and read-only ([mmap(2)]): a
/// window that readers copy their extents out of.
///
/// # Safety
/// While the map lives, nothing may truncate `file` under the bytes read through it
/// or rewrite them (memmap2's contract for [`memmap2::Mmap`]).
///
/// [mmap(2)]: https://man7.org/linux/man-pages/man2/mmap.2.html
pub unsafe fn map_window(file: &File, offset: u64, len: usize) -> io::Result<memmap2::Mmap> {
    let mut options = memmap2::MmapOptions::new();
    options.offset(offset).len(len);
    // SAFETY: the caller keeps the mapped bytes of `file` unchanged while the map lives.
    unsafe { options.map(file) }
}

/// Maps `len` bytes of `file` from `offset`, private and copy-on-write ([mmap(2)]
/// `MAP_PRIVATE`): writes through it never reach the file.
///
/// # Safety
/// As [`map_window`]: nothing may truncate or rewrite the mapped bytes of `file`
/// while the map lives.
///
/// [mmap(2)]: https://man7.org/linux/man-pages/man2/mmap.2.html
pub unsafe fn map_view(file: &File, offset: u64, len: usize) -> io::Result<memmap2::MmapMut> {
    let mut options = memmap2::MmapOptions::new();
    options.offset(offset).len(len);
    // SAFETY: the caller keeps the mapped bytes of `file` unchanged while the map lives.
    unsafe { options.map_copy(file) }
}

/// `len` zeroed bytes of anonymous memory of whole pages, mapped on their own (for key
/// material, which [`lock_memory`] then keeps out of swap).
pub fn anon_page(len: usize) -> io::Result<memmap2::MmapMut> {
    memmap2::MmapMut::map_anon(len)
}

/// 64 bits the caller cannot predict, for names of fresh private directories and
/// files (std's `RandomState` keys come from the OS's random number generator, as
/// tempfile's names do from fastrand's seed).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    hasher.finish()
}
