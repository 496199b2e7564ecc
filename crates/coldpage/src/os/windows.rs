//! Windows system calls of the pager: anonymous regions and their working-set trim,
//! the paging file, the scratch directory and arena files, positioned I/O and
//! deallocation of freed extents.
//!
//! Implements the platform interface of `mod.rs`:
//! - the arena is a `FILE_FLAG_DELETE_ON_CLOSE | FILE_ATTRIBUTE_TEMPORARY` file opened
//!   without sharing (no other process can open it while we hold it; the kernel
//!   deletes it when the last handle closes, also when the process is killed), made
//!   sparse (`FSCTL_SET_SPARSE`); freed extents are deallocated with
//!   `FSCTL_SET_ZERO_DATA`. Where that fails (Wine: `ERROR_NOT_SUPPORTED`) the extent
//!   stays allocated and is reused: a working state, reported by `doctor`, never a
//!   failed dispose;
//! - the arena is opened for overlapped I/O and every read and write is positioned
//!   (`ReadFile`/`WriteFile` with an `OVERLAPPED` offset, waited for on a per-thread
//!   event): no shared file pointer, and no per-file-object lock, so the thread pool's
//!   reads run in parallel (a synchronous handle serialises them);
//! - the pager's subdirectory must be owned by this user (its owner SID is the token's
//!   user or default owner) and not a reparse point; else a fresh directory with an
//!   unpredictable name is used instead, and removed when its arena closes;
//! - swap regions are `VirtualAlloc` memory; paging out is `VirtualUnlock` on the
//!   unlocked region, which Windows documents as removing its pages from the working
//!   set, so the memory manager writes them to the paging file first; residency is
//!   `QueryWorkingSetEx`.

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSliceMut};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, LocalFree, ERROR_HANDLE_EOF, ERROR_INVALID_FUNCTION, ERROR_IO_PENDING,
    ERROR_NOT_SUPPORTED, HANDLE,
};
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_FILE_OBJECT};
use windows_sys::Win32::Security::{
    EqualSid, GetTokenInformation, TokenOwner, TokenUser, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    TOKEN_INFORMATION_CLASS, TOKEN_OWNER, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileStandardInfo, GetDiskFreeSpaceExW, GetFileInformationByHandleEx, GetVolumeInformationByHandleW, ReadFile,
    WriteFile, FILE_ATTRIBUTE_REPARSE_POINT, FILE_ATTRIBUTE_TEMPORARY, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_DELETE_ON_CLOSE, FILE_FLAG_OPEN_REPARSE_POINT, FILE_FLAG_OVERLAPPED, FILE_STANDARD_INFO,
};
use windows_sys::Win32::System::Ioctl::{FILE_ZERO_DATA_INFORMATION, FSCTL_SET_SPARSE, FSCTL_SET_ZERO_DATA};
use windows_sys::Win32::System::Memory::{
    CreateMemoryResourceNotification, LowMemoryResourceNotification, QueryMemoryResourceNotification, VirtualAlloc,
    VirtualFree, VirtualLock, VirtualUnlock, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE,
};
use windows_sys::Win32::System::ProcessStatus::{K32QueryWorkingSetEx, PSAPI_WORKING_SET_EX_INFORMATION};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, GlobalMemoryStatusEx, MEMORYSTATUSEX, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{CreateEventW, GetCurrentProcess, OpenProcessToken};
use windows_sys::Win32::System::IO::{DeviceIoControl, GetOverlappedResult, OVERLAPPED};

use super::{DirCheck, DirError, DirMeta, FsInfo, PressureFiles, PrivateDir, ReportedPressure, Residency};

/// OS error codes the crate's fault-injection points and tests use (Win32 codes).
pub mod errno {
    #![allow(dead_code)] // used by the failpoints feature and by tests only
    /// ERROR_IO_DEVICE.
    pub const EIO: i32 = 1117;
    /// ERROR_NOT_ENOUGH_MEMORY.
    pub const ENOMEM: i32 = 8;
    /// ERROR_TOO_MANY_OPEN_FILES.
    pub const EMFILE: i32 = 4;
    /// ERROR_DISK_FULL.
    pub const ENOSPC: i32 = 112;
}

