//! The maps coldpage holds, and a media error under them that never kills the process.
//!
//! Reads of the file backend copy from shared read-only windows over the arena, and
//! views are private maps of an extent handed to JS. When the page cache must read a
//! page in and the disk fails, `pread` returns `EIO` but a map raises `SIGBUS`, which
//! would kill the process. So every map coldpage holds is entered in a fixed static
//! table ([`register`]), and a process-wide `SIGBUS` handler that finds the faulting
//! address inside one of them maps a page of zeros over the failed page (`MAP_FIXED`,
//! so the access can finish), records the page in a static *poison* table and
//! returns. The zeros are never data: every copy out of a map checks the poison
//! table after it copies ([`copy`]), and so does every later read of a handle whose
//! view faulted ([`owner_poisoned`]); another thread that read the page after the
//! zeros went in finds it there too. A `SIGBUS` anywhere else goes to the handler
//! that was installed before (or the default action, as without coldpage).
//!
//! The handler is async-signal-safe: it reads and writes atomics in static tables (no
//! thread-local, no lock, no allocation) and calls `mmap` and `sigaction` only.
//!
//! A map with a poisoned page must not be unmapped: its addresses would be reused by
//! other maps that the poison table would then wrongly fail. Its owner keeps it
//! (leaks it) instead ([`poisoned`] says so); media errors are rare.

use std::io;
use std::sync::atomic::{compiler_fence, fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Entries of the map table: every map coldpage holds at once (windows, views).
pub const SLOTS: usize = 1 << 15;
/// Poisoned pages recorded; past this many, every mapped read reports the error.
const POISONS: usize = 1024;

/// One registered map: `[start, end)`, the storage it belongs to (0 for a window
/// shared by many) and whether it is writable (a view: its zero page must be too).
struct Slot {
    /// 0: free; `usize::MAX`: being filled in.
    end: AtomicUsize,
    start: AtomicUsize,
    owner: AtomicU64,
    writable: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    end: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    owner: AtomicU64::new(0),
    writable: AtomicUsize::new(0),
};
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
/// Where the next search for a free slot starts.
static CURSOR: AtomicUsize = AtomicUsize::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const NONE: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NO_OWNER: AtomicU64 = AtomicU64::new(0);
static POISON_PAGE: [AtomicUsize; POISONS] = [NONE; POISONS];
static POISON_OWNER: [AtomicU64; POISONS] = [NO_OWNER; POISONS];
/// Poisoned pages so far (may pass [`POISONS`]: then every check fails).
static POISONED: AtomicUsize = AtomicUsize::new(0);

/// The `SIGBUS` disposition found before ours (to pass other faults on), once
/// installed; `None` when installing failed (then no copy runs from a map).
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// Whether guarded copies can run: installs the handler on first use.
pub fn available() -> bool {
    PREVIOUS.get_or_init(install).is_some()
}

fn install() -> Option<libc::sigaction> {
    PAGE.store(rustix::param::page_size(), Ordering::Relaxed);
    // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are a valid
    // value (SIG_DFL, no flags, an empty mask).
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null `act` only reads the current disposition into `previous`, a
    // valid, writable sigaction.
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
        return None;
    }
    // SAFETY: as above, all-zero is a valid sigaction; the fields are set below.
    let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
    ours.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `ours` is a valid sigaction whose handler has the SA_SIGINFO signature
    // and only does async-signal-safe work (atomics, mmap, sigaction).
    if unsafe { libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) } != 0 {
        return None;
    }
    Some(previous)
}

/// A map's entry in the table; cleared on drop (drop it before unmapping).
#[derive(Debug)]
pub struct Registration(usize);

/// Enters `[start, start + len)` (a live map, of storage `owner` or 0 for a shared
/// window) in the table the `SIGBUS` handler reads; `None` when the table is full
/// (then the caller must not touch the map without a copy's check, or not make it).
pub fn register(start: *const u8, len: usize, owner: u64, writable: bool) -> Option<Registration> {
    available();
    let first = CURSOR.load(Ordering::Relaxed);
    for i in (0..SLOTS).map(|n| (first + n) % SLOTS) {
        let slot = &TABLE[i];
        if slot.end.compare_exchange(0, usize::MAX, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            slot.start.store(start as usize, Ordering::Relaxed);
            slot.owner.store(owner, Ordering::Relaxed);
            slot.writable.store(usize::from(writable), Ordering::Relaxed);
            slot.end.store(start as usize + len, Ordering::Release);
            CURSOR.store((i + 1) % SLOTS, Ordering::Relaxed);
            return Some(Registration(i));
        }
    }
    None
}

impl Drop for Registration {
    fn drop(&mut self) {
        TABLE[self.0].end.store(0, Ordering::Release);
    }
}

