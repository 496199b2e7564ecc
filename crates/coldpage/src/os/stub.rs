//! The platform interface, for targets without a pager implementation: every item
//! every platform file (`unix.rs`, `windows.rs`) must provide, with the same names and
//! signatures. Here each operation reports `Unsupported` (an uninhabited [`AnonMap`],
//! errors from every call that would need the OS), so dependants compile everywhere
//! and learn at run time; nothing pretends to work.
//!
//! Conventions of the interface: I/O failures are `io::Error`s carrying the OS error
//! code (`raw_os_error`); policy decisions (is a scratch directory safe?) are
//! [`crate::Error::Config`]. Offsets and lengths are bytes; extents are page-aligned.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// OS error codes the crate's fault-injection points and tests use.
pub mod errno {
    #![allow(dead_code)] // used by the failpoints feature and by tests only
    /// An I/O error.
    pub const EIO: i32 = 5;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Too many open files.
    pub const EMFILE: i32 = 24;
    /// No space left on the device.
    pub const ENOSPC: i32 = 28;
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("{what} is not implemented on {}", std::env::consts::OS))
}

/// Where this platform reports memory pressure in files (Linux: the PSI file and
/// this process's memory cgroup directory), those that exist.
pub fn pressure_files() -> (Option<PathBuf>, Option<PathBuf>) {
    (None, None)
}

/// The memory-pressure level the OS reports itself (0 none, 1 moderate, 2 critical),
/// with its source name (`"windows"`, `"macos"`) and what it read, or why there is none.
pub fn pressure_reported() -> std::result::Result<(u8, &'static str, String), String> {
    Err(format!("no memory-pressure signal on {}", std::env::consts::OS))
}

/// The size of a memory page, in bytes.
pub fn page_size() -> usize {
    4096
}

/// The name of the primitive that pages a region out (`"madvise(MADV_COLD)"`,
/// `"VirtualUnlock"`), or why this platform has none.
pub fn page_out_primitive() -> std::result::Result<&'static str, String> {
    Err(format!("coldpage has no swap backend for {}", std::env::consts::OS))
}

/// Whether the page-out primitive works here (a one-time probe; cached by the caller).
pub fn page_out_works() -> bool {
    false
}

/// Bytes of swap (Linux: active swap areas; Windows: the paging files) the OS can page
/// anonymous memory out to right now.
pub fn swap_total_bytes() -> u64 {
    0
}

enum Void {}

/// A private, zeroed, page-aligned anonymous mapping of whole pages owned by one
/// swap-backed handle; unmapped on drop.
pub struct AnonMap(Void);

impl AnonMap {
    /// Maps `len > 0` zeroed bytes (rounded up to whole pages).
    pub fn new(len: usize) -> io::Result<AnonMap> {
        let _ = len;
        Err(unsupported("anonymous memory for the swap backend"))
    }

    /// The bytes in use.
    pub fn as_slice(&self) -> &[u8] {
        match self.0 {}
    }

    /// The bytes in use, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self.0 {}
    }

    /// Bytes of address space held (whole pages).
    pub fn mapped_len(&self) -> usize {
        match self.0 {}
    }

    /// Asks the OS to page the whole region out first when memory is needed.
    pub fn page_out(&self) -> io::Result<()> {
        match self.0 {}
    }

    /// Hints that `[offset, offset + len)` will be read soon.
    pub fn will_need(&self, offset: usize, len: usize) {
        let _ = (offset, len);
        match self.0 {}
    }
}

/// Of the pages spanned by `bytes` (any memory of this process): how many, how many
/// are resident, and how many are swapped out, as the OS reports them.
pub fn residency(bytes: &[u8]) -> io::Result<(u64, u64, u64)> {
    let _ = bytes;
    Err(unsupported("residency"))
}

