//! Unix system calls of the pager (Linux, macOS and other Unix systems): anonymous
//! regions and their advice, swap detection, the scratch directory and arena files,
//! vectored positional I/O, hole punching.
//!
//! Implements the platform interface of `mod.rs`. Linux gets the full feature set:
//! `O_TMPFILE` arenas, `fallocate(PUNCH_HOLE)`, `MADV_COLD`, `/proc/self/pagemap`.
//! macOS gets a file backend (a 0600 `O_EXCL|O_NOFOLLOW` arena unlinked at once,
//! `F_PUNCHHOLE` on APFS) and no swap backend: its `MADV_PAGEOUT` is not a public,
//! documented range hint. Other Unix systems get the file backend without hole punching.

//!
//! System calls go through rustix (safe wrappers) and memmap2 (the mappings); `libc`
//! remains only where neither has the call (`MADV_COLD`, macOS `F_PUNCHHOLE`).

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;
use rustix::fs::{AtFlags, Mode, OFlags};

use super::{DirCheck, DirError, DirMeta, FsInfo, PressureFiles, PrivateDir, ReportedPressure, Residency};

/// OS error codes the crate's fault-injection points and tests use.
pub mod errno {
    // Used by the failpoints feature and by tests only.
    #[allow(unused_imports)]
    pub use libc::{EIO, EMFILE, ENOMEM, ENOSPC};
}

/// The size of a memory page, in bytes.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// A private anonymous mapping of whole pages owned by one swap-backed handle
/// (memmap2's anonymous map: it is `Send + Sync`, and unmapped once, on drop).
pub struct AnonMap {
    map: MmapMut,
    /// The bytes in use (`<= map.len()`, which is whole pages).
    len: usize,
}

impl AnonMap {
    /// `len > 0` zeroed bytes in a mapping of whole pages, populated up front on Linux
    /// (`MAP_POPULATE`: one batch in the kernel instead of a page fault per page while
    /// the bytes are copied in).
    pub fn new(len: usize) -> io::Result<AnonMap> {
        let mapped = len
            .max(1)
            .checked_next_multiple_of(page_size())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut options = memmap2::MmapOptions::new();
        options.len(mapped);
        #[cfg(target_os = "linux")]
        options.populate();
        Ok(AnonMap { map: options.map_anon()?, len })
    }

    /// The bytes in use.
    pub fn as_slice(&self) -> &[u8] {
        &self.map[..self.len]
    }

    /// The bytes in use, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }

    /// Bytes of address space held (whole pages).
    pub fn mapped_len(&self) -> usize {
        self.map.len()
    }