/// The size of a memory page, in bytes.
pub fn page_size() -> usize {
    let mut info = std::mem::MaybeUninit::<SYSTEM_INFO>::zeroed();
    // SAFETY: GetSystemInfo fills the SYSTEM_INFO it is given and cannot fail.
    unsafe { GetSystemInfo(info.as_mut_ptr()) };
    // SAFETY: zero-initialised, then filled by GetSystemInfo above.
    let size = unsafe { info.assume_init() }.dwPageSize as usize;
    if size.is_power_of_two() {
        size
    } else {
        4096
    }
}

/// The primitive that pages a region out.
pub fn page_out_primitive() -> Result<&'static str, String> {
    Ok("VirtualUnlock")
}

/// Whether the page-out primitive really pages a range out here, tried on one page:
/// `VirtualUnlock` accepts an unlocked region. Windows reports
/// `ERROR_NOT_LOCKED` while still trimming the pages (documented), so only other
/// failures count; Wine returns success without modelling working sets.
pub fn page_out_works() -> bool {
    AnonMap::new(page_size()).is_ok_and(|map| map.page_out().is_ok())
}

/// Bytes of paging file: the commit limit beyond physical memory.
pub fn swap_total_bytes() -> u64 {
    let mut status = MEMORYSTATUSEX { dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32, ..Default::default() };
    // SAFETY: `status` is a MEMORYSTATUSEX with dwLength set, as the call requires.
    if unsafe { GlobalMemoryStatusEx(&mut status) } == 0 {
        return 0;
    }
    status.ullTotalPageFile.saturating_sub(status.ullTotalPhys)
}

/// Where this platform reports memory pressure in files: nowhere on Windows (the OS
/// reports it itself, see [`pressure_reported`]).
pub fn pressure_files() -> PressureFiles {
    PressureFiles::default()
}

/// The low-memory resource notification object, made once and kept for the life of
/// the process (the OS signals it while available physical memory is low).
struct LowMemory(HANDLE);

// SAFETY: a notification handle may be queried from any thread; it is never closed.
unsafe impl Send for LowMemory {}
// SAFETY: as above; queries do not mutate the object.
unsafe impl Sync for LowMemory {}

/// The memory-pressure level the OS reports (0 none, 1 moderate, 2 critical): 2 while
/// the `LowMemoryResourceNotification` object is signalled
/// (`QueryMemoryResourceNotification`), 1 at a memory load of 90 % or more
/// (`GlobalMemoryStatusEx`), with what was read; or why neither could be read.
pub fn pressure_reported() -> Result<ReportedPressure, String> {
    static LOW: std::sync::OnceLock<Option<LowMemory>> = std::sync::OnceLock::new();
    let low = LOW.get_or_init(|| {
        // SAFETY: takes no pointers; a null result (failure) is checked here.
        let handle = unsafe { CreateMemoryResourceNotification(LowMemoryResourceNotification) };
        (!handle.is_null()).then_some(LowMemory(handle))
    });
    let low_now = low.as_ref().and_then(|low| {
        let mut state = 0;
        // SAFETY: `low.0` is a live notification handle (never closed); `state` is a
        // writable BOOL.
        let ok = unsafe { QueryMemoryResourceNotification(low.0, &mut state) };
        (ok != 0).then_some(state != 0)
    });
    let mut status = MEMORYSTATUSEX { dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32, ..Default::default() };
    // SAFETY: `status` is a MEMORYSTATUSEX with dwLength set, as the call requires.
    let load = (unsafe { GlobalMemoryStatusEx(&mut status) } != 0).then_some(status.dwMemoryLoad);
    if low_now.is_none() && load.is_none() {
        return Err(format!(
            "QueryMemoryResourceNotification and GlobalMemoryStatusEx failed: {}",
            io::Error::last_os_error()
        ));
    }
    let level = match (low_now, load) {
        (Some(true), _) => 2,
        (_, Some(load)) if load >= 90 => 1,
        _ => 0,
    };
    let low_text = match low_now {
        Some(true) => "signalled",
        Some(false) => "not signalled",
        None => "unavailable",
    };
    let load_text = load.map_or_else(|| "unknown".to_string(), |l| format!("{l}%"));
    let detail = format!("low-memory notification {low_text}, memory load {load_text}");
    Ok(ReportedPressure { level, source: "windows", detail })
}