/// Checks that `dir` is safe to hold scratch files: an existing real directory, not a
/// link, that no other user can tamper with.
///
/// # Errors
/// [`Error::Config`] naming the reason; [`Error::Io`] when it cannot be examined.
pub fn check_scratch_dir(dir: &Path) -> Result<()> {
    let _ = dir;
    Err(Error::Unsupported(format!("scratch directories are not supported on {}", std::env::consts::OS)))
}

/// The pager's own private subdirectory of a scratch directory, held open.
pub struct PrivateDir {
    /// Where it is (for messages, `doctor` and `path` of errors).
    pub path: PathBuf,
    /// Why the usual `coldpage-<user>` subdirectory could not be used (another user
    /// made it, or it is a link), when a fresh one with an unpredictable name is used
    /// instead; `None` normally.
    pub fallback: Option<String>,
    _void: Void,
}

impl PrivateDir {
    /// Removes a fallback directory once the arena file inside is open.
    pub fn remove_fallback(&mut self) {
        match self._void {}
    }
}

/// Opens (creating it if needed) this user's private subdirectory of `scratch_dir`.
///
/// # Errors
/// [`Error::Config`] when it is unsafe (a link, not a directory, another user's);
/// [`Error::Io`] otherwise.
pub fn open_private_dir(scratch_dir: &Path) -> Result<PrivateDir> {
    let _ = scratch_dir;
    Err(Error::Unsupported(format!("the file backend is not supported on {}", std::env::consts::OS)))
}

/// Opens a fresh arena file in `dir` that has no name other processes can open and
/// leaves nothing on disk once this process exits, however it exits.
pub fn open_arena_file(dir: &PrivateDir, unique: u64) -> io::Result<File> {
    let _ = unique;
    match dir._void {}
}

/// Writes all of `bufs`, concatenated, at `offset`, without moving a shared file pointer.
pub fn write_all_at(file: &File, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    let _ = (file, offset, bufs);
    Err(unsupported("positioned writes"))
}

/// Fills all of `bufs` from `offset` on, without moving a shared file pointer. Reading
/// past the end of the file is an `UnexpectedEof` error.
pub fn read_exact_at(file: &File, offset: u64, bufs: &mut [IoSliceMut<'_>]) -> io::Result<()> {
    let _ = (file, offset, bufs);
    Err(unsupported("positioned reads"))
}

/// Returns `[offset, offset + len)` of `file` to the filesystem. `Ok(false)` where the
/// filesystem cannot (the extent stays allocated until reuse overwrites it).
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    let _ = (file, offset, len);
    Ok(false)
}

/// Hints that `[offset, offset + len)` of `file` will be read soon (may do nothing).
pub fn read_ahead(file: &File, offset: u64, len: u64) {
    let _ = (file, offset, len);
}

/// Keeps `map`'s pages out of swap (for key material); fails where the OS refuses.
pub fn lock_memory(map: &memmap2::MmapMut) -> io::Result<()> {
    let _ = map;
    Err(unsupported("locking memory"))
}

/// Bytes `file` occupies on disk.
pub fn bytes_on_disk(file: &File) -> u64 {
    let _ = file;
    0
}

/// What the filesystem under a path is.
pub struct FsInfo {
    /// A short name: "ext4", "tmpfs", "apfs", "NTFS", ... or a hex magic.
    pub name: String,
    /// Whether the filesystem lives in RAM (paging to it saves nothing).
    pub is_ram: bool,
    /// Bytes available to this user.
    pub free_bytes: u64,
}

/// Describes the filesystem holding `path`.
pub fn fs_info(path: &Path) -> io::Result<FsInfo> {
    let _ = path;
    Err(unsupported("filesystem information"))
}

/// A disk-backed directory to use when the temporary directory lives in RAM.
pub fn disk_temp_dir() -> Option<PathBuf> {
    None
}

/// The OS name and release.
pub fn kernel() -> String {
    std::env::consts::OS.to_string()
}

/// Guarded copies out of file maps (see `unix_mapped.rs`): not on this platform, so
/// small reads use positioned reads.
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

    /// Entries of the map table (none is kept here: there is no `SIGBUS` to catch).
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
