//! The memory maps coldpage holds, bounded by the bytes it manages, never by the
//! number of handles, reads, views or store entries (SPEC "Resources at scale": a
//! process has `vm.max_map_count`, 65,530 by default, maps in all, V8's included).
//!
//! - Reads of the file backend copy from shared read-only *windows* over an arena
//!   file. Window `k` maps `[k·W, k·W + 2W)` ([`WINDOW`] = W), so a range of up to W
//!   bytes lies inside one window and a longer one crosses a window every W bytes.
//!   Every extent in that part of the arena shares the window (refcounted); it is
//!   unmapped when the last reader lets go. So reads hold at most one map per W
//!   bytes of arena, however many handles there are.
//! - Views are private copy-on-write maps (a write into a view must not reach the
//!   handle's bytes, so views cannot share): at most [`maps_limit`] at once, past
//!   which [`view_map`] declines and the view is a copy.
//! - Swap regions of [`crate::storage::swap::SMALL_REGION`] bytes or more are one anonymous
//!   map each (at least that many bytes per map); smaller ones live on the heap.
//!
//! Every window and view is entered in the OS layer's map table (`os::mapped`), which
//! its `SIGBUS` guard reads; a map with a poisoned page is kept (leaked) rather than
//! unmapped, so that its addresses never come back as someone else's map.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use memmap2::{Mmap, MmapMut};

use crate::arena::Arena;
use crate::os;

/// The stride of the arena's read windows (each maps twice this): a multiple of the
/// 64 KiB allocation granularity of Windows and of every page size.
pub(crate) const WINDOW: u64 = 8 << 20;
const _: () = assert!(WINDOW.is_multiple_of(64 << 10));

/// Maps coldpage holds now: windows, views, swap regions.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Of those, views.
static VIEWS: AtomicUsize = AtomicUsize::new(0);

/// One map counted in [`HELD`] while this lives.
pub(crate) struct Held(());

impl Held {
    pub(crate) fn new() -> Held {
        HELD.fetch_add(1, Ordering::Relaxed);
        Held(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Memory maps the pager holds now (read windows, views, swap regions), for
/// `doctor()` and tests.
pub fn maps_held() -> u64 {
    // Large regions are unmapped in the background: count once they are.
    crate::reclaim::settle();
    HELD.load(Ordering::Relaxed) as u64
}

/// How many views may be zero-copy maps at once; past it a view is a copy. A quarter
/// of `vm.max_map_count` on Linux (16,382 by default), leaving the rest to the
/// process (V8, the allocator, libraries); 16,384 elsewhere.
pub fn maps_limit() -> u64 {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    let limit = *LIMIT.get_or_init(|| {
        let max = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok());
        // Half the guard's table stays for windows.
        max.map_or(16_384, |m: usize| m / 4).clamp(256, os::mapped::SLOTS / 2)
    });
    limit as u64
}

/// A shared read-only map of `[index·W, index·W + 2W)` of an arena file.
pub(crate) struct Window {
    map: ManuallyDrop<Mmap>,
    registration: Option<os::mapped::Registration>,
    key: (u64, u64),
    _held: Held,
}

type Windows = HashMap<(u64, u64), Weak<Window>>;

fn windows() -> std::sync::MutexGuard<'static, Windows> {
    static WINDOWS: OnceLock<Mutex<Windows>> = OnceLock::new();
    // Every edit is one insert or remove: poison leaves a consistent map.
    WINDOWS.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner())
}

impl Window {
    /// The bytes at `at` (a file offset inside this window) and how many follow.
    pub(crate) fn at(&self, at: u64) -> (*const u8, usize) {
        let from = (at - self.key.1 * WINDOW) as usize;
        debug_assert!(from < self.map.len());
        // SAFETY: `from` is inside the map (asserted in debug builds; callers pass
        // offsets of their own extent, which lies inside the windows they hold).
        (unsafe { self.map.as_ptr().add(from) }, self.map.len() - from)
    }
}

/// The window `index` over `arena`'s file, shared with every other reader of it;
/// `None` where the map or its registration fails (the caller reads with `pread`).
pub(crate) fn window(arena: &Arena, index: u64) -> Option<Arc<Window>> {
    let key = (arena.id, index);
    let mut all = windows();
    if let Some(live) = all.get(&key).and_then(Weak::upgrade) {
        return Some(live);
    }
    let len = usize::try_from(2 * WINDOW).ok()?;
    // SAFETY: the arena file is unnamed (O_TMPFILE or unlinked) and private to this
    // process, and never truncated; the map is shared and read-only, and its readers
    // copy only the bytes of their own live extents, which nothing rewrites while
    // they are live (an extent is freed only after its readers are gone). Pages past
    // the file's end are mapped but never touched (extents lie inside the file).
    let map = unsafe { os::map_window(&arena.file, index * WINDOW, len) }.ok()?;
    let registration = Some(os::mapped::register(map.as_ptr(), map.len(), 0, false)?);
    let window = Arc::new(Window { map: ManuallyDrop::new(map), registration, key, _held: Held::new() });
    all.insert(key, Arc::downgrade(&window));
    Some(window)
}

