//! Unix system calls of the pager (Linux, macOS and other Unix systems): anonymous
//! regions and their advice, swap detection, the scratch directory and arena files,
//! vectored positional I/O, hole punching.
//!
//! Implements the platform interface of `stub.rs`. Linux gets the full feature set:
//! `O_TMPFILE` arenas, `fallocate(PUNCH_HOLE)`, `MADV_COLD`, `/proc/self/pagemap`.
//! macOS gets a file backend (a 0600 `O_EXCL|O_NOFOLLOW` arena unlinked at once,
//! `F_PUNCHHOLE` on APFS) and no swap backend: its `MADV_PAGEOUT` is not a public,
//! documented range hint. Other Unix systems get the file backend without hole punching.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// OS error codes the crate's fault-injection points and tests use.
pub mod errno {
    // Used by the failpoints feature and by tests only.
    #[allow(unused_imports)]
    pub use libc::{EIO, EMFILE, ENOMEM, ENOSPC};
}

/// The size of a memory page, in bytes.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096)
}

/// A private anonymous mapping of whole pages owned by one swap-backed handle.
///
/// Invariant: `ptr` starts a live mapping of `mapped` bytes, a non-zero multiple of the
/// page size, that nothing else references, and `len <= mapped`; it is unmapped exactly
/// once, on drop.
pub struct AnonMap {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
}

// SAFETY: the mapping is plain memory owned exclusively by this value; shared access
// only hands out `&[u8]`, mutation needs `&mut self`.
unsafe impl Send for AnonMap {}
// SAFETY: as above; `&AnonMap` only allows reads and madvise hints, which the kernel
// serialises.
unsafe impl Sync for AnonMap {}

/// The `madvise(2)` advice values the crate uses; none changes the mapping's contents,
/// which is what makes [`AnonMap::advise`] safe.
#[derive(Clone, Copy)]
enum Advice {
    #[cfg(target_os = "linux")]
    Cold,
    WillNeed,
}

impl AnonMap {
    /// `len > 0` zeroed bytes in a mapping of whole pages, populated up front on Linux
    /// (`MAP_POPULATE`: one batch in the kernel instead of a page fault per page while
    /// the bytes are copied in).
    pub fn new(len: usize) -> io::Result<AnonMap> {
        let page = page_size();
        let mapped =
            len.max(1).checked_next_multiple_of(page).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        #[cfg(target_os = "linux")]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        #[cfg(not(target_os = "linux"))]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh private anonymous mapping with no address hint cannot alias
        // any existing memory; the result is checked against MAP_FAILED below.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), mapped, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        debug_assert_eq!(ptr.as_ptr() as usize % page, 0);
        Ok(AnonMap { ptr, len, mapped })
    }

    /// The bytes in use.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points at `mapped >= len` readable bytes owned by `self` (type
        // invariant) and they live as long as the borrow of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes in use, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Bytes of address space held (whole pages).
    pub fn mapped_len(&self) -> usize {
        self.mapped
    }

