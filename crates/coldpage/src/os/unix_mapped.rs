//! Copies out of a file mapping that survive a media error.
//!
//! Small reads of the file backend copy from a read-only map of the handle's extent
//! instead of calling `pread`: no system call, which is what makes them faster than
//! `fs.readSync`. The cost of a map is what happens when the page cache must read a
//! page in and the disk fails: `pread` returns `EIO`, a map raises `SIGBUS`, which
//! would kill the process. So a copy runs under a guard: the thread records the
//! source range, and a process-wide `SIGBUS` handler that finds the faulting address
//! inside it maps a page of zeros over the failed page (`MAP_FIXED`, so the copy can
//! finish), flags the copy as failed and returns. The caller then reports `EIO` and
//! reads that handle with `pread` from then on. A `SIGBUS` anywhere else goes to the
//! handler that was installed before (or the default action, as without coldpage).
//!
//! Nothing else can raise `SIGBUS` on these maps: the arena file is unnamed and only
//! this process holds it, so no one truncates it, and an extent is only reused after
//! its handle (and its map) are gone.

use std::io;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

thread_local! {
    /// The source range `[start, end)` this thread is copying from, while it copies.
    static START: AtomicUsize = const { AtomicUsize::new(0) };
    static END: AtomicUsize = const { AtomicUsize::new(0) };
    /// Set by the handler when a page of that range failed.
    static FAULTED: AtomicBool = const { AtomicBool::new(false) };
}

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

/// Copies `len` bytes from `src` (inside a live read-only file map) to `dst`.
/// On a media error under the map, `dst` holds zeros for the failed pages and the
/// result is `EIO`.
///
/// # Safety
/// `src..src + len` must lie inside a live mapping for the whole call, and `dst` must
/// be valid for `len` bytes of writes and not overlap it. Call only when
/// [`available`] returned true.
pub unsafe fn copy(src: *const u8, dst: *mut u8, len: usize) -> io::Result<()> {
    START.with(|s| s.store(src as usize, Ordering::Relaxed));
    END.with(|e| e.store(src as usize + len, Ordering::Relaxed));
    FAULTED.with(|f| f.store(false, Ordering::Relaxed));
    // The handler runs on this thread, in the middle of the copy: the fences keep
    // the compiler from moving the stores after, or the load before, the copy.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the caller guarantees `src..src + len` is mapped and readable for the
    // call; a page that fails mid-copy is replaced with zeros by the handler before
    // the access is retried, so it stays readable. Nothing writes it meanwhile.
    let from = unsafe { std::slice::from_raw_parts(src, len) };
    // SAFETY: the caller guarantees `dst` is valid for `len` bytes of writes and
    // does not overlap the source.
    let to = unsafe { std::slice::from_raw_parts_mut(dst, len) };
    crate::copy::copy_bytes(to, from);
    compiler_fence(Ordering::SeqCst);
    END.with(|e| e.store(0, Ordering::Relaxed));
    if FAULTED.with(|f| f.load(Ordering::Relaxed)) {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
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
    let start = START.try_with(|s| s.load(Ordering::Relaxed)).unwrap_or(0);
    let end = END.try_with(|e| e.load(Ordering::Relaxed)).unwrap_or(0);
    if start <= addr && addr < end {
        let page = PAGE.load(Ordering::Relaxed);
        let at = addr & !(page - 1);
        // SAFETY: replaces exactly one page of this thread's source map (the range
        // lies inside a live mapping, per `copy`'s contract) with fresh zeros; the
        // map is unmapped later as a whole, anonymous page included.
        let zeros = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            let _ = FAULTED.try_with(|f| f.store(true, Ordering::Relaxed));
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