impl Drop for Window {
    fn drop(&mut self) {
        {
            let mut all = windows();
            if all.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
                all.remove(&self.key);
            }
        }
        let poisoned = os::mapped::poisoned(self.map.as_ptr(), self.map.len());
        self.registration = None;
        if !poisoned {
            // SAFETY: dropped once, here; nothing reads the map any more (its last
            // reader let go), and its registration is gone first.
            unsafe { ManuallyDrop::drop(&mut self.map) };
        }
    }
}

/// A private copy-on-write map of part of an arena file, for one view.
pub(crate) struct ViewMap {
    map: ManuallyDrop<MmapMut>,
    registration: Option<os::mapped::Registration>,
    _held: Held,
}

/// Maps `len` bytes of `file` at `offset` for a view of storage `owner`, or `None`
/// when [`maps_limit`] views are mapped already (the caller copies instead).
pub(crate) fn view_map(file: &std::fs::File, offset: u64, len: usize, owner: u64) -> std::io::Result<Option<ViewMap>> {
    let limit = maps_limit() as usize;
    if VIEWS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).is_err() {
        return Ok(None);
    }
    let counted = scopeguard(|| {
        VIEWS.fetch_sub(1, Ordering::AcqRel);
    });
    // SAFETY: the arena file is unnamed and private to this process, and never
    // truncated; this extent belongs to the caller's storage, which is freed (hole
    // punched, reused) only after every view of it is gone. The map is private
    // (copy-on-write), so writes through it never reach the file.
    let map = unsafe { os::map_view(file, offset, len) }?;
    let Some(registration) = os::mapped::register(map.as_ptr(), map.len(), owner, true) else {
        return Ok(None);
    };
    std::mem::forget(counted);
    Ok(Some(ViewMap { map: ManuallyDrop::new(map), registration: Some(registration), _held: Held::new() }))
}

/// Runs `f` on drop unless forgotten.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

impl Deref for ViewMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl ViewMap {
    /// Whether a page of the map failed (its bytes are zeros).
    pub(crate) fn poisoned(&self) -> bool {
        os::mapped::poisoned(self.map.as_ptr(), self.map.len())
    }

    /// The map's first byte, writable: the map is private (copy-on-write), so a
    /// write changes this process's pages only, never the scratch file. The pointer
    /// comes from the mapping itself, not from a shared borrow of it.
    pub(crate) fn as_mut_ptr(&self) -> *mut u8 {
        self.map.as_ptr().cast_mut()
    }
}

impl Drop for ViewMap {
    fn drop(&mut self) {
        VIEWS.fetch_sub(1, Ordering::AcqRel);
        let poisoned = self.poisoned();
        self.registration = None;
        if !poisoned {
            // SAFETY: dropped once, here, after its registration; the lease that
            // held it (and any JS view of it) is gone.
            unsafe { ManuallyDrop::drop(&mut self.map) };
        }
    }
}

/// Storage ids whose reads met a media error (the handler records views' faults in
/// the OS layer; these are the reads' own), for [`storage_failed`] and warnings.
static FAILED: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static ANY_FAILED: AtomicUsize = AtomicUsize::new(0);

/// Records that a read of storage `id` met a media error.
pub(crate) fn media_error(id: u64) {
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    if !failed.contains(&id) {
        failed.push(id);
        ANY_FAILED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether storage `id` met a media error, under a read or a view.
pub(crate) fn storage_failed(id: u64) -> bool {
    (ANY_FAILED.load(Ordering::SeqCst) > 0 && FAILED.lock().unwrap_or_else(|p| p.into_inner()).contains(&id))
        || os::mapped::owner_poisoned(id)
}

/// How many media errors the pager met so far (it only grows): a cheap test of
/// whether [`media_errors_since`] has anything new.
pub fn media_error_count() -> usize {
    ANY_FAILED.load(Ordering::SeqCst) + os::mapped::poison_count()
}

/// The storage (handle) ids that met a media error since `cursor`, which advances:
/// for a binding that warns once per failure. Poisoned shared windows are named by
/// the reads that met them.
pub fn media_errors_since(cursor: &mut (usize, usize)) -> Vec<u64> {
    let (mut ids, poisons) = os::mapped::poisoned_owners(cursor.1);
    ids.retain(|&id| id != 0);
    let failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    ids.extend_from_slice(&failed[cursor.0.min(failed.len())..]);
    *cursor = (failed.len(), poisons);
    ids.sort_unstable();
    ids.dedup();
    ids
}