    /// Applies `madvise(advice)` to the pages overlapping `[offset, offset + len)`.
    fn advise(&self, offset: usize, len: usize, advice: Advice) -> io::Result<()> {
        let page = page_size();
        let start = offset / page * page;
        let end = offset.saturating_add(len).min(self.len).next_multiple_of(page).min(self.mapped);
        if end <= start {
            return Ok(());
        }
        let advice = match advice {
            #[cfg(target_os = "linux")]
            Advice::Cold => libc::MADV_COLD,
            Advice::WillNeed => libc::MADV_WILLNEED,
        };
        // SAFETY: `[start, end)` lies inside our own mapping (clamped to `mapped`
        // above) and starts on a page boundary; no `Advice` changes the contents.
        let rc = unsafe { libc::madvise(self.ptr.as_ptr().wrapping_add(start).cast(), end - start, advice) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `MADV_COLD` over the whole region: the kernel reclaims these pages to swap first.
    pub fn page_out(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return self.advise(0, self.len, Advice::Cold);
        #[cfg(not(target_os = "linux"))]
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// `MADV_WILLNEED` over `[offset, offset + len)`; a failure only loses the hint.
    pub fn will_need(&self, offset: usize, len: usize) {
        let _ = self.advise(offset, len, Advice::WillNeed);
    }
}

impl Drop for AnonMap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`mapped` describe a mapping we own and unmap exactly once; no
        // borrow of the bytes can outlive `self`. A failure (impossible for a valid
        // range) would only leak address space, so the result is ignored.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
    }
}

/// Counts the pages `bytes` spans, and of those the resident and the swapped-out ones,
/// from `/proc/self/pagemap` (bit 63 present, bit 62 swapped). `mincore` would count
/// swap-cache pages as resident, so it is not used.
#[cfg(target_os = "linux")]
pub fn residency(bytes: &[u8]) -> io::Result<(u64, u64, u64)> {
    let page = page_size();
    if bytes.is_empty() {
        return Ok((0, 0, 0));
    }
    let first = bytes.as_ptr() as usize / page;
    let last = (bytes.as_ptr() as usize + bytes.len() - 1) / page;
    let pages = last - first + 1;
    let file = File::open("/proc/self/pagemap")?;
    let mut buf = vec![0u8; pages * 8];
    file.read_exact_at(&mut buf, first as u64 * 8)?;
    let (mut present, mut swapped) = (0u64, 0u64);
    for entry in buf.chunks_exact(8) {
        let bits = u64::from_ne_bytes(entry.try_into().expect("8-byte chunk"));
        present += bits >> 63 & 1;
        swapped += bits >> 62 & 1;
    }
    Ok((pages as u64, present, swapped))
}

/// Residency needs `/proc/self/pagemap`, which only Linux has.
#[cfg(not(target_os = "linux"))]
pub fn residency(bytes: &[u8]) -> io::Result<(u64, u64, u64)> {
    let _ = bytes;
    Err(io::Error::new(io::ErrorKind::Unsupported, "page residency is measured on Linux and Windows"))
}

/// The primitive that pages a region out, or why this platform has none.
pub fn page_out_primitive() -> std::result::Result<&'static str, String> {
    if cfg!(target_os = "linux") {
        Ok("madvise(MADV_COLD)")
    } else if cfg!(target_os = "macos") {
        Err("macOS has no public, documented hint to page a range out (its MADV_PAGEOUT is internal); \
             the swap backend is unsupported there"
            .into())
    } else {
        Err(format!("coldpage has no swap backend for {}", std::env::consts::OS))
    }
}

/// Whether `madvise(MADV_COLD)` is accepted by this kernel (Linux >= 5.4).
pub fn page_out_works() -> bool {
    page_out_primitive().is_ok() && AnonMap::new(page_size()).is_ok_and(|map| map.page_out().is_ok())
}

/// Total size of the active swap areas, from `/proc/swaps` (0 off Linux).
pub fn swap_total_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(2)?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .sum()
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Refuses a scratch directory that another user could tamper with; creates a missing
/// one (mode 0700).
pub fn check_scratch_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let shown = dir.display();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io_at("mkdir", Some(dir.to_path_buf()), e))?;
            std::fs::symlink_metadata(dir).map_err(|e| Error::io_at("lstat", Some(dir.to_path_buf()), e))?
        }
        Err(e) => return Err(Error::io_at("lstat", Some(dir.to_path_buf()), e)),
    };
    if meta.file_type().is_symlink() {
        return Err(Error::Config(format!("scratch dir {shown} is a symlink; give the real directory")));
    }
    if !meta.is_dir() {
        return Err(Error::Config(format!("scratch dir {shown} is not a directory")));
    }
    check_dir_owner(&shown.to_string(), meta.uid(), meta.mode())
}

/// Owner and mode rules shared by the scratch directory and the pager's subdirectory:
/// ours or root's, and not world-writable without the sticky bit.
fn check_dir_owner(shown: &str, uid: u32, mode: u32) -> Result<()> {
    let me = euid();
    if uid != me && uid != 0 {
        return Err(Error::Config(format!(
            "scratch dir {shown} is owned by uid {uid}, not by this user (uid {me}) or root"
        )));
    }
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(Error::Config(format!(
            "scratch dir {shown} is world-writable without the sticky bit (mode {:o})",
            mode & 0o7777
        )));
    }
    Ok(())
}

/// The pager's own 0700 subdirectory (`coldpage-<uid>`, or a fresh one with an
/// unpredictable name when that is not ours) of a scratch directory, held open so that
/// arena files are created relative to it (`openat`), never by path.
pub struct PrivateDir {
    /// Where it is (for messages, `doctor` and the `path` of errors).
    pub path: PathBuf,
    /// Why the usual `coldpage-<uid>` could not be used, when it could not.
    pub fallback: Option<String>,
    fd: File,
    /// The scratch dir and our name in it, to remove a fallback directory at drop.
    parent: File,
    name: String,
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if self.fallback.is_some() {
            // The arena inside is unnamed (O_TMPFILE or unlinked at once), so the
            // directory is empty; a failure only leaves an empty directory behind.
            if let Ok(c) = CString::new(self.name.as_str()) {
                // SAFETY: `parent` is an open directory and `c` a valid NUL-terminated name.
                unsafe { libc::unlinkat(self.parent.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) };
            }
        }
    }
}

