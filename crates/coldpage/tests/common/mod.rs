//! Helpers shared by the scenario tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use coldpage::{Config, Pager};

/// A pager over a fresh scratch dir (removed when the `TempDir` drops).
pub fn pager() -> (Pager, tempfile::TempDir) {
    pager_with(|_| {})
}

/// Like [`pager`] with the config adjusted by `edit`.
pub fn pager_with(edit: impl FnOnce(&mut Config)) -> (Pager, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config { scratch_dir: dir.path().to_path_buf(), ..Config::default() };
    edit(&mut config);
    (Pager::new(config).expect("pager"), dir)
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A xorshift64 generator of pseudo-random numbers from `seed` (non-zero).
pub fn rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// OS error codes the pager's fault-injection points report (as `os::errno` in the crate).
pub mod errno {
    #![allow(unused_imports)]
    #[cfg(unix)]
    pub use libc::{EIO, EMFILE, ENOMEM, ENOSPC};
    /// ERROR_IO_DEVICE.
    #[cfg(windows)]
    pub const EIO: i32 = 1117;
    /// ERROR_NOT_ENOUGH_MEMORY.
    #[cfg(windows)]
    pub const ENOMEM: i32 = 8;
    /// ERROR_TOO_MANY_OPEN_FILES.
    #[cfg(windows)]
    pub const EMFILE: i32 = 4;
    /// ERROR_DISK_FULL.
    #[cfg(windows)]
    pub const ENOSPC: i32 = 112;
}

/// The name of the pager's own subdirectory of a scratch dir (`coldpage-<uid>` on
/// Unix, `coldpage-<USERNAME>` on Windows).
pub fn private_dir_name() -> String {
    #[cfg(unix)]
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() }.to_string();
    #[cfg(windows)]
    let user: String = std::env::var("USERNAME")
        .unwrap_or_else(|_| "user".into())
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    format!("coldpage-{user}")
}

/// The pager's own subdirectory of a scratch dir.
#[cfg(unix)]
pub fn arena_dir(scratch: &Path) -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    scratch.join(format!("coldpage-{}", unsafe { libc::geteuid() }))
}

/// The `/proc/self/fd/N` path of this process's arena file in `scratch`.
#[cfg(unix)]
pub fn arena_fd_path(scratch: &Path) -> PathBuf {
    let dir = arena_dir(scratch);
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_link(p).is_ok_and(|t| t.starts_with(&dir) && t != dir))
        .unwrap_or_else(|| panic!("no open arena file under {}", dir.display()))
}

/// Every regular file below `dir` with the bytes it holds on disk.
pub fn files_below(dir: &Path) -> Vec<(PathBuf, u64)> {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                #[cfg(unix)]
                let on_disk = meta.blocks() * 512;
                #[cfg(not(unix))]
                let on_disk = meta.len();
                out.push((entry.path(), on_disk));
            }
        }
    }
    out
}