    /// `MADV_COLD` over the whole region: the kernel reclaims these pages to swap first.
    pub fn page_out(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            // memmap2 and rustix only offer MADV_COLD through unsafe calls too.
            // SAFETY: the range is exactly our own live mapping (page-aligned start,
            // whole pages); MADV_COLD only changes how soon the kernel reclaims the
            // pages, never their contents.
            let rc = unsafe { libc::madvise(self.map.as_ptr().cast_mut().cast(), self.map.len(), libc::MADV_COLD) };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        #[cfg(not(target_os = "linux"))]
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// `MADV_WILLNEED` over the pages overlapping `[offset, offset + len)`; a failure
    /// only loses the hint.
    pub fn will_need(&self, offset: usize, len: usize) {
        let page = page_size();
        let start = offset / page * page;
        let end = offset.saturating_add(len).min(self.len).next_multiple_of(page).min(self.map.len());
        if end > start {
            let _ = self.map.advise_range(memmap2::Advice::WillNeed, start, end - start);
        }
    }
}

/// Counts the pages `bytes` spans, and of those the resident and the swapped-out ones,
/// from `/proc/self/pagemap` (bit 63 present, bit 62 swapped). `mincore` would count
/// swap-cache pages as resident, so it is not used.
#[cfg(target_os = "linux")]
pub fn residency(bytes: &[u8]) -> io::Result<Residency> {
    let page = page_size();
    if bytes.is_empty() {
        return Ok(Residency::default());
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
    Ok(Residency { pages: pages as u64, resident: present, swapped })
}

/// Residency needs `/proc/self/pagemap`, which only Linux has.
#[cfg(not(target_os = "linux"))]
pub fn residency(bytes: &[u8]) -> io::Result<Residency> {
    let _ = bytes;
    Err(io::Error::new(io::ErrorKind::Unsupported, "page residency is measured on Linux and Windows"))
}

/// The primitive that pages a region out, or why this platform has none.
pub fn page_out_primitive() -> Result<&'static str, String> {
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

/// Whether the page-out primitive really pages a range out here, tried on one page:
/// `madvise(MADV_COLD)` is accepted by this kernel (Linux >= 5.4).
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

/// What `path` is, without following a symlink in its last component ([lstat(2)]).
///
/// [lstat(2)]: https://man7.org/linux/man-pages/man2/lstat.2.html
pub fn dir_meta(path: &Path) -> io::Result<DirMeta> {
    let meta = std::fs::symlink_metadata(path)?;
    Ok(DirMeta {
        is_link: meta.file_type().is_symlink(),
        is_dir: meta.is_dir(),
        owner: Some(meta.uid()),
        mode: Some(meta.mode()),
    })
}

/// The system call [`dir_meta`] makes, for error messages.
pub const DIR_META_SYSCALL: &str = "lstat";

/// The effective user id of this process.
pub fn user_id() -> Option<u32> {
    Some(euid())
}

/// The pager's own 0700 subdirectory (`coldpage-<uid>`, or a fresh one with an
/// unpredictable name when that is not ours) of a scratch directory, held open so that
/// arena files are created relative to it (`openat`), never by path: the Unix part of
/// a [`PrivateDir`].
pub struct HeldDir {
    fd: File,
    /// The scratch dir and our name in it, to remove a fallback directory.
    parent: File,
    name: String,
    /// Whether the fallback directory was removed already.
    removed: bool,
}

impl PrivateDir {
    /// Removes a fallback directory now that the arena file inside is open: the file
    /// is unnamed (O_TMPFILE or unlinked at once), so the directory is empty and
    /// nothing needs its name again. A process-wide pager is never dropped, so waiting
    /// for `Drop` would leave one empty directory per process. Idempotent.
    pub fn remove_fallback(&mut self) {
        let held = &mut self.held;
        if self.fallback.is_some() && !std::mem::replace(&mut held.removed, true) {
            // A failure only leaves an empty directory behind.
            let _ = rustix::fs::unlinkat(&held.parent, held.name.as_str(), AtFlags::REMOVEDIR);
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        self.remove_fallback();
    }
}

/// Opens (creating it if needed) this user's `coldpage-<uid>` subdirectory of
/// `scratch_dir` and removes arena files that killed processes left in it. When that
/// name is taken by someone else (another local user can pre-create it in a sticky
/// `/tmp`) or is a symlink, a new 0700 directory with a random name is made instead
/// and [`PrivateDir::fallback`] says why.
///
/// `check` judges the scratch directory as opened (`fstat` of the descriptor, so it
/// cannot be swapped between check and use).
///
/// # Errors
/// [`DirError::Refused`] when the scratch dir is a symlink, not a directory, or
/// `check` refuses it; [`DirError::Io`] otherwise.
pub fn open_private_dir(scratch_dir: &Path, check: DirCheck<'_>) -> Result<PrivateDir, DirError> {
    let io = DirError::io;
    let parent = open_dir_nofollow(scratch_dir).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => {
            DirError::Refused(format!("scratch dir {} is a symlink or not a directory", scratch_dir.display()))
        }
        _ => DirError::Io { syscall: "open", path: scratch_dir.to_path_buf(), source: e },
    })?;
    let (uid, mode) = owner_and_mode(&parent).map_err(io("fstat", scratch_dir))?;
    let meta = DirMeta { is_link: false, is_dir: true, owner: Some(uid), mode: Some(mode) };
    check(scratch_dir, &meta).map_err(DirError::Refused)?;

    let name = format!("coldpage-{}", euid());
    let path = scratch_dir.join(&name);
    mkdir_at(&parent, &name).map_err(io("mkdirat", &path))?;
    let why = match open_own_dir(&parent, &name, &path)? {
        Ok(fd) => {
            reap_leftovers(&path, &fd);
            return Ok(PrivateDir { path, fallback: None, held: HeldDir { fd, parent, name, removed: false } });
        }
        Err(why) => why,
    };
    for _ in 0..16 {
        let name = format!("{name}-{:016x}", super::random_u64());
        let path = scratch_dir.join(&name);
        match rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(DirError::Io { syscall: "mkdirat", path, source: e.into() }),
        }
        return match open_own_dir(&parent, &name, &path)? {
            Ok(fd) => Ok(PrivateDir { path, fallback: Some(why), held: HeldDir { fd, parent, name, removed: false } }),
            Err(theirs) => Err(DirError::Refused(theirs)),
        };
    }
    Err(DirError::Refused(format!("{why}, and no fresh private directory could be made in {}", scratch_dir.display())))
}

