//! Unix system calls of the pager: anonymous regions and their advice, swap detection,
//! the scratch directory and arena files, vectored positional I/O, hole punching.
//!
//! All `unsafe` of the crate lives here. Linux gets the full feature set; other Unix
//! systems get a file backend without `O_TMPFILE`, hole punching or read-ahead hints,
//! and no swap backend.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::ptr::NonNull;

/// The size of a memory page, in bytes.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096)
}

/// Memory the pager owns for one swap-backed handle.
///
/// Regions of [`SMALL_REGION`] bytes or more are a private anonymous mapping of whole
/// pages (invariant: `ptr` starts a live mapping of `mapped` bytes, a non-zero multiple
/// of the page size, that nothing else references, `len <= mapped`; unmapped exactly
/// once, on drop). Smaller ones live on the heap: a mapping would cost two system calls
/// and a page fault for bytes that `MADV_COLD` cannot act on anyway (it works on whole
/// pages), and heap pages are anonymous memory the kernel can swap all the same.
pub struct AnonRegion(Mem);

enum Mem {
    Map { ptr: NonNull<u8>, len: usize, mapped: usize },
    Heap(Box<[u8]>),
}

/// Below this size a region lives on the heap instead of in its own mapping.
pub const SMALL_REGION: usize = 64 << 10;

// SAFETY: the region is plain memory owned exclusively by this value; shared access
// only hands out `&[u8]`, mutation needs `&mut self`.
unsafe impl Send for AnonRegion {}
// SAFETY: as above; `&AnonRegion` only allows reads and madvise hints, which the kernel
// serialises.
unsafe impl Sync for AnonRegion {}

impl AnonRegion {
    /// `len` zeroed bytes: on the heap below [`SMALL_REGION`], else a mapping of whole
    /// pages, populated up front (`MAP_POPULATE`: one batch in the kernel instead of a
    /// page fault per page while the bytes are copied in).
    pub fn new(len: usize) -> io::Result<AnonRegion> {
        if len < SMALL_REGION {
            return Ok(AnonRegion(Mem::Heap(vec![0u8; len].into_boxed_slice())));
        }
        let page = page_size();
        let mapped = len.checked_next_multiple_of(page).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
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
        Ok(AnonRegion(Mem::Map { ptr, len, mapped }))
    }

    /// The bytes in use.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            // SAFETY: `ptr` points at `mapped >= len` readable bytes owned by `self`
            // (type invariant) and they live as long as the borrow of `self`.
            Mem::Map { ptr, len, .. } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            Mem::Heap(bytes) => bytes,
        }
    }

    /// The bytes in use, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.0 {
            // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusive access.
            Mem::Map { ptr, len, .. } => unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), *len) },
            Mem::Heap(bytes) => bytes,
        }
    }

    /// Bytes of memory held (whole pages for a mapping).
    pub fn mapped_len(&self) -> usize {
        match &self.0 {
            Mem::Map { mapped, .. } => *mapped,
            Mem::Heap(bytes) => bytes.len(),
        }
    }

    /// Applies `madvise(advice)` to the pages overlapping `[offset, offset + len)` of a
    /// mapping; a no-op for a heap region.
    #[cfg(target_os = "linux")]
    pub fn advise(&self, offset: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
        let Mem::Map { ptr, len: used, mapped } = &self.0 else { return Ok(()) };
        let page = page_size();
        let start = offset / page * page;
        let end = offset.saturating_add(len).min(*used).next_multiple_of(page).min(*mapped);
        if end <= start {
            return Ok(());
        }
        // SAFETY: `[start, end)` lies inside our own mapping (clamped to `mapped` above)
        // and starts on a page boundary; advice values used by the crate (COLD,
        // WILLNEED, PAGEOUT) never change the mapping's contents.
        let rc = unsafe { libc::madvise(ptr.as_ptr().wrapping_add(start).cast(), end - start, advice) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Counts the pages the region spans, and of those the resident and the swapped
    /// out ones, from `/proc/self/pagemap` (bit 63 present, bit 62 swapped). `mincore`
    /// would count swap-cache pages as resident, so it is not used.
    #[cfg(target_os = "linux")]
    pub fn residency(&self) -> io::Result<(u64, u64, u64)> {
        let page = page_size();
        let bytes = self.as_slice();
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
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        if let Mem::Map { ptr, mapped, .. } = &self.0 {
            // SAFETY: `ptr`/`mapped` describe a mapping we own and unmap exactly once;
            // no borrow of the bytes can outlive `self`. A failure (impossible for a
            // valid range) would only leak address space, so the result is ignored.
            unsafe { libc::munmap(ptr.as_ptr().cast(), *mapped) };
        }
    }
}

/// Whether `madvise(MADV_COLD)` is accepted by this kernel (Linux >= 5.4).
#[cfg(target_os = "linux")]
pub fn madv_cold_works() -> bool {
    match AnonRegion::new(SMALL_REGION) {
        Ok(region) => region.advise(0, SMALL_REGION, libc::MADV_COLD).is_ok(),
        Err(_) => false,
    }
}

/// Total size of the active swap areas, from `/proc/swaps`.
#[cfg(target_os = "linux")]
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

/// Opens a directory without following a symlink in its last component.
pub fn open_dir_nofollow(path: &Path) -> io::Result<File> {
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
pub fn mkdir_at(dir: &File, name: &str) -> io::Result<()> {
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
pub fn open_dir_at(dir: &File, name: &str) -> io::Result<File> {
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
pub fn fchmod(file: &File, mode: u32) -> io::Result<()> {
    // SAFETY: `file` is an open descriptor; fchmod touches no memory of ours.
    let rc = unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The prefix of arena files created by the named-file fallback (never by `O_TMPFILE`).
pub const ARENA_FILE_PREFIX: &str = ".coldpage-arena-";

/// Opens a fresh, unnamed arena file in `dir`: `O_TMPFILE` where the filesystem
/// supports it, else a `O_CREAT|O_EXCL|O_NOFOLLOW` 0600 file that is unlinked at once.
/// Either way nothing remains on disk once the descriptor closes, even after `kill -9`
/// (except in the microseconds between create and unlink of the fallback, which
/// [`reap_leftovers`] covers).
pub fn open_arena_file(dir: &File, unique: u64) -> io::Result<File> {
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
pub fn reap_leftovers(dir_path: &Path, dir: &File) -> usize {
    let Ok(entries) = std::fs::read_dir(dir_path) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(ARENA_FILE_PREFIX.as_bytes()))
        .filter(|e| e.file_name().to_str().is_some_and(|name| unlink_at(dir, name).is_ok()))
        .count()
}

/// Writes all of `bufs` at `offset`, in as few `pwritev(2)` calls as the kernel allows.
pub fn pwritev_all(file: &File, mut offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
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
pub fn preadv_exact(file: &File, mut offset: u64, bufs: &mut [IoSliceMut<'_>]) -> io::Result<()> {
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
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        Ok(false)
    }
}

/// Hints that `[offset, offset + len)` of `file` will be read soon.
pub fn fadvise_willneed(file: &File, offset: u64, len: u64) {
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
    #[cfg(not(target_os = "linux"))]
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
pub fn owner_and_mode(file: &File) -> io::Result<(u32, u32)> {
    let meta = file.metadata()?;
    Ok((meta.uid(), meta.mode()))
}