/// Opens (creating it if needed) this user's `coldpage-<uid>` subdirectory of
/// `scratch_dir` and removes arena files that killed processes left in it. When that
/// name is taken by someone else (another local user can pre-create it in a sticky
/// `/tmp`) or is a symlink, a new 0700 directory with a random name is made instead
/// and [`PrivateDir::fallback`] says why.
///
/// # Errors
/// [`Error::Config`] when the scratch dir is a symlink, not a directory, or another
/// user's; [`Error::Io`] otherwise.
pub fn open_private_dir(scratch_dir: &Path) -> Result<PrivateDir> {
    fn io<'a>(syscall: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |e| Error::io_at(syscall, Some(path.to_path_buf()), e)
    }
    let parent = open_dir_nofollow(scratch_dir).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => {
            Error::Config(format!("scratch dir {} is a symlink or not a directory", scratch_dir.display()))
        }
        _ => Error::io_at("open", Some(scratch_dir.to_path_buf()), e),
    })?;
    let (uid, mode) = owner_and_mode(&parent).map_err(io("fstat", scratch_dir))?;
    check_dir_owner(&scratch_dir.display().to_string(), uid, mode)?;

    let name = format!("coldpage-{}", euid());
    let path = scratch_dir.join(&name);
    mkdir_at(&parent, &name).map_err(io("mkdirat", &path))?;
    let why = match open_own_dir(&parent, &name, &path)? {
        Ok(fd) => {
            reap_leftovers(&path, &fd);
            return Ok(PrivateDir { path, fallback: None, fd, parent, name });
        }
        Err(why) => why,
    };
    for _ in 0..16 {
        let name = format!("{name}-{:016x}", crate::random_u64());
        let path = scratch_dir.join(&name);
        let c = CString::new(name.as_str()).map_err(|_| Error::Config("bad directory name".into()))?;
        // SAFETY: `parent` is an open directory and `c` a valid NUL-terminated name.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EEXIST) {
                continue;
            }
            return Err(Error::io_at("mkdirat", Some(path), err));
        }
        return match open_own_dir(&parent, &name, &path)? {
            Ok(fd) => Ok(PrivateDir { path, fallback: Some(why), fd, parent, name }),
            Err(theirs) => Err(Error::Config(theirs)),
        };
    }
    Err(Error::Config(format!("{why}, and no fresh private directory could be made in {}", scratch_dir.display())))
}

/// Opens directory `name` of `parent` as ours, mode 0700: `Ok(Err(why))` when it is a
/// symlink, not a directory, or another user's.
fn open_own_dir(parent: &File, name: &str, path: &Path) -> Result<std::result::Result<File, String>> {
    let fd = match open_dir_at(parent, name) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
            return Ok(Err(format!("{} is a symlink or not a directory", path.display())));
        }
        Err(e) => return Err(Error::io_at("openat", Some(path.to_path_buf()), e)),
    };
    let (uid, mode) = owner_and_mode(&fd).map_err(|e| Error::io_at("fstat", Some(path.to_path_buf()), e))?;
    if uid != euid() {
        return Ok(Err(format!("{} is owned by uid {uid}, not this user: someone else created it", path.display())));
    }
    if mode & 0o077 != 0 {
        fchmod(&fd, 0o700).map_err(|e| Error::io_at("fchmod", Some(path.to_path_buf()), e))?;
    }
    Ok(Ok(fd))
}