/// Copies `len` bytes from `src` (inside a live, registered read-only map) to `dst`.
/// On a media error under the map (this thread's fault, or another thread's that
/// left zeros there) the result is `EIO` and `dst` holds zeros for the failed pages.
///
/// # Safety
/// `src..src + len` must lie inside a live mapping for the whole call, and `dst` must
/// be valid for `len` bytes of writes and not overlap it. Call only when
/// [`available`] returned true.
pub unsafe fn copy(src: *const u8, dst: *mut u8, len: usize) -> io::Result<()> {
    // The handler runs on this thread, in the middle of the copy: the fence keeps the
    // compiler from moving the poison check before the copy.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller guarantees `src..src + len` is mapped and readable for the
    // call; a page that fails mid-copy is replaced with zeros by the handler before
    // the access is retried, so it stays readable. Nothing writes it meanwhile.
    let from = unsafe { std::slice::from_raw_parts(src, len) };
    // SAFETY: the caller guarantees `dst` is valid for `len` bytes of writes and
    // does not overlap the source.
    let to = unsafe { std::slice::from_raw_parts_mut(dst, len) };
    super::copy::copy_bytes(to, from);
    compiler_fence(Ordering::SeqCst);
    if poisoned(src, len) {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}

/// Whether a page of `[start, start + len)` failed (its bytes are zeros, not data).
/// Call after reading the range: a failure recorded by then is seen.
pub fn poisoned(start: *const u8, len: usize) -> bool {
    // Pairs with the handler's stores, which precede its mmap of the zero page.
    fence(Ordering::SeqCst);
    let n = POISONED.load(Ordering::SeqCst);
    if n == 0 {
        return false;
    }
    if n > POISONS {
        return true;
    }
    let page = PAGE.load(Ordering::Relaxed);
    let (first, end) = ((start as usize) & !(page - 1), start as usize + len);
    POISON_PAGE[..n].iter().any(|p| {
        let p = p.load(Ordering::SeqCst);
        p != 0 && p >= first && p < end
    })
}

/// Whether a map of storage `owner` had a media error (a fault under a view).
pub fn owner_poisoned(owner: u64) -> bool {
    let n = POISONED.load(Ordering::SeqCst);
    n > POISONS || POISON_OWNER[..n].iter().any(|o| o.load(Ordering::SeqCst) == owner)
}

/// How many pages were poisoned so far (a generation: it only grows).
pub fn poison_count() -> usize {
    POISONED.load(Ordering::SeqCst)
}

/// The owners of the pages poisoned from index `from` on (0 for a shared window),
/// and the index to pass next time.
pub fn poisoned_owners(from: usize) -> (Vec<u64>, usize) {
    let n = POISONED.load(Ordering::SeqCst).min(POISONS);
    let owners = POISON_OWNER[from.min(n)..n].iter().map(|o| o.load(Ordering::SeqCst)).collect();
    (owners, n)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn fault_address(info: &libc::siginfo_t) -> usize {
    // SAFETY: for SIGBUS the kernel fills si_addr (the faulting address).
    unsafe { info.si_addr() as usize }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn fault_address(info: &libc::siginfo_t) -> usize {
    info.si_addr as usize
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: an SA_SIGINFO handler receives a valid siginfo from the kernel.
    let addr = fault_address(unsafe { &*info });
    let found = TABLE.iter().find(|slot| {
        let end = slot.end.load(Ordering::Acquire);
        end != 0 && end != usize::MAX && slot.start.load(Ordering::Relaxed) <= addr && addr < end
    });
    if let Some(slot) = found {
        let page = PAGE.load(Ordering::Relaxed);
        let at = addr & !(page - 1);
        // Recorded before the zeros go in, so that whoever can read the zeros finds
        // the record (the mmap below is a full barrier for other threads' accesses).
        let i = POISONED.fetch_add(1, Ordering::SeqCst);
        if i < POISONS {
            POISON_OWNER[i].store(slot.owner.load(Ordering::Relaxed), Ordering::SeqCst);
            POISON_PAGE[i].store(at, Ordering::SeqCst);
        }
        let prot = if slot.writable.load(Ordering::Relaxed) != 0 {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: replaces exactly one page of a live registered coldpage map with
        // fresh zeros; the map's owner never unmaps a map with a poisoned page
        // (module docs), so the page stays ours.
        let zeros = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            return;
        }
    }
    pass_on(sig, info, ctx);
}

/// Hands a `SIGBUS` that is not ours to the disposition found before ours.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let previous = PREVIOUS.get().copied().flatten();
    let handler = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Back to the default action; returning retries the access, which faults
        // again and ends the process as it would have without coldpage.
        // SAFETY: all-zero is a valid sigaction (SIG_DFL).
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `default` is valid; sigaction is async-signal-safe.
        unsafe { libc::sigaction(sig, &default, std::ptr::null_mut()) };
        return;
    }
    if previous.is_some_and(|p| p.sa_flags & libc::SA_SIGINFO != 0) {
        // SAFETY: an SA_SIGINFO disposition's handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain disposition's handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}