/// Opens directory `name` of `parent` as ours, mode 0700: `Ok(Err(why))` when it is a
/// symlink, not a directory, or another user's.
fn open_own_dir(parent: &File, name: &str, path: &Path) -> Result<Result<File, String>, DirError> {
    let fd = match open_dir_at(parent, name) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
            return Ok(Err(format!("{} is a symlink or not a directory", path.display())));
        }
        Err(e) => return Err(DirError::io("openat", path)(e)),
    };
    let (uid, mode) = owner_and_mode(&fd).map_err(DirError::io("fstat", path))?;
    if uid != euid() {
        return Ok(Err(format!("{} is owned by uid {uid}, not this user: someone else created it", path.display())));
    }
    if mode & 0o077 != 0 {
        fchmod(&fd, 0o700).map_err(DirError::io("fchmod", path))?;
    }
    Ok(Ok(fd))
}

/// Flags of every directory we open: no following a symlink in the last component.
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// Opens a directory without following a symlink in its last component.
fn open_dir_nofollow(path: &Path) -> io::Result<File> {
    Ok(File::from(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?))
}

/// Creates directory `name` (mode 0700) inside `dir`; an existing one is fine.
fn mkdir_at(dir: &File, name: &str) -> io::Result<()> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Opens directory `name` inside `dir`, refusing a symlink.
fn open_dir_at(dir: &File, name: &str) -> io::Result<File> {
    Ok(File::from(rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?))
}

/// Sets the mode of an open file or directory.
fn fchmod(file: &File, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(file, Mode::from_raw_mode(mode as rustix::fs::RawMode))?)
}

/// The effective user id of this process.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The prefix of arena files created by the named-file fallback (never by `O_TMPFILE`).
const ARENA_FILE_PREFIX: &str = ".coldpage-arena-";