/// Opens a directory without following a symlink in its last component.
fn open_dir_nofollow(path: &Path) -> io::Result<File> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; the flags ask for a new descriptor.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Creates directory `name` (mode 0700) inside `dir`; an existing one is fine.
fn mkdir_at(dir: &File, name: &str) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is an open directory and `c` a valid NUL-terminated name.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Opens directory `name` inside `dir`, refusing a symlink.
fn open_dir_at(dir: &File, name: &str) -> io::Result<File> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is an open directory and `c` a valid NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Sets the mode of an open file or directory.
fn fchmod(file: &File, mode: u32) -> io::Result<()> {
    // SAFETY: `file` is an open descriptor; fchmod touches no memory of ours.
    let rc = unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The prefix of arena files created by the named-file fallback (never by `O_TMPFILE`).
const ARENA_FILE_PREFIX: &str = ".coldpage-arena-";

/// Opens a fresh, unnamed arena file in `dir`: `O_TMPFILE` where the filesystem
/// supports it, else a `O_CREAT|O_EXCL|O_NOFOLLOW` 0600 file that is unlinked at once.
/// Either way nothing remains on disk once the descriptor closes, even after `kill -9`
/// (except in the microseconds between create and unlink of the fallback, which
/// [`reap_leftovers`] covers).
pub fn open_arena_file(dir: &PrivateDir, unique: u64) -> io::Result<File> {
    let dir = &dir.fd;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `dir` is an open directory, "." a valid NUL-terminated name; the call
        // creates a new unnamed inode and returns a fresh descriptor.
        let fd = unsafe {
            libc::openat(dir.as_raw_fd(), c".".as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600)
        };
        if fd >= 0 {
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            return Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        let err = io::Error::last_os_error();
        if !matches!(
            err.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::ENOENT) | Some(libc::EINVAL)
        ) {
            return Err(err);
        }
    }
    let name = format!("{ARENA_FILE_PREFIX}{}-{unique}", std::process::id());
    let c = CString::new(name.as_str()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is an open directory and `c` a valid NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    unlink_at(dir, &name)?;
    Ok(file)
}

fn unlink_at(dir: &File, name: &str) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `dir` is an open directory and `c` a valid NUL-terminated name.
    let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // Someone (a reaper) unlinked it first: the descriptor is all we need.
    if err.raw_os_error() == Some(libc::ENOENT) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Removes named arena files left behind by a process killed between create and
/// unlink. Safe against live processes: a live owner only ever uses its descriptor,
/// never the name, so unlinking the name early takes nothing from it.
fn reap_leftovers(dir_path: &Path, dir: &File) -> usize {
    let Ok(entries) = std::fs::read_dir(dir_path) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(ARENA_FILE_PREFIX.as_bytes()))
        .filter(|e| e.file_name().to_str().is_some_and(|name| unlink_at(dir, name).is_ok()))
        .count()
}