/// A private `VirtualAlloc` region of whole pages owned by one swap-backed handle.
///
/// Invariant: `ptr` starts a live, committed read-write allocation of `mapped` bytes
/// (a non-zero multiple of the page size) that nothing else references, and
/// `len <= mapped`; it is released exactly once, on drop.
pub struct AnonMap {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
}

// SAFETY: the region is plain memory owned exclusively by this value; shared access
// only hands out `&[u8]`, mutation needs `&mut self`.
unsafe impl Send for AnonMap {}
// SAFETY: as above; `&AnonMap` only allows reads and working-set hints.
unsafe impl Sync for AnonMap {}

impl AnonMap {
    /// `len > 0` zeroed bytes (rounded up to whole pages), committed.
    pub fn new(len: usize) -> io::Result<AnonMap> {
        let mapped = len
            .max(1)
            .checked_next_multiple_of(page_size())
            .ok_or_else(|| io::Error::from_raw_os_error(errno::ENOMEM))?;
        // SAFETY: a fresh allocation with no address hint aliases nothing; the result
        // is checked for null below. VirtualAlloc memory is zeroed.
        let ptr = unsafe { VirtualAlloc(std::ptr::null(), mapped, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
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

    /// `VirtualUnlock` of the whole (unlocked) region: Windows removes its pages from
    /// the working set, so they go to the paging file first when memory is needed.
    pub fn page_out(&self) -> io::Result<()> {
        // ERROR_NOT_LOCKED: the documented result for unlocked memory, pages trimmed.
        const ERROR_NOT_LOCKED: i32 = 158;
        // SAFETY: the range is our own committed allocation (type invariant);
        // VirtualUnlock changes no contents.
        if unsafe { VirtualUnlock(self.ptr.as_ptr().cast::<c_void>(), self.mapped) } != 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(ERROR_NOT_LOCKED) {
            Ok(())
        } else {
            Err(err)
        }
    }

    /// A hint only; Windows reads the pages back on first touch.
    pub fn will_need(&self, offset: usize, len: usize) {
        let _ = (offset, len);
    }
}

impl Drop for AnonMap {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the base of an allocation we own and release exactly once;
        // no borrow of the bytes can outlive `self`. A failure would only leak it.
        unsafe { VirtualFree(self.ptr.as_ptr().cast::<c_void>(), 0, MEM_RELEASE) };
    }
}

/// Of the pages spanned by `bytes`: how many, how many are in the working set
/// (`QueryWorkingSetEx`, bit 0 "valid"), and how many are not (paged out or never
/// touched: Windows does not tell the paging file apart here).
pub fn residency(bytes: &[u8]) -> io::Result<Residency> {
    if bytes.is_empty() {
        return Ok(Residency::default());
    }
    let page = page_size();
    let first = bytes.as_ptr() as usize / page;
    let last = (bytes.as_ptr() as usize + bytes.len() - 1) / page;
    let mut entries: Vec<PSAPI_WORKING_SET_EX_INFORMATION> = (first..=last)
        .map(|p| PSAPI_WORKING_SET_EX_INFORMATION { VirtualAddress: (p * page) as *mut c_void, ..Default::default() })
        .collect();
    let size = u32::try_from(entries.len() * std::mem::size_of::<PSAPI_WORKING_SET_EX_INFORMATION>())
        .map_err(|_| io::Error::from_raw_os_error(errno::ENOMEM))?;
    // SAFETY: GetCurrentProcess returns a pseudo-handle and has no preconditions.
    let process = unsafe { GetCurrentProcess() };
    // SAFETY: `entries` is a writable array of `size` bytes of the struct the call fills.
    if unsafe { K32QueryWorkingSetEx(process, entries.as_mut_ptr().cast(), size) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let pages = entries.len() as u64;
    // SAFETY: every bit pattern of the union is a valid `usize` `Flags`.
    let resident = entries.iter().filter(|e| unsafe { e.VirtualAttributes.Flags } & 1 == 1).count() as u64;
    Ok(Residency { pages, resident, swapped: pages - resident })
}

fn is_reparse_point(meta: &std::fs::Metadata) -> bool {
    meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

/// What `path` is, without following a reparse point (a junction or a symlink).
/// Windows has no owner uid or mode bits to report.
pub fn dir_meta(path: &Path) -> io::Result<DirMeta> {
    let meta = std::fs::symlink_metadata(path)?;
    Ok(DirMeta { is_link: is_reparse_point(&meta), is_dir: meta.is_dir(), owner: None, mode: None })
}

/// The system call [`dir_meta`] makes, for error messages.
pub const DIR_META_SYSCALL: &str = "GetFileAttributesExW";

/// Windows identifies users by SID, not by a uid.
pub fn user_id() -> Option<u32> {
    None
}

/// The pager's own subdirectory (`coldpage-<user>`, or a fresh unpredictable one when
/// that is not ours) of a scratch directory, held open (without `FILE_SHARE_DELETE`) so
/// that it cannot be renamed or swapped for a junction while arenas live in it: the
/// Windows part of a [`PrivateDir`].
pub struct HeldDir(Option<File>);

impl PrivateDir {
    /// A no-op here: Windows cannot remove a directory while the delete-on-close arena
    /// file inside is open, so a fallback directory goes when the pager drops.
    pub fn remove_fallback(&mut self) {}
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if self.fallback.is_some() {
            drop(self.held.0.take());
            // Empty once its arena (delete-on-close) is closed; best effort.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Opens (creating it if needed) this user's subdirectory of `scratch_dir`. When
/// `coldpage-<user>` is a reparse point, not a directory or not owned by this user (an
/// attacker may pre-create it in a shared directory), a new directory with a random
/// name is created instead and [`PrivateDir::fallback`] says why.
///
/// `check` judges the scratch directory first.
///
/// # Errors
/// [`DirError::Refused`] when `check` refuses the scratch dir; [`DirError::Io`]
/// otherwise.
pub fn open_private_dir(scratch_dir: &Path, check: DirCheck<'_>) -> Result<PrivateDir, DirError> {
    let meta = dir_meta(scratch_dir).map_err(DirError::io(DIR_META_SYSCALL, scratch_dir))?;
    check(scratch_dir, &meta).map_err(DirError::Refused)?;
    let user: String = std::env::var("USERNAME")
        .unwrap_or_else(|_| "user".into())
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let name = format!("coldpage-{user}");
    let path = scratch_dir.join(&name);
    match std::fs::create_dir(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(DirError::io("CreateDirectoryW", &path)(e)),
    }
    let why = match open_own_dir(&path)? {
        Ok(held) => return Ok(PrivateDir { path, fallback: None, held: HeldDir(Some(held)) }),
        Err(why) => why,
    };
    for _ in 0..16 {
        let path = scratch_dir.join(format!("{name}-{:016x}", super::random_u64()));
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(DirError::Io { syscall: "CreateDirectoryW", path, source: e }),
        }
        return match open_own_dir(&path)? {
            Ok(held) => Ok(PrivateDir { path, fallback: Some(why), held: HeldDir(Some(held)) }),
            Err(theirs) => Err(DirError::Refused(theirs)),
        };
    }
    Err(DirError::Refused(format!(
        "{why}, and no fresh private directory could be created in {}",
        scratch_dir.display()
    )))
}

/// Opens `path` as a directory of ours: `Ok(Err(why))` when it is a reparse point, not
/// a directory, or owned by someone else.
fn open_own_dir(path: &Path) -> Result<Result<File, String>, DirError> {
    // FILE_FLAG_OPEN_REPARSE_POINT opens a junction itself, not its target, so the
    // checks below see what is really there.
    let held = OpenOptions::new()
        .read(true)
        .share_mode(1 | 2) // FILE_SHARE_READ | FILE_SHARE_WRITE: no delete, no rename
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
        .map_err(DirError::io("CreateFileW", path))?;
    let meta = held.metadata().map_err(DirError::io("GetFileInformationByHandle", path))?;
    if is_reparse_point(&meta) || !meta.is_dir() {
        return Ok(Err(format!("{} is a reparse point or not a directory", path.display())));
    }
    match owned_by_me(&held) {
        Ok(true) => Ok(Ok(held)),
        Ok(false) => Ok(Err(format!("{} is owned by another user: someone else created it", path.display()))),
        Err(e) => Err(DirError::io("GetSecurityInfo", path)(e)),
    }
}

/// Whether the owner SID of `file` is this process's user or its default owner for new
/// objects (an elevated process owns what it creates as Administrators).
fn owned_by_me(file: &File) -> io::Result<bool> {
    let mut owner: PSID = std::ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: a handle we own; `owner` and `descriptor` are valid out pointers, the other
    // outputs are not asked for. `owner` points into `descriptor`, freed below.
    let rc = unsafe {
        GetSecurityInfo(
            file.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    let result = token_sids_match(owner);
    // SAFETY: `descriptor` was allocated by GetSecurityInfo for us to LocalFree, once;
    // `owner` (inside it) is not used after this.
    unsafe { LocalFree(descriptor) };
    result
}

/// Whether `sid` is the process token's user or owner SID.
fn token_sids_match(sid: PSID) -> io::Result<bool> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle and has no preconditions.
    let process = unsafe { GetCurrentProcess() };
    // SAFETY: `process` is the current-process pseudo-handle; `token` a valid out pointer.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let read = |class: TOKEN_INFORMATION_CLASS| -> io::Result<Vec<u64>> {
        let mut len = 0u32;
        // SAFETY: a size query: no buffer, `len` a valid out pointer.
        unsafe { GetTokenInformation(token, class, std::ptr::null_mut(), 0, &mut len) };
        // u64 storage keeps the pointer-bearing structs aligned.
        let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
        // SAFETY: `buf` is writable for `buf.len() * 8 >= len` bytes.
        if unsafe { GetTokenInformation(token, class, buf.as_mut_ptr().cast(), (buf.len() * 8) as u32, &mut len) } == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(buf)
    };
    let result = (|| {
        let user = read(TokenUser)?;
        // SAFETY: GetTokenInformation(TokenUser) filled `user` with a TOKEN_USER (aligned,
        // as u64 storage); the SID it points to lives in the same buffer.
        let user_sid = unsafe { (*user.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        // SAFETY: both SIDs are valid for the duration of the call.
        if unsafe { EqualSid(sid, user_sid) } != 0 {
            return Ok(true);
        }
        let owner = read(TokenOwner)?;
        // SAFETY: as above, for TOKEN_OWNER.
        let owner_sid = unsafe { (*owner.as_ptr().cast::<TOKEN_OWNER>()).Owner };
        // SAFETY: both SIDs are valid for the duration of the call.
        Ok(unsafe { EqualSid(sid, owner_sid) } != 0)
    })();
    // SAFETY: `token` was opened above and is closed once.
    unsafe { CloseHandle(token) };
    result
}

/// Opens a fresh arena file in `dir`: delete-on-close, temporary, not shared, sparse,
/// for overlapped (positioned, parallel) I/O.
pub fn open_arena_file(dir: &PrivateDir, unique: u64) -> io::Result<File> {
    let name = format!(".coldpage-arena-{}-{unique}-{:016x}", std::process::id(), super::random_u64());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .share_mode(0)
        .attributes(FILE_ATTRIBUTE_TEMPORARY)
        .custom_flags(FILE_FLAG_DELETE_ON_CLOSE | FILE_FLAG_OVERLAPPED)
        .open(dir.path.join(name))?;
    // A failure (a filesystem without sparse files) only means freed extents cannot be
    // deallocated, which `punch_hole` reports.
    let _ = control(&file, FSCTL_SET_SPARSE, &[]);
    Ok(file)
}

/// A manual-reset event for this thread's overlapped calls (one at a time per thread).
fn thread_event() -> io::Result<HANDLE> {
    struct Event(HANDLE);
    impl Drop for Event {
        fn drop(&mut self) {
            // SAFETY: an event this thread created and closes once, at thread exit.
            unsafe { CloseHandle(self.0) };
        }
    }
    thread_local! {
        static EVENT: std::cell::OnceCell<Event> = const { std::cell::OnceCell::new() };
    }
    EVENT.with(|cell| {
        if let Some(event) = cell.get() {
            return Ok(event.0);
        }
        // SAFETY: an unnamed manual-reset event with default security; checked below.
        let handle = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(cell.get_or_init(|| Event(handle)).0)
    })
}

fn overlapped_at(offset: u64) -> io::Result<OVERLAPPED> {
    let mut ov = OVERLAPPED { hEvent: thread_event()?, ..Default::default() };
    ov.Anonymous.Anonymous.Offset = offset as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    Ok(ov)
}

/// Waits for the overlapped call on `ov` that returned `ok` and gives its byte count;
/// end of file is `Ok(0)`.
fn finish(file: &File, ok: i32, ov: &OVERLAPPED) -> io::Result<usize> {
    if ok == 0 {
        // SAFETY: reads this thread's last-error value; no preconditions.
        let code = unsafe { GetLastError() };
        if code == ERROR_HANDLE_EOF {
            return Ok(0);
        }
        if code != ERROR_IO_PENDING {
            return Err(io::Error::from_raw_os_error(code as i32));
        }
    }
    let mut done = 0u32;
    // SAFETY: `ov` is the OVERLAPPED of a call issued on `file`; bWait = TRUE returns
    // only once the I/O has completed, so neither it nor the buffer is used afterwards.
    if unsafe { GetOverlappedResult(file.as_raw_handle() as HANDLE, ov, &mut done, 1) } == 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(ERROR_HANDLE_EOF as i32) { Ok(0) } else { Err(err) };
    }
    Ok(done as usize)
}

/// At most this much per ReadFile/WriteFile call (their counts are 32-bit).
const MAX_IO: usize = 1 << 30;

fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    let mut ov = overlapped_at(offset)?;
    let len = buf.len().min(MAX_IO) as u32;
    // SAFETY: `buf` is readable for `len` bytes and `ov` valid; both outlive the I/O,
    // which `finish` waits for before returning.
    let ok = unsafe { WriteFile(file.as_raw_handle() as HANDLE, buf.as_ptr(), len, std::ptr::null_mut(), &mut ov) };
    finish(file, ok, &ov)
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut ov = overlapped_at(offset)?;
    let len = buf.len().min(MAX_IO) as u32;
    // SAFETY: `buf` is writable for `len` bytes and `ov` valid; both outlive the I/O,
    // which `finish` waits for before returning.
    let ok = unsafe { ReadFile(file.as_raw_handle() as HANDLE, buf.as_mut_ptr(), len, std::ptr::null_mut(), &mut ov) };
    finish(file, ok, &ov)
}

/// A `DeviceIoControl` with input `input` and no output, overlapped (as the handle
/// requires), waited for.
fn control(file: &File, code: u32, input: &[u8]) -> io::Result<()> {
    let mut ov = overlapped_at(0)?;
    let mut returned = 0u32;
    // SAFETY: `input` is readable for its length, there is no output buffer, `ov` and
    // `returned` are valid; `finish` waits for completion before they go away.
    let ok = unsafe {
        DeviceIoControl(
            file.as_raw_handle() as HANDLE,
            code,
            input.as_ptr().cast(),
            input.len() as u32,
            std::ptr::null_mut(),
            0,
            &mut returned,
            &mut ov,
        )
    };
    finish(file, ok, &ov).map(|_| ())
}

/// Writes all of `bufs`, concatenated, at `offset` (positioned, overlapped writes).
pub fn write_all_at(file: &File, mut offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    for buf in bufs {
        let mut rest: &[u8] = buf;
        while !rest.is_empty() {
            match write_at(file, rest, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    rest = &rest[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Fills all of `bufs` from `offset` on (positioned, overlapped reads: threads read in
/// parallel). Reading past the end of the file is an `UnexpectedEof` error.
pub fn read_exact_at(file: &File, mut offset: u64, bufs: &mut [IoSliceMut<'_>]) -> io::Result<()> {
    for buf in bufs.iter_mut() {
        let mut rest: &mut [u8] = buf;
        while !rest.is_empty() {
            match read_at(file, rest, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    rest = &mut rest[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Deallocates `[offset, offset + len)` of the sparse arena (`FSCTL_SET_ZERO_DATA`).
/// `Ok(false)` where the filesystem cannot (FAT, Wine).
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    let (Ok(start), Some(Ok(end))) = (i64::try_from(offset), offset.checked_add(len).map(i64::try_from)) else {
        return Err(io::Error::from_raw_os_error(errno::EIO));
    };
    let zero = FILE_ZERO_DATA_INFORMATION { FileOffset: start, BeyondFinalZero: end };
    // SAFETY: FILE_ZERO_DATA_INFORMATION is plain data (two i64s, no padding): viewing
    // it as bytes for the length of the borrow is sound.
    let input = unsafe {
        std::slice::from_raw_parts(
            (&zero as *const FILE_ZERO_DATA_INFORMATION).cast::<u8>(),
            std::mem::size_of::<FILE_ZERO_DATA_INFORMATION>(),
        )
    };
    match control(file, FSCTL_SET_ZERO_DATA, input) {
        Ok(()) => Ok(true),
        Err(err) if matches!(err.raw_os_error(), Some(code) if code == ERROR_NOT_SUPPORTED as i32 || code == ERROR_INVALID_FUNCTION as i32) => {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// A hint only: Windows has no per-range read-ahead call for a handle.
pub fn read_ahead(file: &File, offset: u64, len: u64) {
    let _ = (file, offset, len);
}

/// Keeps `map`'s pages in the working set ([VirtualLock], for key material); fails
/// past the process's minimum working set size. Unmapping unlocks.
///
/// [VirtualLock]: https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-virtuallock
pub fn lock_memory(map: &memmap2::MmapMut) -> io::Result<()> {
    // SAFETY: VirtualLock only changes how the OS treats the pages of this live map
    // (it reads no memory through the pointer); the map outlives the call.
    let ok = unsafe { VirtualLock(map.as_ptr().cast::<c_void>().cast_mut(), map.len()) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes `file` occupies on disk (its allocation size).
pub fn bytes_on_disk(file: &File) -> u64 {
    let mut info = FILE_STANDARD_INFO::default();
    // SAFETY: `info` is a writable FILE_STANDARD_INFO of the size passed.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            file.as_raw_handle() as HANDLE,
            FileStandardInfo,
            (&mut info as *mut FILE_STANDARD_INFO).cast(),
            std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
        )
    };
    if ok == 0 {
        0
    } else {
        u64::try_from(info.AllocationSize).unwrap_or(0)
    }
}

/// Describes the filesystem holding `path` ("NTFS", "ReFS", "FAT32", ...; a RAM
/// disk is not detected: `is_ram` is false).
pub fn fs_info(path: &Path) -> io::Result<FsInfo> {
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut free = 0u64;
    // SAFETY: `wide` is NUL-terminated; `free` a valid out pointer; the others may be null.
    if unsafe { GetDiskFreeSpaceExW(wide.as_ptr(), &mut free, std::ptr::null_mut(), std::ptr::null_mut()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let dir = OpenOptions::new().read(true).custom_flags(FILE_FLAG_BACKUP_SEMANTICS).open(path)?;
    let mut name = [0u16; 64];
    // SAFETY: `name` is a writable buffer of the length passed; other outputs may be null.
    let ok = unsafe {
        GetVolumeInformationByHandleW(
            dir.as_raw_handle() as HANDLE,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            name.as_mut_ptr(),
            name.len() as u32,
        )
    };
    let name = if ok == 0 {
        "unknown".to_string()
    } else {
        String::from_utf16_lossy(&name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())])
    };
    Ok(FsInfo { name, is_ram: false, free_bytes: free })
}

/// Windows has no RAM temporary directory by default.
pub fn disk_temp_dir() -> Option<PathBuf> {
    None
}

/// The OS name.
pub fn kernel() -> String {
    "Windows".to_string()
}
