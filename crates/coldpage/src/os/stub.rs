//! The platform interface for targets without a pager implementation: each operation
//! reports `Unsupported` (an uninhabited [`AnonMap`] and [`HeldDir`], errors from every
//! call that would need the OS), so dependants compile everywhere and learn at run
//! time; nothing pretends to work. The interface itself is described in `mod.rs`.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::path::{Path, PathBuf};

use super::{DirCheck, DirError, DirMeta, FsInfo, PressureFiles, PrivateDir, ReportedPressure, Residency};

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

/// No memory-pressure files here.
pub fn pressure_files() -> PressureFiles {
    PressureFiles::default()
}

/// No memory-pressure signal here.
pub fn pressure_reported() -> Result<ReportedPressure, String> {
    Err(format!("no memory-pressure signal on {}", std::env::consts::OS))
}

/// The size of a memory page, in bytes (assumed).
pub fn page_size() -> usize {
    4096
}

/// Why this platform has no page-out primitive.
pub fn page_out_primitive() -> Result<&'static str, String> {
    Err(format!("coldpage has no swap backend for {}", std::env::consts::OS))
}

/// Whether the page-out primitive really pages a range out here: never (there is none).
pub fn page_out_works() -> bool {
    false
}

/// No swap is known here.
pub fn swap_total_bytes() -> u64 {
    0
}

/// A value that cannot exist: what this platform holds where others hold the OS's.
#[derive(Debug)]
pub enum Void {}

/// A swap region: none can be made here.
pub struct AnonMap(Void);

impl AnonMap {
    /// `Unsupported`.
    pub fn new(len: usize) -> io::Result<AnonMap> {
        let _ = len;
        Err(unsupported("anonymous memory for the swap backend"))
    }

    /// Unreachable: no `AnonMap` exists.
    pub fn as_slice(&self) -> &[u8] {
        match self.0 {}
    }

    /// Unreachable: no `AnonMap` exists.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self.0 {}
    }

    /// Unreachable: no `AnonMap` exists.
    pub fn mapped_len(&self) -> usize {
        match self.0 {}
    }

    /// Unreachable: no `AnonMap` exists.
    pub fn page_out(&self) -> io::Result<()> {
        match self.0 {}
    }

    /// Unreachable: no `AnonMap` exists.
    pub fn will_need(&self, offset: usize, len: usize) {
        let _ = (offset, len);
        match self.0 {}
    }
}

/// `Unsupported`.
pub fn residency(bytes: &[u8]) -> io::Result<Residency> {
    let _ = bytes;
    Err(unsupported("residency"))
}

/// `Unsupported`.
pub fn dir_meta(path: &Path) -> io::Result<DirMeta> {
    let _ = path;
    Err(unsupported("scratch directories"))
}

/// The system call [`dir_meta`] would make, for error messages.
pub const DIR_META_SYSCALL: &str = "lstat";

/// No user id is known here.
pub fn user_id() -> Option<u32> {
    None
}

/// A private directory: none can be opened here.
pub struct HeldDir(Void);

impl PrivateDir {
    /// Unreachable: no `PrivateDir` exists.
    pub fn remove_fallback(&mut self) {
        match self.held.0 {}
    }
}

/// [`DirError::Unsupported`].
pub fn open_private_dir(scratch_dir: &Path, check: DirCheck<'_>) -> Result<PrivateDir, DirError> {
    let _ = (scratch_dir, check);
    Err(DirError::Unsupported(format!("the file backend is not supported on {}", std::env::consts::OS)))
}

/// Unreachable: no `PrivateDir` exists.
pub fn open_arena_file(dir: &PrivateDir, unique: u64) -> io::Result<File> {
    let _ = unique;
    match dir.held.0 {}
}

/// `Unsupported`.
pub fn write_all_at(file: &File, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    let _ = (file, offset, bufs);
    Err(unsupported("positioned writes"))
}

/// `Unsupported`.
pub fn read_exact_at(file: &File, offset: u64, bufs: &mut [IoSliceMut<'_>]) -> io::Result<()> {
    let _ = (file, offset, bufs);
    Err(unsupported("positioned reads"))
}

/// `Ok(false)`: the extent stays allocated until reuse overwrites it.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    let _ = (file, offset, len);
    Ok(false)
}

/// Does nothing.
pub fn read_ahead(file: &File, offset: u64, len: u64) {
    let _ = (file, offset, len);
}

/// `Unsupported`.
pub fn lock_memory(map: &memmap2::MmapMut) -> io::Result<()> {
    let _ = map;
    Err(unsupported("locking memory"))
}

/// Not known here: 0.
pub fn bytes_on_disk(file: &File) -> u64 {
    let _ = file;
    0
}

/// `Unsupported`.
pub fn fs_info(path: &Path) -> io::Result<FsInfo> {
    let _ = path;
    Err(unsupported("filesystem information"))
}

/// None known.
pub fn disk_temp_dir() -> Option<PathBuf> {
    None
}

/// The OS name.
pub fn kernel() -> String {
    std::env::consts::OS.to_string()
}