/// Writes all of `bufs` at `offset`, in as few `pwritev(2)` calls as the kernel allows.
pub fn write_all_at(file: &File, mut offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::io::IoSlice;
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
        let mut rest: &mut [IoSlice<'_>] = &mut slices;
        while !rest.is_empty() {
            let count = rest.len().min(iov_max());
            let off = libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (documented by
            // std); the `count` slices point at live buffers borrowed for this call.
            let n = unsafe { libc::pwritev(file.as_raw_fd(), rest.as_ptr().cast(), count as libc::c_int, off) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            offset += n as u64;
            IoSlice::advance_slices(&mut rest, n as usize);
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for buf in bufs {
            file.write_all_at(buf, offset)?;
            offset += buf.len() as u64;
        }
        Ok(())
    }
}

/// Fills all of `bufs` from `offset` on, in as few `preadv(2)` calls as the kernel
/// allows. Reading past the end of the file is an `UnexpectedEof` error.
pub fn read_exact_at(file: &File, mut offset: u64, bufs: &mut [IoSliceMut<'_>]) -> io::Result<()> {
    // One buffer: plain pread, which the kernel serves faster than a one-entry preadv.
    if let [buf] = bufs {
        return file.read_exact_at(buf, offset);
    }
    #[cfg(target_os = "linux")]
    {
        let mut rest: &mut [IoSliceMut<'_>] = bufs;
        // Leading empty slices would make `advance_slices` bookkeeping noisy; drop them.
        IoSliceMut::advance_slices(&mut rest, 0);
        while !rest.is_empty() {
            let count = rest.len().min(iov_max());
            let off = libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
            // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix (documented
            // by std); the `count` slices point at live, exclusively borrowed buffers.
            let n = unsafe { libc::preadv(file.as_raw_fd(), rest.as_mut_ptr().cast(), count as libc::c_int, off) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                if rest.iter().all(|s| s.is_empty()) {
                    break;
                }
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            offset += n as u64;
            IoSliceMut::advance_slices(&mut rest, n as usize);
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for buf in bufs.iter_mut() {
            file.read_exact_at(buf, offset)?;
            offset += buf.len() as u64;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn iov_max() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_IOV_MAX) };
    usize::try_from(max).ok().filter(|&m| m > 0).unwrap_or(1024)
}

/// Returns `[offset, offset + len)` of `file` to the filesystem with
/// `fallocate(FALLOC_FL_PUNCH_HOLE)`. `Ok(false)` where the filesystem cannot.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        let (Ok(off), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        };
        // SAFETY: fallocate on our own descriptor; it touches no memory of ours.
        let rc = unsafe {
            libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, off, n)
        };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        if matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)) {
            Ok(false)
        } else {
            Err(err)
        }
    }
    #[cfg(target_os = "macos")]
    {
        let (Ok(fp_offset), Ok(fp_length)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        };
        let hole = libc::fpunchhole_t { fp_flags: 0, reserved: 0, fp_offset, fp_length };
        // SAFETY: fcntl(F_PUNCHHOLE) on our own descriptor reads the `fpunchhole_t` we
        // pass by pointer, which lives for the call; it writes no memory of ours.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_PUNCHHOLE, &hole as *const libc::fpunchhole_t) };
        if rc != -1 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        // HFS+ and other filesystems without holes.
        if matches!(err.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EINVAL)) {
            Ok(false)
        } else {
            Err(err)
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = (file, offset, len);
        Ok(false)
    }
}

/// Bytes `file` occupies on disk (`st_blocks * 512`).
pub fn bytes_on_disk(file: &File) -> u64 {
    file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
}

/// `/var/tmp`, which is disk-backed on the systems that put `/tmp` in RAM.
pub fn disk_temp_dir() -> Option<PathBuf> {
    let var_tmp = Path::new("/var/tmp");
    fs_info(var_tmp).is_ok_and(|fs| !fs.is_ram).then(|| var_tmp.to_path_buf())
}

/// Hints that `[offset, offset + len)` of `file` will be read soon (Linux only).
pub fn read_ahead(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        let (Ok(off), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else { return };
        // SAFETY: posix_fadvise on our own descriptor touches no memory of ours; a
        // failure only loses the hint.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), off, n, libc::POSIX_FADV_WILLNEED) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// What the filesystem under a path is.
pub struct FsInfo {
    /// A short name: "ext4", "tmpfs", "xfs", ... or the hex magic.
    pub name: String,
    /// Whether the filesystem lives in RAM (paging to it saves nothing).
    pub is_ram: bool,
    /// Bytes available to an unprivileged user.
    pub free_bytes: u64,
}

/// Describes the filesystem holding `path`.
pub fn fs_info(path: &Path) -> io::Result<FsInfo> {
    let c = cstring(path)?;
    let mut vfs = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid path and `vfs` a writable statvfs-sized buffer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), vfs.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let vfs = unsafe { vfs.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let free_bytes = (vfs.f_bavail as u64).saturating_mul(vfs.f_frsize as u64);
    #[cfg(target_os = "linux")]
    {
        let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: `c` is a valid path and `fs` a writable statfs-sized buffer.
        let rc = unsafe { libc::statfs(c.as_ptr(), fs.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statfs returned 0, so it filled the struct.
        let magic = unsafe { fs.assume_init() }.f_type as u64;
        let (name, is_ram) = match magic {
            0x0102_1994 => ("tmpfs", true),
            0x8584_58f6 => ("ramfs", true),
            0xef53 => ("ext4", false),
            0x5846_5342 => ("xfs", false),
            0x9123_683e => ("btrfs", false),
            0x2fc1_2fc1 => ("zfs", false),
            0x794c_7630 => ("overlayfs", false),
            0x6969 => ("nfs", false),
            0xf2f5_2010 => ("f2fs", false),
            _ => ("", false),
        };
        let name = if name.is_empty() { format!("0x{magic:x}") } else { name.to_string() };
        Ok(FsInfo { name, is_ram, free_bytes })
    }
    #[cfg(target_os = "macos")]
    {
        let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: `c` is a valid path and `fs` a writable statfs-sized buffer.
        let rc = unsafe { libc::statfs(c.as_ptr(), fs.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statfs returned 0, so it filled the struct.
        let fs = unsafe { fs.assume_init() };
        let name: Vec<u8> = fs.f_fstypename.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        let name = String::from_utf8_lossy(&name).into_owned();
        // macOS RAM disks are hfs/apfs volumes on a RAM device: not told apart here.
        Ok(FsInfo { is_ram: name == "tmpfs", name, free_bytes })
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    Ok(FsInfo { name: "unknown".into(), is_ram: false, free_bytes })
}

/// `sysname release` of the running kernel.
pub fn kernel() -> String {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uts` is a writable utsname-sized buffer.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname returned 0, so it filled the struct with NUL-terminated strings.
    let uts = unsafe { uts.assume_init() };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {}", field(&uts.sysname), field(&uts.release))
}

/// Owner uid and mode of an open file.
fn owner_and_mode(file: &File) -> io::Result<(u32, u32)> {
    let meta = file.metadata()?;
    Ok((meta.uid(), meta.mode()))
}