/// Opens a fresh, unnamed arena file in `dir`: `O_TMPFILE` where the filesystem
/// supports it, else a `O_CREAT|O_EXCL|O_NOFOLLOW` 0600 file that is unlinked at once.
/// Either way nothing remains on disk once the descriptor closes, even after `kill -9`
/// (except in the microseconds between create and unlink of the fallback, which
/// [`reap_leftovers`] covers).
pub fn open_arena_file(dir: &PrivateDir, unique: u64) -> io::Result<File> {
    let dir = &dir.held.fd;
    #[cfg(target_os = "linux")]
    {
        let unnamed = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, ".", unnamed, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok(File::from(fd)),
            // Filesystems (and kernels) without O_TMPFILE: the named fallback below.
            Err(
                rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::ISDIR
                | rustix::io::Errno::NOENT
                | rustix::io::Errno::INVAL,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let name = format!("{ARENA_FILE_PREFIX}{}-{unique}", std::process::id());
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::openat(dir, name.as_str(), flags, Mode::from_raw_mode(0o600))?);
    unlink_at(dir, &name)?;
    Ok(file)
}

fn unlink_at(dir: &File, name: &str) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        // ENOENT: someone (a reaper) unlinked it first: the descriptor is all we need.
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
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
    use std::io::IoSlice;
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
    let mut rest: &mut [IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        let count = rest.len().min(IOV_MAX);
        match rustix::io::pwritev(file, &rest[..count], offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills all of `bufs` from `offset` on, in as few `preadv(2)` calls as the kernel
/// allows. Reading past the end of the file is an `UnexpectedEof` error.
pub fn read_exact_at(file: &File, mut offset: u64, bufs: &mut [IoSliceMut<'_>]) -> io::Result<()> {
    // One buffer: plain pread, which the kernel serves faster than a one-entry preadv.
    if let [buf] = bufs {
        return file.read_exact_at(buf, offset);
    }
    let mut rest: &mut [IoSliceMut<'_>] = bufs;
    // Leading empty slices would make `advance_slices` bookkeeping noisy; drop them.
    IoSliceMut::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        let count = rest.len().min(IOV_MAX);
        match rustix::io::preadv(file, &mut rest[..count], offset) {
            Ok(0) if rest.iter().all(|s| s.is_empty()) => break,
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                offset += n as u64;
                IoSliceMut::advance_slices(&mut rest, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Slices per `preadv`/`pwritev` call: POSIX guarantees at least 16; Linux and macOS
/// take 1024 (`UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

/// Returns `[offset, offset + len)` of `file` to the filesystem with
/// `fallocate(FALLOC_FL_PUNCH_HOLE)`. `Ok(false)` where the filesystem cannot.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::FallocateFlags;
        match rustix::fs::fallocate(file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(target_os = "macos")]
    {
        let (Ok(fp_offset), Ok(fp_length)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        };
        let hole = libc::fpunchhole_t { fp_flags: 0, reserved: 0, fp_offset, fp_length };
        use std::os::fd::AsRawFd;
        // rustix has no F_PUNCHHOLE.
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

/// Keeps `map`'s pages out of swap ([mlock(2)], for key material). Fails where
/// `RLIMIT_MEMLOCK` is exhausted; `munmap` unlocks.
///
/// [mlock(2)]: https://man7.org/linux/man-pages/man2/mlock.2.html
pub fn lock_memory(map: &memmap2::MmapMut) -> io::Result<()> {
    map.lock()
}

/// Bytes `file` occupies on disk (`st_blocks * 512`).
pub fn bytes_on_disk(file: &File) -> u64 {
    file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
}

/// `/var/tmp`, the temporary directory that is disk-backed on the systems that put
/// `/tmp` in RAM (whether it is here, [`fs_info`] says).
pub fn disk_temp_dir() -> Option<PathBuf> {
    Some(PathBuf::from("/var/tmp"))
}

/// Hints that `[offset, offset + len)` of `file` will be read soon (Linux only).
pub fn read_ahead(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        // A failure only loses the hint.
        let _ = rustix::fs::fadvise(file, offset, std::num::NonZeroU64::new(len), rustix::fs::Advice::WillNeed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Describes the filesystem holding `path`.
pub fn fs_info(path: &Path) -> io::Result<FsInfo> {
    let vfs = rustix::fs::statvfs(path)?;
    let free_bytes = vfs.f_bavail.saturating_mul(vfs.f_frsize);
    #[cfg(target_os = "linux")]
    {
        #[allow(clippy::unnecessary_cast)]
        let magic = rustix::fs::statfs(path)?.f_type as u64;
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
        let fs = rustix::fs::statfs(path)?;
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
    let uts = rustix::system::uname();
    format!("{} {}", uts.sysname().to_string_lossy(), uts.release().to_string_lossy())
}

/// Where this platform reports memory pressure in files: Linux's PSI file and this
/// process's memory cgroup directory (v2, or v1's memory controller), each where it
/// exists; none elsewhere.
pub fn pressure_files() -> PressureFiles {
    #[cfg(target_os = "linux")]
    {
        let psi = Path::new("/proc/pressure/memory");
        let mount = Path::new("/sys/fs/cgroup");
        let unified = mount.join("cgroup.controllers").exists();
        let cgroup =
            std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|list| memory_cgroup_dir(&list, mount, unified));
        PressureFiles { psi: psi.exists().then(|| psi.to_path_buf()), cgroup }
    }
    #[cfg(not(target_os = "linux"))]
    PressureFiles::default()
}

/// The memory cgroup directory of `/proc/self/cgroup`'s `list`: the `0::path` line
/// under a unified (v2) `mount`, else the v1 line whose controllers include `memory`
/// under `mount/memory`. Inside a cgroup namespace the path may not exist under the
/// mount (the namespace's root is the mount's root): then the mount's root is used.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn memory_cgroup_dir(list: &str, mount: &Path, unified: bool) -> Option<PathBuf> {
    let (root, path) = list.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if unified {
            (id == "0" && controllers.is_empty()).then(|| (mount.to_path_buf(), path))
        } else {
            controllers.split(',').any(|c| c == "memory").then(|| (mount.join("memory"), path))
        }
    })?;
    let dir = root.join(path.trim_start_matches('/'));
    let has_files = |d: &Path| d.join("memory.current").exists() || d.join("memory.usage_in_bytes").exists();
    [dir, root].into_iter().find(|d| has_files(d))
}

/// The memory-pressure level the OS reports itself (0 none, 1 moderate, 2 critical),
/// with its source name and what it read, or why there is none. macOS: the
/// `kern.memorystatus_vm_pressure_level` sysctl (1 normal, 2 warn, 4 critical).
pub fn pressure_reported() -> Result<ReportedPressure, String> {
    #[cfg(target_os = "macos")]
    {
        let mut level: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>();
        // SAFETY: the name is NUL-terminated; `level` is a writable c_int of `len` bytes
        // for the old value; no new value is set (null, 0).
        let rc = unsafe {
            libc::sysctlbyname(
                c"kern.memorystatus_vm_pressure_level".as_ptr(),
                (&raw mut level).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(format!("sysctl kern.memorystatus_vm_pressure_level failed: {}", io::Error::last_os_error()));
        }
        let (os_level, name) = match level {
            4 => (2, "critical"),
            2 => (1, "warn"),
            _ => (0, "normal"),
        };
        let detail = format!("kern.memorystatus_vm_pressure_level {level} ({name})");
        Ok(ReportedPressure { level: os_level, source: "macos", detail })
    }
    #[cfg(target_os = "linux")]
    {
        Err("no PSI file (/proc/pressure/memory) and no memory cgroup found".into())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        Err(format!("no memory-pressure signal on {}", std::env::consts::OS))
    }
}

/// Owner uid and mode of an open file.
fn owner_and_mode(file: &File) -> io::Result<(u32, u32)> {
    let meta = file.metadata()?;
    Ok((meta.uid(), meta.mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cgroup_comes_from_proc_self_cgroup() {
        let mount = tempfile::tempdir().unwrap();
        let v1 = mount.path().join("memory/app/42");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "1\n").unwrap();
        let list = "5:devices:/\n4:cpu,memory:/app/42\n0::/\n";
        assert_eq!(memory_cgroup_dir(list, mount.path(), false), Some(v1.clone()));
        let v2 = mount.path().join("user.slice/app.scope");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.current"), "1\n").unwrap();
        assert_eq!(memory_cgroup_dir("0::/user.slice/app.scope\n", mount.path(), true), Some(v2));
        // In a cgroup namespace the listed path need not exist under the mount.
        std::fs::write(mount.path().join("memory.current"), "1\n").unwrap();
        assert_eq!(memory_cgroup_dir("0::/../elsewhere\n", mount.path(), true), Some(mount.path().to_path_buf()));
        assert_eq!(memory_cgroup_dir("4:cpu:/\n", mount.path(), false), None, "no memory controller");
    }
}
